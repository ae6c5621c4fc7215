//! `hub.toml`: read once at start, checked, then trusted.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// How gates reach the hub over MQTT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Broker {
    /// The hub runs its own broker listening here (the default: a venue needs nothing else).
    Embedded(SocketAddr),
    /// An external broker (e.g. Mosquitto) at `host:port`.
    External(String, u16),
}

impl Broker {
    /// The address gates and the hub connect to.
    pub fn connect_to(&self) -> (String, u16) {
        match self {
            Broker::Embedded(addr) => (addr.ip().to_string(), addr.port()),
            Broker::External(host, port) => (host.clone(), *port),
        }
    }
}

/// A checked configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HubConfig {
    /// The venue this hub serves.
    pub venue_id: u32,
    /// Folder of `hub.db` and `hub-key.pem`.
    pub state_dir: PathBuf,
    /// MQTT broker.
    pub broker: Broker,
    /// Where the hub listens for gates over QUIC, if it does.
    pub quic: Option<SocketAddr>,
    /// Where the dashboard, `/metrics` and `/healthz` listen.
    pub http: SocketAddr,
    /// Host names the dashboard answers to, besides `localhost` and IP
    /// addresses (a page on another site that rebinds its own name to the hub's
    /// address is refused).
    pub http_hosts: Vec<String>,
    /// Folder of signed manifest files to serve to gates, if any.
    pub manifests: Option<PathBuf>,
    /// The cloud API scans go up to and ticket lists come from, if any.
    pub cloud: Option<crate::cloud::CloudConfig>,
}

