//! Prometheus-style scrape configuration (the `scrape_configs` part of
//! `prometheus.yml`), validated with errors naming the job and field.

use super::relabel::RelabelConfig;
use serde::Deserialize;
use std::time::Duration;

/// The top of a Prometheus configuration file; other sections are ignored.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Defaults for every job.
    #[serde(default)]
    pub global: GlobalConfig,
    /// The jobs.
    #[serde(default)]
    pub scrape_configs: Vec<ScrapeConfig>,
    /// Remote-write destinations.
    #[serde(default)]
    pub remote_write: Vec<RemoteWriteConfig>,
    /// Rule files (loaded by the alerter; listed here so Prometheus files parse).
    #[serde(default)]
    pub rule_files: Vec<String>,
    /// Alerting section (accepted and ignored here).
    #[serde(default)]
    pub alerting: Option<serde_yaml::Value>,
    /// Remote read (accepted and ignored).
    #[serde(default)]
    pub remote_read: Option<serde_yaml::Value>,
    /// Storage section (accepted and ignored).
    #[serde(default)]
    pub storage: Option<serde_yaml::Value>,
}

/// The `global` section.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GlobalConfig {
    /// Default scrape interval (Prometheus: 1m).
    #[serde(default = "default_interval", with = "prom_duration")]
    pub scrape_interval: Duration,
    /// Default scrape timeout (Prometheus: 10s).
    #[serde(default = "default_timeout", with = "prom_duration")]
    pub scrape_timeout: Duration,
    /// Rule evaluation interval (Prometheus: 1m).
    #[serde(default = "default_interval", with = "prom_duration")]
    pub evaluation_interval: Duration,
    /// Labels added to every series sent out.
    #[serde(default)]
    pub external_labels: std::collections::BTreeMap<String, String>,
}

impl Default for GlobalConfig {
    fn default() -> Self {
        GlobalConfig {
            scrape_interval: default_interval(),
            scrape_timeout: default_timeout(),
            evaluation_interval: default_interval(),
            external_labels: Default::default(),
        }
    }
}

fn default_interval() -> Duration {
    Duration::from_secs(60)
}

fn default_timeout() -> Duration {
    Duration::from_secs(10)
}

/// One job.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScrapeConfig {
    /// The `job` label.
    pub job_name: String,
    /// Interval (default: global).
    #[serde(default, with = "opt_prom_duration")]
    pub scrape_interval: Option<Duration>,
    /// Timeout (default: global, capped at the interval).
    #[serde(default, with = "opt_prom_duration")]
    pub scrape_timeout: Option<Duration>,
    /// Path (default `/metrics`).
    #[serde(default = "default_path")]
    pub metrics_path: String,
    /// `http` or `https`.
    #[serde(default = "default_scheme")]
    pub scheme: String,
    /// Keep the scraped job/instance labels on conflict.
    #[serde(default)]
    pub honor_labels: bool,
    /// Keep the scraped timestamps (default true).
    #[serde(default = "yes")]
    pub honor_timestamps: bool,
    /// URL parameters.
    #[serde(default)]
    pub params: std::collections::BTreeMap<String, Vec<String>>,
    /// Static targets.
    #[serde(default)]
    pub static_configs: Vec<StaticConfig>,
    /// Relabelling of targets before scraping.
    #[serde(default)]
    pub relabel_configs: Vec<RelabelConfig>,
    /// Relabelling of scraped samples before storage.
    #[serde(default)]
    pub metric_relabel_configs: Vec<RelabelConfig>,
    /// Most samples per scrape (0 = no limit); over it the scrape fails.
    #[serde(default)]
    pub sample_limit: usize,
}

fn yes() -> bool {
    true
}

fn default_path() -> String {
    "/metrics".to_string()
}

fn default_scheme() -> String {
    "http".to_string()
}

/// A group of static targets with shared labels.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StaticConfig {
    /// `host:port` targets.
    #[serde(default)]
    pub targets: Vec<String>,
    /// Labels added to each target.
    #[serde(default)]
    pub labels: std::collections::BTreeMap<String, String>,
}

/// A remote-write destination.
#[derive(Debug, Clone, Deserialize)]
pub struct RemoteWriteConfig {
    /// The receiver's URL.
    pub url: String,
    /// Request timeout (default 30s).
    #[serde(default, with = "opt_prom_duration")]
    pub remote_timeout: Option<Duration>,
    /// Relabelling applied before sending.
    #[serde(default)]
    pub write_relabel_configs: Vec<RelabelConfig>,
    /// Queue settings (only `capacity` and `max_samples_per_send` are used).
    #[serde(default)]
    pub queue_config: QueueConfig,
}

/// Remote-write queue settings.
#[derive(Debug, Clone, Deserialize)]
pub struct QueueConfig {
    /// Samples buffered before new ones are dropped (and counted).
    #[serde(default = "default_capacity")]
    pub capacity: usize,
    /// Samples per request.
    #[serde(default = "default_per_send")]
    pub max_samples_per_send: usize,
}

impl Default for QueueConfig {
    fn default() -> Self {
        QueueConfig { capacity: default_capacity(), max_samples_per_send: default_per_send() }
    }
}

fn default_capacity() -> usize {
    100_000
}

fn default_per_send() -> usize {
    2000
}

/// A configuration problem, naming the job and field.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file cannot be read.
    #[error("reading {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// The YAML does not match the schema.
    #[error("parsing {path}: {source}")]
    Yaml {
        /// The file.
        path: String,
        /// Cause (with line and column).
        #[source]
        source: serde_yaml::Error,
    },
    /// A value is invalid.
    #[error("scrape config {job:?}: field {field}: {message}")]
    Invalid {
        /// The job name.
        job: String,
        /// The field.
        field: &'static str,
        /// What is wrong.
        message: String,
    },
}

