//! Gate configuration: TOML → [`RawConfig`] (unknown keys refused) → checked
//! [`Config`]. Errors name the file and the key. Relative paths are resolved
//! against the config file's folder.

use std::path::{Path, PathBuf};

use firmware_config::{Profile, ScannerProfile, TurnstileProfile};
use schema::Freshness;
use schema::entry::Direction;

use firmware_config::CameraProfile;

use crate::daemon::Devices;
use crate::hardware::camera::FrameOrigin;
use serde::Deserialize;

/// The file as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    /// Gate name, unique in the venue.
    pub gate_id: String,
    /// Venue this gate belongs to.
    pub venue_id: u64,
    /// Check-in list the gate serves; without it, the gate works the entrance
    /// the cloud assigned it, or the one door staff choose on its display.
    #[serde(default)]
    pub list_id: Option<u32>,
    /// Folder for the replica and the ledger.
    pub state_dir: PathBuf,
    /// Issuer keyring (JSON).
    pub keyring: PathBuf,
    /// Whether this gate lets people in or out; default entry.
    #[serde(default)]
    pub direction: Option<Direction>,
    /// Read codes typed or wedged on stdin; default true.
    #[serde(default)]
    pub stdin: Option<bool>,
    /// Serial barcode scanner.
    #[serde(default)]
    pub scanner: Option<RawDevice>,
    /// Turnstile or relay controller.
    #[serde(default)]
    pub turnstile: Option<RawDevice>,
    /// Camera, or recorded frames.
    #[serde(default)]
    pub camera: Option<RawCamera>,
    /// The venue hub; without it the gate decides alone.
    #[serde(default)]
    pub hub: Option<RawHub>,
    /// How old a code shown by a holder's wallet (barcode v2) may be.
    #[serde(default)]
    pub rotating_codes: Option<RawRotatingCodes>,
}

/// The age window of holder-shown codes.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRotatingCodes {
    /// Oldest accepted code, by this gate's clock; default 30 s.
    #[serde(default)]
    pub max_age_s: Option<u64>,
    /// How far ahead of this gate's clock a code may be dated; default 30 s.
    #[serde(default)]
    pub max_ahead_s: Option<u64>,
}

/// How to reach the venue hub.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHub {
    /// The folder `sync-hub enroll-gate` wrote for this gate.
    pub enrolment: PathBuf,
    /// How long to wait for the hub's answer to a claim before deciding alone;
    /// default 300 ms.
    #[serde(default)]
    pub claim_deadline_ms: Option<u64>,
    /// How to reach the hub: "mqtt" (default, through the broker) or "quic"
    /// (straight to the hub, mutual TLS with the enrolment's certificate).
    #[serde(default)]
    pub transport: Option<String>,
    /// Override the broker address from the enrolment (`host:port`).
    #[serde(default)]
    pub mqtt_address: Option<String>,
    /// Override the hub's QUIC address from the enrolment (`host:port`).
    #[serde(default)]
    pub quic_address: Option<String>,
}

/// How the gate reaches the hub.
#[derive(Debug, Clone)]
pub enum HubTransport {
    /// Through the MQTT broker at `host:port`.
    Mqtt(String, u16),
    /// Straight to the hub's QUIC listener at `host:port`.
    Quic {
        /// Host.
        host: String,
        /// UDP port.
        port: u16,
        /// TLS: the venue CA as the only root, this gate's certificate.
        client: quinn::ClientConfig,
    },
}

/// The hub link, checked: enrolment read, keys parsed.
#[derive(Debug, Clone)]
pub struct HubSettings {
    /// What the hub issued.
    pub enrolment: schema::sync::Enrolment,
    /// This gate's signing key.
    pub gate_key: schema::sync::NodeKey,
    /// The hub's public key.
    pub hub_key: ed25519_dalek::VerifyingKey,
    /// The transport and where the hub is on it.
    pub transport: HubTransport,
    /// Claim deadline.
    pub claim_deadline: std::time::Duration,
}

/// A camera: which profile, and a device index or a folder of frames.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCamera {
    /// A built-in profile name or a path to a profile file.
    pub profile: String,
    /// V4L2 device index (`/dev/videoN`); needs a build with the `camera` feature.
    #[serde(default)]
    pub device: Option<u32>,
    /// A folder (or file) of PNG/JPEG frames, played at the profile's rate.
    #[serde(default)]
    pub frames: Option<PathBuf>,
}

/// A serial device: which profile, on which port.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDevice {
    /// A built-in profile name (`firmware-config list`) or a path to a profile file.
    pub profile: String,
    /// The serial port, e.g. `/dev/ttyACM0`.
    pub port: String,
}