/// The dashboard's default address: this box only, until the operator opens it.
pub const DEFAULT_HTTP: &str = "127.0.0.1:8480";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    venue_id: u32,
    state_dir: PathBuf,
    mqtt: RawMqtt,
    #[serde(default)]
    quic: Option<RawQuic>,
    #[serde(default)]
    http: Option<RawHttp>,
    #[serde(default)]
    replica: Option<RawReplica>,
    #[serde(default)]
    cloud: Option<RawCloud>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCloud {
    /// Base URL of the cloud API.
    url: String,
    /// File holding the hub's device token.
    token_file: PathBuf,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawReplica {
    /// Folder of signed manifest files (`*.txm`), re-read every few seconds.
    folder: PathBuf,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawQuic {
    /// `IP:port` (UDP) of the QUIC listener.
    listen: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHttp {
    /// `IP:port` of the dashboard.
    listen: String,
    /// Host names it answers to besides `localhost` and IP addresses.
    #[serde(default)]
    hosts: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMqtt {
    /// "embedded" or "external".
    broker: String,
    /// Embedded: where to listen. External: the broker's `host:port`.
    address: String,
}

/// Why a configuration was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file cannot be read.
    #[error("{path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Not valid TOML for a hub, or unknown keys.
    #[error("{path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's words.
        message: String,
    },
    /// A value out of range.
    #[error("{path}: {key}: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// The key.
        key: &'static str,
        /// What is wrong.
        message: String,
    },
}

impl HubConfig {
    /// Reads and checks `path`; relative paths inside are relative to its folder.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.into(), source })?;
        Self::parse(&text, path)
    }

    /// Checks the text of `path`.
    pub fn parse(text: &str, path: &Path) -> Result<Self, ConfigError> {
        let raw: RawConfig =
            toml::from_str(text).map_err(|e| ConfigError::Parse { path: path.into(), message: e.to_string() })?;
        let invalid = |key, message: String| ConfigError::Invalid { path: path.into(), key, message };
        let base = path.parent().unwrap_or(Path::new("."));
        let broker = match raw.mqtt.broker.as_str() {
            "embedded" => Broker::Embedded(
                raw.mqtt
                    .address
                    .parse()
                    .map_err(|_| invalid("mqtt.address", format!("{:?} is not an IP:port", raw.mqtt.address)))?,
            ),
            "external" => {
                let (host, port) = schema::sync::parse_host_port(&raw.mqtt.address)
                    .ok_or_else(|| invalid("mqtt.address", format!("{:?} is not host:port", raw.mqtt.address)))?;
                Broker::External(host, port)
            }
            other => return Err(invalid("mqtt.broker", format!("{other:?}: expected \"embedded\" or \"external\""))),
        };
        let quic = raw
            .quic
            .map(|q| q.listen.parse().map_err(|_| invalid("quic.listen", format!("{:?} is not an IP:port", q.listen))))
            .transpose()?;
        let (http, http_hosts) = raw.http.map_or((DEFAULT_HTTP.to_owned(), Vec::new()), |h| (h.listen, h.hosts));
        let http = http.parse().map_err(|_| invalid("http.listen", format!("{http:?} is not an IP:port")))?;
        if let Some(bad) = http_hosts.iter().find(|h| !crate::http::valid_host_name(h)) {
            return Err(invalid("http.hosts", format!("{bad:?} is not a host name")));
        }
        let http_hosts = http_hosts.iter().map(|h| h.to_ascii_lowercase()).collect();
        let manifests = raw.replica.map(|r| base.join(r.folder));
        let cloud = match raw.cloud {
            None => None,
            Some(c) => {
                if !(c.url.starts_with("https://") || c.url.starts_with("http://")) {
                    return Err(invalid("cloud.url", format!("{:?} is not an http(s) URL", c.url)));
                }
                if manifests.is_none() {
                    return Err(invalid(
                        "cloud",
                        "needs [replica] folder, where ticket lists from the cloud are kept".into(),
                    ));
                }
                let path = base.join(&c.token_file);
                let token = std::fs::read_to_string(&path)
                    .map_err(|e| invalid("cloud.token_file", format!("{}: {e}", path.display())))?;
                Some(crate::cloud::CloudConfig { url: c.url, token: token.trim().to_owned() })
            }
        };
        Ok(Self {
            venue_id: raw.venue_id,
            state_dir: base.join(raw.state_dir),
            broker,
            quic,
            http,
            http_hosts,
            manifests,
            cloud,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<HubConfig, ConfigError> {
        HubConfig::parse(text, Path::new("/etc/tixgate/hub.toml"))
    }

    #[test]
    fn the_packaged_configuration_is_valid_and_keeps_state_where_the_unit_allows_writes() {
        let config = HubConfig::load(Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/debian/hub.toml"))).unwrap();
        assert_eq!(config.state_dir, Path::new("/var/lib/tixgate/hub"));
        assert!(config.manifests.is_some_and(|m| m.starts_with("/var/lib/tixgate/hub")));
        assert!(config.quic.is_some());
    }

    #[test]
    fn embedded_and_external_brokers_parse() {
        let c = parse("venue_id = 5\nstate_dir = \"hub\"\n[mqtt]\nbroker = \"embedded\"\naddress = \"0.0.0.0:1884\"\n")
            .expect("valid");
        assert_eq!(c.state_dir, PathBuf::from("/etc/tixgate/hub"));
        assert_eq!(c.broker, Broker::Embedded("0.0.0.0:1884".parse().expect("addr")));
        let c = parse("venue_id = 5\nstate_dir = \"/x\"\n[mqtt]\nbroker = \"external\"\naddress = \"mqtt.lan:1883\"\n")
            .expect("valid");
        assert_eq!(c.broker.connect_to(), ("mqtt.lan".into(), 1883));
        assert_eq!(c.quic, None);
        let c = parse("venue_id = 5\nstate_dir = \"/x\"\n[mqtt]\nbroker = \"embedded\"\naddress = \"127.0.0.1:1884\"\n[quic]\nlisten = \"0.0.0.0:4433\"\n")
            .expect("valid");
        assert_eq!(c.quic, Some("0.0.0.0:4433".parse().expect("addr")));
        let bad = parse(
            "venue_id = 5\nstate_dir = \"/x\"\n[mqtt]\nbroker = \"embedded\"\naddress = \"127.0.0.1:1884\"\n[quic]\nlisten = \"hub:4433\"\n",
        );
        assert!(matches!(bad, Err(ConfigError::Invalid { key: "quic.listen", .. })));
    }

    #[test]
    fn mistakes_are_named() {
        let unknown =
            parse("venue_id = 5\nstate_dir = \"h\"\nextra = 1\n[mqtt]\nbroker = \"embedded\"\naddress = \"1\"\n");
        assert!(matches!(unknown, Err(ConfigError::Parse { .. })));
        let bad = parse("venue_id = 5\nstate_dir = \"h\"\n[mqtt]\nbroker = \"cloud\"\naddress = \"a:1\"\n");
        assert!(matches!(bad, Err(ConfigError::Invalid { key: "mqtt.broker", .. })));
        let bad = parse("venue_id = 5\nstate_dir = \"h\"\n[mqtt]\nbroker = \"external\"\naddress = \"nohost\"\n");
        assert!(matches!(bad, Err(ConfigError::Invalid { key: "mqtt.address", .. })));
    }
}