impl Config {
    /// Reads and validates a file.
    pub fn load(path: &std::path::Path) -> Result<Config, ConfigError> {
        let p = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io { path: p.clone(), source })?;
        Config::parse(&text, &p)
    }

    /// Parses and validates YAML text; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Config, ConfigError> {
        let cfg: Config = serde_yaml::from_str(text)
            .map_err(|source| ConfigError::Yaml { path: origin.to_string(), source })?;
        cfg.validate()?;
        Ok(cfg)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let mut seen = std::collections::BTreeSet::new();
        for sc in &self.scrape_configs {
            let bad = |field, message: String| ConfigError::Invalid { job: sc.job_name.clone(), field, message };
            if sc.job_name.is_empty() {
                return Err(bad("job_name", "must not be empty".into()));
            }
            if !seen.insert(&sc.job_name) {
                return Err(bad("job_name", "found multiple scrape configs with this job name".into()));
            }
            if sc.scheme != "http" && sc.scheme != "https" {
                return Err(bad("scheme", format!("must be http or https, got {:?}", sc.scheme)));
            }
            if !sc.metrics_path.starts_with('/') {
                return Err(bad("metrics_path", format!("must start with '/', got {:?}", sc.metrics_path)));
            }
            let interval = self.interval(sc);
            if interval.is_zero() {
                return Err(bad("scrape_interval", "must be greater than zero".into()));
            }
            if self.timeout(sc) > interval {
                return Err(bad(
                    "scrape_timeout",
                    format!("{:?} is greater than the scrape interval {:?}", self.timeout(sc), interval),
                ));
            }
            for st in &sc.static_configs {
                for t in &st.targets {
                    if t.is_empty() || t.contains('/') || t.contains(char::is_whitespace) {
                        return Err(bad("static_configs.targets", format!("{t:?} is not a valid host:port")));
                    }
                }
                for k in st.labels.keys() {
                    if !model::is_valid_label_name(k) {
                        return Err(bad("static_configs.labels", format!("{k:?} is not a valid label name")));
                    }
                }
            }
            for (field, rcs) in [("relabel_configs", &sc.relabel_configs), ("metric_relabel_configs", &sc.metric_relabel_configs)] {
                for rc in rcs {
                    rc.validate().map_err(|m| bad(field, m))?;
                }
            }
        }
        for rw in &self.remote_write {
            if !(rw.url.starts_with("http://") || rw.url.starts_with("https://")) {
                return Err(ConfigError::Invalid {
                    job: "remote_write".into(),
                    field: "url",
                    message: format!("{:?} is not an http(s) URL", rw.url),
                });
            }
        }
        Ok(())
    }

    /// The effective interval of a job.
    pub fn interval(&self, sc: &ScrapeConfig) -> Duration {
        sc.scrape_interval.unwrap_or(self.global.scrape_interval)
    }

    /// The effective timeout of a job (the global default is capped at the
    /// job's interval, as Prometheus does).
    pub fn timeout(&self, sc: &ScrapeConfig) -> Duration {
        match sc.scrape_timeout {
            Some(t) => t,
            None => self.global.scrape_timeout.min(self.interval(sc)),
        }
    }
}

/// Parses a Prometheus duration (`15s`, `1m30s`, `500ms`, `1h`, `1d`).
pub fn parse_duration(s: &str) -> Option<Duration> {
    let ms = promql::lexer::parse_duration(s.trim())?;
    u64::try_from(ms).ok().map(Duration::from_millis)
}

mod prom_duration {
    use serde::{Deserialize, Deserializer};
    use std::time::Duration;

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let s = String::deserialize(d)?;
        super::parse_duration(&s).ok_or_else(|| serde::de::Error::custom(format!("not a valid duration: {s:?}")))
    }
}

mod opt_prom_duration {
    use serde::{Deserialize, Deserializer};
    use std::time::Duration;

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        let s: Option<String> = Option::deserialize(d)?;
        match s {
            None => Ok(None),
            Some(s) => super::parse_duration(&s)
                .map(Some)
                .ok_or_else(|| serde::de::Error::custom(format!("not a valid duration: {s:?}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_prometheus_file() {
        let cfg = Config::parse(
            r#"
global:
  scrape_interval: 15s
scrape_configs:
  - job_name: node
    static_configs:
      - targets: ["127.0.0.1:9100"]
        labels: {env: prod}
    metric_relabel_configs:
      - source_labels: [__name__]
        regex: "go_.*"
        action: drop
"#,
            "test",
        )
        .unwrap();
        let sc = &cfg.scrape_configs[0];
        assert_eq!(cfg.interval(sc), Duration::from_secs(15));
        assert_eq!(cfg.timeout(sc), Duration::from_secs(10));
        assert_eq!(sc.metrics_path, "/metrics");
        assert_eq!(sc.static_configs[0].labels["env"], "prod");
    }

    #[test]
    fn errors_name_job_and_field() {
        let e = Config::parse(
            "scrape_configs:\n  - job_name: a\n    scrape_interval: 5s\n    scrape_timeout: 10s\n",
            "t",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("\"a\"") && e.contains("scrape_timeout"), "{e}");
        let e = Config::parse("scrape_configs:\n  - job_name: a\n    scrape_interval: soon\n", "t").unwrap_err().to_string();
        assert!(e.contains("not a valid duration"), "{e}");
        let e = Config::parse("scrape_configs:\n  - job_name: a\n  - job_name: a\n", "t").unwrap_err().to_string();
        assert!(e.contains("multiple"), "{e}");
    }
}
