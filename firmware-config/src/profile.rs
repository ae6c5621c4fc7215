//! The three profile kinds, read from TOML and checked once.

use serde::Deserialize;

/// How a line of text ends on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LineEnding {
    /// Carriage return (most scanners' default).
    Cr,
    /// Line feed.
    Lf,
    /// CR then LF.
    Crlf,
}

impl LineEnding {
    /// The bytes sent after a command.
    pub fn bytes(self) -> &'static [u8] {
        match self {
            LineEnding::Cr => b"\r",
            LineEnding::Lf => b"\n",
            LineEnding::Crlf => b"\r\n",
        }
    }
}

/// Serial parity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Parity {
    /// No parity bit.
    None,
    /// Even parity.
    Even,
    /// Odd parity.
    Odd,
}

/// A serial (RS-232 or USB-CDC) barcode scanner.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScannerProfile {
    /// The profile kind as written (`scanner`, `turnstile`, `camera`).
    pub kind: String,
    /// Profile name.
    pub name: String,
    /// What hardware it fits.
    pub description: String,
    /// Line speed.
    pub baud: u32,
    /// Data bits, 7 or 8.
    pub data_bits: u8,
    /// Parity.
    pub parity: Parity,
    /// Stop bits, 1 or 2.
    pub stop_bits: u8,
    /// What ends one code.
    pub terminator: LineEnding,
    /// Text the scanner is set to send before each code; removed.
    #[serde(default)]
    pub prefix: String,
    /// Text the scanner is set to send after each code; removed.
    #[serde(default)]
    pub suffix: String,
    /// Longest code accepted, in bytes; longer input is discarded up to the next terminator.
    pub max_code_len: usize,
}

/// A turnstile, door or relay controller driven by text commands.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TurnstileProfile {
    /// The profile kind as written (`scanner`, `turnstile`, `camera`).
    pub kind: String,
    /// Profile name.
    pub name: String,
    /// What hardware it fits.
    pub description: String,
    /// Line speed.
    pub baud: u32,
    /// What ends a command (and a status line).
    pub line_ending: LineEnding,
    /// Command that releases the turnstile for one person.
    pub open: String,
    /// Command that shows "denied" (red light, buzzer).
    pub deny: String,
    /// Command that returns to idle.
    pub idle: String,
    /// How long the release or the red light lasts, in ms.
    pub pulse_ms: u32,
    /// Status line the controller sends when a person went through, if it reports passage.
    #[serde(default)]
    pub passage: Option<String>,
    /// How long to wait for `passage` before the admission is annulled, in ms.
    #[serde(default)]
    pub passage_timeout_ms: Option<u32>,
}

/// A camera reading QR codes.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CameraProfile {
    /// The profile kind as written (`scanner`, `turnstile`, `camera`).
    pub kind: String,
    /// Profile name.
    pub name: String,
    /// What hardware it fits.
    pub description: String,
    /// Frame width in pixels.
    pub width: u32,
    /// Frame height in pixels.
    pub height: u32,
    /// Frames per second requested.
    pub fps: u32,
    /// Part of the frame searched for codes, as fractions `[x, y, w, h]`; whole frame if absent.
    #[serde(default)]
    pub decode_region: Option<[f32; 4]>,
    /// The same code seen again within this time is the same presentation, in ms.
    pub debounce_ms: u32,
}

/// Any profile.
#[derive(Debug, Clone, PartialEq)]
pub enum Profile {
    /// A barcode scanner.
    Scanner(ScannerProfile),
    /// A turnstile or relay controller.
    Turnstile(TurnstileProfile),
    /// A camera.
    Camera(CameraProfile),
}

impl Profile {
    /// The profile's name.
    pub fn name(&self) -> &str {
        match self {
            Profile::Scanner(p) => &p.name,
            Profile::Turnstile(p) => &p.name,
            Profile::Camera(p) => &p.name,
        }
    }
}

/// Why a profile was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProfileError {
    /// TOML syntax, a missing or unknown key, a wrong type.
    #[error("{0}")]
    Syntax(String),
    /// A value out of range.
    #[error("`{key}`: {message}")]
    Invalid {
        /// The key.
        key: &'static str,
        /// What is wrong.
        message: String,
    },
}

const BAUDS: [u32; 9] = [1_200, 2_400, 4_800, 9_600, 19_200, 38_400, 57_600, 115_200, 230_400];

fn invalid(key: &'static str, message: impl Into<String>) -> ProfileError {
    ProfileError::Invalid { key, message: message.into() }
}

fn check_baud(baud: u32) -> Result<(), ProfileError> {
    BAUDS.contains(&baud).then_some(()).ok_or_else(|| invalid("baud", format!("{baud} is not one of {BAUDS:?}")))
}

fn check_command(key: &'static str, command: &str) -> Result<(), ProfileError> {
    if command.is_empty() || command.len() > 64 || !command.bytes().all(|b| b.is_ascii_graphic() || b == b' ') {
        return Err(invalid(key, "must be 1-64 printable ASCII characters"));
    }
    Ok(())
}

