//! The agent's YAML configuration: a subset of Promtail's.
//!
//! ```yaml
//! clients:
//!   - url: http://127.0.0.1:3100/loki/api/v1/push
//!     batchwait: 1s            # send a batch at most this long after its first line
//!     batchsize: 1048576       # ... or once it holds this many bytes of lines
//!     timeout: 10s
//!     tenant_id: team-a        # X-Scope-OrgID (optional)
//!     basic_auth: {username: u, password: p}   # optional
//!     external_labels: {host: web-1}           # optional; stream labels win
//!     format: protobuf         # protobuf (snappy, Promtail's) or json (our extension)
//!     backoff_config: {min_period: 500ms, max_period: 5m, max_retries: 0}  # 0 = retry forever
//! positions:
//!   filename: /var/lib/agent/positions.yaml
//! target_config:
//!   sync_period: 10s           # how often globs are expanded again
//! poll_interval: 250ms         # our extension: how often open files are checked for new data
//! max_line_size: 262144        # our extension: longer lines are split into pieces of this size
//! scrape_configs:
//!   - job_name: system
//!     static_configs:
//!       - targets: [localhost]
//!         labels:
//!           job: varlogs
//!           __path__: /var/log/*.log
//!           __path_exclude__: /var/log/secret*.log   # optional
//! ```
//!
//! Differences from Promtail: no `server`, `pipeline_stages`, service
//! discovery or relabelling (unknown keys are errors, except `server`,
//! which is ignored); batch settings are shared by all clients (the
//! smallest `batchwait` and `batchsize` win); `max_retries` defaults to 0,
//! meaning retry forever, because dropping a batch would lose lines.

use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Why a configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("reading config {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The YAML is malformed or has unknown fields (with line and column).
    #[error("parsing config {path}: {msg}")]
    Parse {
        /// The file (`<string>` when parsed from text).
        path: PathBuf,
        /// What is wrong.
        msg: String,
    },
    /// A value is invalid.
    #[error("config {path}: {field}: {msg}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// Where (e.g. `scrape_configs[0].static_configs[1].labels.__path__`).
        field: String,
        /// What is wrong.
        msg: String,
    },
}

fn de_duration<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let s = String::deserialize(d)?;
    crate::scrape::config::parse_duration(&s).ok_or_else(|| serde::de::Error::custom(format!("invalid duration {s:?} (e.g. 500ms, 1s, 5m)")))
}

/// The whole file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Promtail's HTTP server settings: accepted and ignored.
    #[serde(default)]
    pub server: Option<serde_yaml::Value>,
    /// Where to push.
    pub clients: Vec<ClientConfig>,
    /// The positions file.
    pub positions: PositionsConfig,
    /// What to read.
    pub scrape_configs: Vec<ScrapeConfig>,
    /// Target discovery settings.
    #[serde(default)]
    pub target_config: TargetConfig,
    /// How often open files are checked for new data.
    #[serde(default = "default_poll", deserialize_with = "de_duration")]
    pub poll_interval: Duration,
    /// Longest line; longer ones are sent in pieces of this many bytes.
    #[serde(default = "default_max_line")]
    pub max_line_size: usize,
}

fn default_poll() -> Duration {
    Duration::from_millis(250)
}
fn default_max_line() -> usize {
    256 << 10
}

/// One push endpoint.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientConfig {
    /// Push URL (`.../loki/api/v1/push`).
    pub url: String,
    /// Longest wait before a non-empty batch is sent.
    #[serde(default = "default_batchwait", deserialize_with = "de_duration")]
    pub batchwait: Duration,
    /// Batch size in bytes of lines.
    #[serde(default = "default_batchsize")]
    pub batchsize: usize,
    /// HTTP timeout per request.
    #[serde(default = "default_timeout", deserialize_with = "de_duration")]
    pub timeout: Duration,
    /// Retry settings.
    #[serde(default)]
    pub backoff_config: BackoffConfig,
    /// `X-Scope-OrgID`.
    #[serde(default)]
    pub tenant_id: Option<String>,
    /// Basic authentication.
    #[serde(default)]
    pub basic_auth: Option<BasicAuth>,
    /// Labels added to every stream sent to this client.
    #[serde(default)]
    pub external_labels: BTreeMap<String, String>,
    /// Body format.
    #[serde(default)]
    pub format: PushFormat,
}