/// A checked configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Gate name: 1–32 of `A-Z a-z 0-9 - _` (it appears in scan ids and topics).
    pub gate_id: String,
    /// Venue id.
    pub venue_id: u64,
    /// The check-in list the gate is pinned to, if any (else it works an entrance).
    pub list_id: Option<u32>,
    /// Folder for `replica.db` and `ledger.db`.
    pub state_dir: PathBuf,
    /// Keyring file.
    pub keyring: PathBuf,
    /// Direction of the scans this gate records.
    pub direction: Direction,
    /// Read codes from stdin.
    pub stdin: bool,
    /// Serial scanner and turnstile.
    pub devices: Devices,
    /// The venue hub, if any.
    pub hub: Option<HubSettings>,
    /// How old a holder-shown code may be.
    pub freshness: Freshness,
}

/// Why a configuration was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The failure.
        source: std::io::Error,
    },
    /// TOML syntax, a missing or unknown key, or a wrong type.
    #[error("{path}: {message}")]
    Syntax {
        /// The file.
        path: PathBuf,
        /// What the parser said, naming the key.
        message: String,
    },
    /// A value that parses but is not allowed.
    #[error("{path}: `{key}`: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// The key.
        key: &'static str,
        /// What is wrong.
        message: String,
    },
}

impl Config {
    /// Reads and checks a configuration file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text =
            std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.to_owned(), source })?;
        let raw: RawConfig = toml::from_str(&text)
            .map_err(|e| ConfigError::Syntax { path: path.to_owned(), message: e.to_string().trim().to_owned() })?;
        let base = path.parent().unwrap_or(Path::new("."));
        Self::check(raw, base).map_err(|(key, message)| ConfigError::Invalid { path: path.to_owned(), key, message })
    }

    /// Checks a raw configuration; relative paths are taken from `base`.
    pub fn check(raw: RawConfig, base: &Path) -> Result<Self, (&'static str, String)> {
        let id_ok = !raw.gate_id.is_empty()
            && raw.gate_id.len() <= 32
            && raw.gate_id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !id_ok {
            return Err(("gate_id", format!("{:?} must be 1-32 of A-Z a-z 0-9 - _", raw.gate_id)));
        }
        let hub = raw.hub.map(|h| hub(h, base, &raw.gate_id, raw.venue_id)).transpose()?;
        let freshness = raw.rotating_codes.map(freshness).transpose()?.unwrap_or_default();
        Ok(Self {
            gate_id: raw.gate_id,
            venue_id: raw.venue_id,
            list_id: raw.list_id,
            state_dir: base.join(raw.state_dir),
            keyring: base.join(raw.keyring),
            direction: raw.direction.unwrap_or(Direction::Entry),
            stdin: raw.stdin.unwrap_or(true),
            devices: Devices {
                scanner: raw.scanner.map(|d| scanner_profile(&d, base).map(|p| (d.port, p))).transpose()?,
                turnstile: raw.turnstile.map(|d| turnstile_profile(&d, base).map(|p| (d.port, p))).transpose()?,
                camera: raw.camera.map(|c| camera(c, base)).transpose()?,
            },
            hub,
            freshness,
        })
    }
}

/// Allowed ages of a holder-shown code. The wallet draws a new code every
/// 5 s, so a shorter window would refuse live codes; over an hour it no
/// longer stops a screenshot passed along the queue.
const CODE_MAX_AGE_S: std::ops::RangeInclusive<u64> = 10..=3_600;
const CODE_MAX_AHEAD_S: std::ops::RangeInclusive<u64> = 0..=3_600;

fn freshness(raw: RawRotatingCodes) -> Result<Freshness, (&'static str, String)> {
    let default = Freshness::default();
    let max_age = raw.max_age_s.unwrap_or(default.max_age);
    if !CODE_MAX_AGE_S.contains(&max_age) {
        return Err(("rotating_codes.max_age_s", format!("{max_age} is outside {CODE_MAX_AGE_S:?} seconds")));
    }
    let max_ahead = raw.max_ahead_s.unwrap_or(default.max_ahead);
    if !CODE_MAX_AHEAD_S.contains(&max_ahead) {
        return Err(("rotating_codes.max_ahead_s", format!("{max_ahead} is outside {CODE_MAX_AHEAD_S:?} seconds")));
    }
    Ok(Freshness { max_age, max_ahead })
}