#[derive(Deserialize)]
struct KindOnly {
    kind: String,
}

fn from_toml<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, ProfileError> {
    toml::from_str(text).map_err(|e| ProfileError::Syntax(e.to_string().trim().to_owned()))
}

/// Parses and checks one profile file's text.
pub fn parse_profile(text: &str) -> Result<Profile, ProfileError> {
    // Read `kind` first, then the whole file as that kind, so that errors point
    // at the offending key (a tagged enum would lose it).
    let kind = from_toml::<KindOnly>(text)?.kind;
    let profile = match kind.as_str() {
        "scanner" => Profile::Scanner(from_toml(text)?),
        "turnstile" => Profile::Turnstile(from_toml(text)?),
        "camera" => Profile::Camera(from_toml(text)?),
        other => return Err(invalid("kind", format!("{other:?} is not scanner, turnstile or camera"))),
    };
    if profile.name().is_empty() || !profile.name().bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
        return Err(invalid("name", "must be lower-case letters, digits and -"));
    }
    match &profile {
        Profile::Scanner(p) => check_scanner(p)?,
        Profile::Turnstile(p) => check_turnstile(p)?,
        Profile::Camera(p) => check_camera(p)?,
    }
    Ok(profile)
}

fn check_scanner(p: &ScannerProfile) -> Result<(), ProfileError> {
    check_baud(p.baud)?;
    if !(7..=8).contains(&p.data_bits) {
        return Err(invalid("data_bits", "must be 7 or 8"));
    }
    if !(1..=2).contains(&p.stop_bits) {
        return Err(invalid("stop_bits", "must be 1 or 2"));
    }
    if !(64..=8_192).contains(&p.max_code_len) {
        return Err(invalid("max_code_len", "must be 64 to 8192"));
    }
    for (key, text) in [("prefix", &p.prefix), ("suffix", &p.suffix)] {
        if text.len() > 16 || text.contains(['\r', '\n']) {
            return Err(invalid(key, "at most 16 characters, no line breaks"));
        }
    }
    Ok(())
}

fn check_turnstile(p: &TurnstileProfile) -> Result<(), ProfileError> {
    check_baud(p.baud)?;
    check_command("open", &p.open)?;
    check_command("deny", &p.deny)?;
    check_command("idle", &p.idle)?;
    if !(50..=10_000).contains(&p.pulse_ms) {
        return Err(invalid("pulse_ms", "must be 50 to 10000"));
    }
    match (&p.passage, p.passage_timeout_ms) {
        (Some(passage), Some(timeout)) => {
            check_command("passage", passage)?;
            if !(1_000..=120_000).contains(&timeout) {
                return Err(invalid("passage_timeout_ms", "must be 1000 to 120000"));
            }
        }
        (None, None) => {}
        _ => return Err(invalid("passage_timeout_ms", "`passage` and `passage_timeout_ms` go together")),
    }
    Ok(())
}

fn check_camera(p: &CameraProfile) -> Result<(), ProfileError> {
    if !(160..=4_096).contains(&p.width) || !(120..=4_096).contains(&p.height) {
        return Err(invalid("width", "frame must be 160x120 to 4096x4096"));
    }
    if !(1..=120).contains(&p.fps) {
        return Err(invalid("fps", "must be 1 to 120"));
    }
    if let Some([x, y, w, h]) = p.decode_region {
        let inside = [x, y, w, h].iter().all(|v| (0.0..=1.0).contains(v)) && x + w <= 1.0 && y + h <= 1.0;
        if !inside || w <= 0.0 || h <= 0.0 {
            return Err(invalid("decode_region", "[x, y, w, h] fractions inside the frame"));
        }
    }
    if p.debounce_ms > 60_000 {
        return Err(invalid("debounce_ms", "at most 60000"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SCANNER: &str = "kind = \"scanner\"\nname = \"s\"\ndescription = \"d\"\nbaud = 9600\ndata_bits = 8\nparity = \"none\"\nstop_bits = 1\nterminator = \"cr\"\nmax_code_len = 1024\n";

    #[test]
    fn errors_name_the_key() {
        assert!(parse_profile(SCANNER).is_ok());
        let cases = [
            (SCANNER.replace("9600", "9601"), "baud"),
            (SCANNER.replace("data_bits = 8", "data_bits = 9"), "data_bits"),
            (SCANNER.replace("\"cr\"", "\"cr2\""), "terminator"),
            (format!("{SCANNER}baudrate = 1\n"), "baudrate"),
            (SCANNER.replace("name = \"s\"", "name = \"S S\""), "name"),
            (SCANNER.replace("kind = \"scanner\"", "kind = \"printer\""), "printer"),
        ];
        for (text, key) in cases {
            let err = parse_profile(&text).expect_err(key).to_string();
            assert!(err.contains(key), "{key}: {err}");
        }
    }
}