fn default_batchwait() -> Duration {
    Duration::from_secs(1)
}
fn default_batchsize() -> usize {
    1 << 20
}
fn default_timeout() -> Duration {
    Duration::from_secs(10)
}

/// Body format of pushes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PushFormat {
    /// Snappy-compressed protobuf (Promtail's).
    #[default]
    Protobuf,
    /// JSON.
    Json,
}

/// Basic authentication credentials.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BasicAuth {
    /// User.
    pub username: String,
    /// Password.
    #[serde(default)]
    pub password: String,
}

/// Retry settings: exponential backoff between `min_period` and
/// `max_period`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackoffConfig {
    /// First wait.
    #[serde(default = "default_min_period", deserialize_with = "de_duration")]
    pub min_period: Duration,
    /// Longest wait.
    #[serde(default = "default_max_period", deserialize_with = "de_duration")]
    pub max_period: Duration,
    /// Attempts before a batch is dropped; 0 = never drop.
    #[serde(default)]
    pub max_retries: u32,
}

fn default_min_period() -> Duration {
    Duration::from_millis(500)
}
fn default_max_period() -> Duration {
    Duration::from_secs(300)
}

impl Default for BackoffConfig {
    fn default() -> Self {
        BackoffConfig { min_period: default_min_period(), max_period: default_max_period(), max_retries: 0 }
    }
}

/// The positions file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PositionsConfig {
    /// Its path.
    pub filename: PathBuf,
    /// Promtail's periodic sync: accepted and ignored (positions are
    /// written after every acknowledged batch).
    #[serde(default)]
    pub sync_period: Option<String>,
}

/// Discovery settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetConfig {
    /// How often globs are expanded again.
    #[serde(default = "default_sync", deserialize_with = "de_duration")]
    pub sync_period: Duration,
}

fn default_sync() -> Duration {
    Duration::from_secs(10)
}

impl Default for TargetConfig {
    fn default() -> Self {
        TargetConfig { sync_period: default_sync() }
    }
}

/// One job.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScrapeConfig {
    /// Name.
    pub job_name: String,
    /// Its file groups.
    #[serde(default)]
    pub static_configs: Vec<StaticConfig>,
}

/// A file group: a glob in `__path__` and the labels of its streams.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StaticConfig {
    /// Ignored (Promtail requires `localhost`).
    #[serde(default)]
    pub targets: Vec<String>,
    /// Labels; `__path__` is the glob, `__path_exclude__` an optional
    /// exclusion glob, other `__` labels are dropped.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

/// A compiled file group.
#[derive(Debug, Clone)]
pub struct Target {
    /// The job.
    pub job_name: String,
    /// `__path__`.
    pub include: String,
    /// `__path_exclude__`.
    pub exclude: Option<glob::Pattern>,
    /// Labels of its streams (without `filename`).
    pub labels: model::Labels,
}