/// A built-in profile by name, or a profile file (relative to `base`).
fn load_profile(device: &RawDevice, base: &Path, key: &'static str) -> Result<Profile, (&'static str, String)> {
    if device.profile.ends_with(".toml") {
        let path = base.join(&device.profile);
        let text = std::fs::read_to_string(&path).map_err(|e| (key, format!("{}: {e}", path.display())))?;
        return firmware_config::parse_profile(&text).map_err(|e| (key, format!("{}: {e}", path.display())));
    }
    match firmware_config::built_in(&device.profile) {
        Some(result) => result.map_err(|e| (key, e.to_string())),
        None => Err((
            key,
            format!("no built-in profile {:?}; known: {}", device.profile, firmware_config::names().join(", ")),
        )),
    }
}

fn scanner_profile(device: &RawDevice, base: &Path) -> Result<ScannerProfile, (&'static str, String)> {
    match load_profile(device, base, "scanner.profile")? {
        Profile::Scanner(p) => Ok(p),
        other => Err(("scanner.profile", format!("{} is not a scanner profile", other.name()))),
    }
}

fn turnstile_profile(device: &RawDevice, base: &Path) -> Result<TurnstileProfile, (&'static str, String)> {
    match load_profile(device, base, "turnstile.profile")? {
        Profile::Turnstile(p) => Ok(p),
        other => Err(("turnstile.profile", format!("{} is not a turnstile profile", other.name()))),
    }
}

fn camera(raw: RawCamera, base: &Path) -> Result<(FrameOrigin, CameraProfile), (&'static str, String)> {
    let device = RawDevice { profile: raw.profile, port: String::new() };
    let profile = match load_profile(&device, base, "camera.profile")? {
        Profile::Camera(p) => p,
        other => return Err(("camera.profile", format!("{} is not a camera profile", other.name()))),
    };
    let origin = match (raw.device, raw.frames) {
        (Some(index), None) => {
            if !cfg!(feature = "camera") {
                return Err((
                    "camera.device",
                    "this build has no live capture: build with --features camera, or use `frames`".into(),
                ));
            }
            FrameOrigin::Device(index)
        }
        (None, Some(frames)) => FrameOrigin::Files(base.join(frames)),
        _ => return Err(("camera", "set exactly one of `device` and `frames`".into())),
    };
    Ok((origin, profile))
}

/// Allowed claim deadlines: long enough for a LAN round trip and a commit,
/// short enough that staff never wait.
const CLAIM_DEADLINE_MS: std::ops::RangeInclusive<u64> = 20..=2_000;

fn hub(raw: RawHub, base: &Path, gate_id: &str, venue_id: u64) -> Result<HubSettings, (&'static str, String)> {
    use schema::sync::{ENROLMENT_FILE, Enrolment, GATE_KEY_FILE, NodeKey};
    let dir = base.join(&raw.enrolment);
    let read = |name: &str| {
        let path = dir.join(name);
        std::fs::read_to_string(&path).map_err(|e| ("hub.enrolment", format!("{}: {e}", path.display())))
    };
    let enrolment: Enrolment = serde_json::from_str(&read(ENROLMENT_FILE)?)
        .map_err(|e| ("hub.enrolment", format!("{ENROLMENT_FILE}: {e}")))?;
    if enrolment.gate_id != gate_id || u64::from(enrolment.venue_id) != venue_id {
        return Err((
            "hub.enrolment",
            format!(
                "enrolled as gate {:?} of venue {}, configured as {gate_id:?} of venue {venue_id}",
                enrolment.gate_id, enrolment.venue_id
            ),
        ));
    }
    let gate_key = NodeKey::from_pkcs8_pem(&read(GATE_KEY_FILE)?)
        .map_err(|e| ("hub.enrolment", format!("{GATE_KEY_FILE}: {e}")))?;
    let hub_key = enrolment.hub_key().ok_or(("hub.enrolment", "hub_public_key is not an Ed25519 key".to_owned()))?;
    let transport = match raw.transport.as_deref().unwrap_or("mqtt") {
        "mqtt" => {
            let address = raw.mqtt_address.clone().unwrap_or_else(|| enrolment.mqtt_address.clone());
            let (host, port) = schema::sync::parse_host_port(&address)
                .ok_or(("hub.mqtt_address", format!("{address:?} is not host:port")))?;
            HubTransport::Mqtt(host, port)
        }
        "quic" => {
            let address = raw.quic_address.clone().or_else(|| enrolment.quic_address.clone()).ok_or((
                "hub.quic_address",
                "the hub listed no QUIC address at enrolment: set one, or use transport = \"mqtt\"".to_owned(),
            ))?;
            let (host, port) = schema::sync::parse_host_port(&address)
                .ok_or(("hub.quic_address", format!("{address:?} is not host:port")))?;
            let client = crate::hub_link::quic::client_config(&dir).map_err(|e| ("hub.enrolment", e))?;
            HubTransport::Quic { host, port, client }
        }
        other => return Err(("hub.transport", format!("{other:?}: expected \"mqtt\" or \"quic\""))),
    };
    let deadline = raw.claim_deadline_ms.unwrap_or(300);
    if !CLAIM_DEADLINE_MS.contains(&deadline) {
        return Err(("hub.claim_deadline_ms", format!("{deadline} is outside {CLAIM_DEADLINE_MS:?}")));
    }
    Ok(HubSettings {
        enrolment,
        gate_key,
        hub_key,
        transport,
        claim_deadline: std::time::Duration::from_millis(deadline),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_packaged_configuration_is_valid_and_keeps_state_where_the_unit_allows_writes() {
        let config = Config::load(Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/debian/gate.toml"))).unwrap();
        assert_eq!(config.state_dir, Path::new("/var/lib/tixgate/gate"));
        assert_eq!(config.keyring, Path::new("/etc/tixgate/keyring.json"));
        assert!(!config.stdin, "under systemd there is no terminal");
    }

    fn load(text: &str) -> Result<Config, ConfigError> {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("gate.toml");
        std::fs::write(&path, text).expect("write");
        Config::load(&path)
    }

    const GOOD: &str =
        "gate_id = \"north-1\"\nvenue_id = 5\nlist_id = 1\nstate_dir = \"state\"\nkeyring = \"keyring.json\"\n";

    #[test]
    fn a_good_file_loads_with_paths_beside_it() {
        let c = load(GOOD).expect("loads");
        assert_eq!((c.gate_id.as_str(), c.venue_id, c.list_id), ("north-1", 5, Some(1)));
        assert!(c.state_dir.ends_with("state") && c.state_dir.is_absolute());
    }

    #[test]
    fn errors_name_the_key() {
        let unknown = load(&format!("{GOOD}turnstyle = 1\n")).expect_err("unknown key");
        assert!(unknown.to_string().contains("turnstyle"), "{unknown}");
        let missing = load("gate_id = \"a\"\n").expect_err("missing keys");
        assert!(missing.to_string().contains("venue_id"), "{missing}");
        let bad_id = load(&GOOD.replace("north-1", "north 1/x")).expect_err("bad id");
        assert!(bad_id.to_string().contains("`gate_id`"), "{bad_id}");
        let wrong_type = load(&GOOD.replace("venue_id = 5", "venue_id = \"five\"")).expect_err("type");
        assert!(wrong_type.to_string().contains("venue_id"), "{wrong_type}");
        let no_profile = load(&format!("{GOOD}[scanner]\nprofile = \"acme-9000\"\nport = \"/dev/ttyACM0\"\n"))
            .expect_err("unknown profile");
        assert!(no_profile.to_string().contains("scanner.profile"), "{no_profile}");
        let wrong_kind = load(&format!("{GOOD}[turnstile]\nprofile = \"uvc-camera-vga\"\nport = \"/dev/ttyUSB0\"\n"))
            .expect_err("camera as turnstile");
        assert!(wrong_kind.to_string().contains("not a turnstile"), "{wrong_kind}");
        let good = load(&format!("{GOOD}[scanner]\nprofile = \"zebra-ds2208-usb-cdc\"\nport = \"/dev/ttyACM0\"\n"))
            .expect("built-in profile");
        assert_eq!(good.devices.scanner.map(|(port, p)| (port, p.baud)), Some(("/dev/ttyACM0".into(), 115_200)));
    }

    #[test]
    fn the_rotating_code_window_defaults_to_30_s_and_is_bounded() {
        assert_eq!(load(GOOD).expect("loads").freshness, Freshness { max_age: 30, max_ahead: 30 });
        let set = load(&format!("{GOOD}[rotating_codes]\nmax_age_s = 15\nmax_ahead_s = 0\n")).expect("loads");
        assert_eq!(set.freshness, Freshness { max_age: 15, max_ahead: 0 });
        for (key, bad) in
            [("max_age_s", "max_age_s = 5"), ("max_age_s", "max_age_s = 7200"), ("max_ahead_s", "max_ahead_s = 4000")]
        {
            let err = load(&format!("{GOOD}[rotating_codes]\n{bad}\n")).expect_err(bad);
            assert!(err.to_string().contains(&format!("rotating_codes.{key}")), "{err}");
        }
        let unknown = load(&format!("{GOOD}[rotating_codes]\nwindow = 30\n")).expect_err("unknown key");
        assert!(unknown.to_string().contains("window"), "{unknown}");
    }
}