impl Config {
    /// Loads and checks a file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.to_path_buf(), source })?;
        Self::parse(&text, path)
    }

    /// Parses and checks YAML text (`path` is for messages).
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let cfg: Config = serde_yaml::from_str(text).map_err(|e| ConfigError::Parse { path: path.to_path_buf(), msg: e.to_string() })?;
        let invalid = |field: String, msg: &str| ConfigError::Invalid { path: path.to_path_buf(), field, msg: msg.to_string() };
        if cfg.clients.is_empty() {
            return Err(invalid("clients".into(), "at least one client is required"));
        }
        for (i, c) in cfg.clients.iter().enumerate() {
            if !(c.url.starts_with("http://") || c.url.starts_with("https://")) {
                return Err(invalid(format!("clients[{i}].url"), "must be an http:// or https:// URL"));
            }
            if c.batchsize == 0 {
                return Err(invalid(format!("clients[{i}].batchsize"), "must be positive"));
            }
            for k in c.external_labels.keys() {
                if !model::is_valid_label_name(k) {
                    return Err(invalid(format!("clients[{i}].external_labels.{k}"), "invalid label name"));
                }
            }
        }
        if cfg.max_line_size < 16 {
            return Err(invalid("max_line_size".into(), "must be at least 16 bytes"));
        }
        cfg.targets(path)?;
        Ok(cfg)
    }

    /// The compiled file groups.
    pub fn targets(&self, path: &Path) -> Result<Vec<Target>, ConfigError> {
        let invalid = |field: String, msg: String| ConfigError::Invalid { path: path.to_path_buf(), field, msg };
        let mut out = Vec::new();
        for (i, sc) in self.scrape_configs.iter().enumerate() {
            for (j, st) in sc.static_configs.iter().enumerate() {
                let at = format!("scrape_configs[{i}].static_configs[{j}].labels");
                let include = st.labels.get("__path__").cloned().ok_or_else(|| invalid(format!("{at}.__path__"), "missing (the glob of files to read)".into()))?;
                glob::Pattern::new(&include).map_err(|e| invalid(format!("{at}.__path__"), format!("invalid glob {include:?}: {e}")))?;
                let exclude = match st.labels.get("__path_exclude__") {
                    Some(p) => Some(glob::Pattern::new(p).map_err(|e| invalid(format!("{at}.__path_exclude__"), format!("invalid glob {p:?}: {e}")))?),
                    None => None,
                };
                let mut pairs: Vec<(String, String)> = Vec::new();
                for (k, v) in &st.labels {
                    if k.starts_with("__") {
                        continue;
                    }
                    if !model::is_valid_label_name(k) {
                        return Err(invalid(format!("{at}.{k}"), "invalid label name".into()));
                    }
                    pairs.push((k.clone(), v.clone()));
                }
                out.push(Target { job_name: sc.job_name.clone(), include, exclude, labels: model::Labels::from_pairs(pairs) });
            }
        }
        if out.is_empty() {
            return Err(invalid("scrape_configs".into(), "no static_configs with a __path__".into()));
        }
        Ok(out)
    }

    /// The batch settings shared by all clients: the smallest wait and size.
    pub fn batch(&self) -> (Duration, usize) {
        let wait = self.clients.iter().map(|c| c.batchwait).min().unwrap_or_else(default_batchwait);
        let size = self.clients.iter().map(|c| c.batchsize).min().unwrap_or_else(default_batchsize);
        (wait, size)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
server: {http_listen_port: 9080}
clients:
  - url: http://127.0.0.1:3100/loki/api/v1/push
    batchwait: 200ms
    external_labels: {host: a}
  - url: http://127.0.0.1:3101/loki/api/v1/push
    batchsize: 1000
    format: json
    backoff_config: {min_period: 100ms, max_retries: 3}
positions:
  filename: /tmp/positions.yaml
scrape_configs:
  - job_name: system
    static_configs:
      - targets: [localhost]
        labels: {job: varlogs, __path__: "/var/log/*.log", __path_exclude__: "/var/log/x*.log"}
"#;

    #[test]
    fn parses_promtail_subset() {
        let c = Config::parse(GOOD, Path::new("a.yaml")).unwrap();
        assert_eq!(c.batch(), (Duration::from_millis(200), 1000));
        assert_eq!(c.clients[1].format, PushFormat::Json);
        assert_eq!(c.clients[1].backoff_config.max_retries, 3);
        assert_eq!(c.clients[0].backoff_config.max_retries, 0);
        let t = c.targets(Path::new("a.yaml")).unwrap();
        assert_eq!(t[0].labels, model::Labels::from_pairs([("job", "varlogs")]));
        assert!(t[0].exclude.as_ref().unwrap().matches("/var/log/x1.log"));
    }

    #[test]
    fn clear_errors() {
        let e = Config::parse(&GOOD.replace("batchwait: 200ms", "batchwait: soon"), Path::new("a.yaml")).unwrap_err();
        assert!(e.to_string().contains("invalid duration \"soon\""), "{e}");
        let e = Config::parse(&GOOD.replace("__path__", "__pth__"), Path::new("a.yaml")).unwrap_err();
        assert!(e.to_string().contains("scrape_configs[0].static_configs[0].labels.__path__: missing"), "{e}");
        let e = Config::parse(&GOOD.replace("job_name: system", "job_name: system\n    pipeline_stages: []"), Path::new("a.yaml")).unwrap_err();
        assert!(e.to_string().contains("unknown field `pipeline_stages`"), "{e}");
        let e = Config::parse(&GOOD.replace("http://127.0.0.1:3101", "ftp://x"), Path::new("a.yaml")).unwrap_err();
        assert!(e.to_string().contains("clients[1].url"), "{e}");
        assert!(Config::parse("clients: [", Path::new("a.yaml")).is_err());
    }
}
