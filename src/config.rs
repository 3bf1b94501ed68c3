//! The typed configuration tree: embedded defaults (`config/defaults.toml`), then an
//! optional TOML file, then `HOOKRELAY__SECTION__KEY` environment variables, validated once.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::Figment;
use figment::providers::{Format, Toml};
use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::event::CodecConfig;

/// The defaults, compiled in so the binary runs without any file.
pub const DEFAULTS: &str = include_str!("../config/defaults.toml");

/// Environment variables with this prefix override keys: `HOOKRELAY__DELIVERY__TIMEOUT=3s`.
pub const ENV_PREFIX: &str = "HOOKRELAY__";

/// The longest duration any setting accepts. Durations are added to clocks and Unix
/// milliseconds, doubled (retry retention) and grown (e-mail backoff); within this bound none
/// of that overflows, and no setting means anything beyond it.
/// 100 years of 365.25 days, as humantime reads `100y`.
pub const MAX_DURATION: Duration = Duration::from_secs(100 * 31_557_600);

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// Figment's message names the key and where its value came from.
    #[error("invalid configuration: {0}")]
    Load(Box<figment::Error>),
    #[error("configuration key `{key}`: {message}")]
    Invalid { key: &'static str, message: String },
    #[error("configuration file {path}")]
    File {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl From<Box<figment::Error>> for ConfigError {
    fn from(e: Box<figment::Error>) -> Self {
        ConfigError::Load(e)
    }
}

fn invalid(key: &'static str, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key,
        message: message.into(),
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub kafka: KafkaConfig,
    pub topics: TopicsConfig,
    pub retry: RetryConfig,
    pub delivery: DeliveryConfig,
    pub subscriptions: SubscriptionsConfig,
    pub codec: CodecConfig,
    pub admin: AdminConfig,
    pub api: ApiConfig,
    pub log: LogConfig,
    pub shutdown: ShutdownConfig,
    pub notify: NotifyConfig,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaConfig {
    pub bootstrap_servers: String,
    pub group_id: String,
    pub client_id: String,
    /// How long start-up waits for a broker to answer before giving up. Authentication and
    /// TLS failures end the wait at once.
    #[serde(with = "humantime_serde")]
    pub connect_timeout: Duration,
    /// librdkafka properties. Numbers and booleans are accepted and passed on as text, as
    /// librdkafka takes them (an environment value like `10000` or `true` parses as one).
    #[serde(default, deserialize_with = "scalars_as_strings")]
    pub properties: BTreeMap<String, String>,
}

/// A map of scalars (string, boolean, integer, float) read as strings.
fn scalars_as_strings<'de, D>(deserializer: D) -> Result<BTreeMap<String, String>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Scalar {
        Text(String),
        Bool(bool),
        Int(i64),
        Float(f64),
    }
    let raw = BTreeMap::<String, Scalar>::deserialize(deserializer)?;
    Ok(raw
        .into_iter()
        .map(|(k, v)| {
            let v = match v {
                Scalar::Text(s) => s,
                Scalar::Bool(b) => b.to_string(),
                Scalar::Int(i) => i.to_string(),
                Scalar::Float(f) => f.to_string(),
            };
            (k, v)
        })
        .collect())
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TopicsConfig {
    pub events: String,
    pub subscriptions: String,
    pub invalid: String,
    pub dead_letter: String,
    pub attempts: String,
    pub notifications: String,
    pub requests: String,
    pub api_keys: String,
    pub replication_factor: u16,
    pub partitions: PartitionsConfig,
    pub retention: RetentionConfig,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PartitionsConfig {
    pub events: u16,
    pub subscriptions: u16,
    pub invalid: u16,
    pub retry: u16,
    pub dead_letter: u16,
    pub attempts: u16,
    pub notifications: u16,
    pub requests: u16,
    pub api_keys: u16,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetentionConfig {
    #[serde(with = "humantime_serde")]
    pub invalid: Duration,
    #[serde(with = "humantime_serde")]
    pub dead_letter: Duration,
    #[serde(with = "humantime_serde")]
    pub attempts: Duration,
    #[serde(with = "humantime_serde")]
    pub notifications: Duration,
    #[serde(with = "humantime_serde")]
    pub requests: Duration,
    #[serde(with = "humantime_serde")]
    pub retry_minimum: Duration,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetryConfig {
    pub tiers: Vec<RetryTier>,
    pub breaker_threshold: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RetryTier {
    pub topic: String,
    #[serde(with = "humantime_serde")]
    pub delay: Duration,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeliveryConfig {
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    pub response_body_limit: usize,
    pub max_in_flight: usize,
    pub endpoint_backlog: usize,
    pub endpoint_concurrency: u32,
    pub endpoint_rate_limit: f64,
    pub ssrf_allowlist: Vec<IpNet>,
    pub batch: BatchConfig,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchConfig {
    pub max_events: usize,
    pub max_bytes: usize,
    #[serde(with = "humantime_serde")]
    pub linger: Duration,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubscriptionsConfig {
    pub data_dir: PathBuf,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminConfig {
    pub listen: SocketAddr,
}

/// The customer API (`/v1`) and the dashboard (`/dashboard`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiConfig {
    pub enabled: bool,
    /// An address of its own; `None` serves the API on the admin server's address.
    #[serde(default)]
    pub listen: Option<SocketAddr>,
    /// This process's RocksDB directory for the attempts log and the API keys; empty: next to
    /// the subscriptions table's (see [`Config::api_data_dir`]).
    pub data_dir: PathBuf,
    pub https_required: bool,
    /// When not empty, endpoint URLs must name one of these hosts (`.example.com` also
    /// admits its subdomains).
    pub allowed_url_hosts: Vec<String>,
    #[serde(with = "humantime_serde")]
    pub secret_rotation_overlap: Duration,
    #[serde(with = "humantime_serde")]
    pub max_secret_rotation_overlap: Duration,
    pub rate_limit_per_key: f64,
    pub rate_limit_burst: u32,
    pub max_body_bytes: usize,
    #[serde(with = "humantime_serde")]
    pub attempts_retention: Duration,
    pub replay_max: u32,
    pub replays_running_max: usize,
    /// Source addresses or networks of deliveries, shown to customers for allowlisting.
    pub egress_ips: Vec<String>,
    pub dashboard: bool,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Human,
    Json,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    pub format: LogFormat,
    pub filter: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShutdownConfig {
    #[serde(with = "humantime_serde")]
    pub drain_timeout: Duration,
}

/// The owner e-mails sent when an endpoint is disabled (see `crate::notify`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotifyConfig {
    /// Runs the notifier inside `hookrelay run`. `hookrelay notify` runs it regardless.
    pub enabled: bool,
    /// Consumer group of the notifier; empty means `<kafka.group_id>-notify`.
    pub group_id: String,
    /// The sender, `Name <address>` or a bare address. Required when sending.
    pub from: String,
    /// Where replies go; empty means no Reply-To header.
    pub reply_to: String,
    /// The operator's address for endpoints whose account has no contact e-mail; empty
    /// means such notices are skipped (logged and counted).
    pub fallback_to: String,
    /// Where the owner re-enables the endpoint, with `{endpoint_id}` and `{account_id}`
    /// replaced; empty means the e-mail describes the endpoint update instead of a link.
    pub reenable_url: String,
    /// The right-hand side of the `Message-ID`s (`<ntf_…@domain>`); empty means the domain
    /// of `from`.
    pub message_id_domain: String,
    /// The first wait after a failed SMTP attempt; each further failure doubles it.
    #[serde(with = "humantime_serde")]
    pub retry_initial: Duration,
    /// The longest wait between SMTP attempts.
    #[serde(with = "humantime_serde")]
    pub retry_max: Duration,
    pub smtp: SmtpConfig,
}

/// The SMTP server (a relay or submission service) the notifier hands e-mails to.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpConfig {
    pub host: String,
    pub port: u16,
    pub tls: SmtpTls,
    /// Empty means no authentication.
    pub username: String,
    pub password: Password,
    /// A PEM file of extra CA certificates to trust (a private relay); empty means the
    /// system's trust store only.
    pub ca_file: String,
    /// Bound on connecting and on each SMTP command.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
}

/// How the SMTP connection is protected.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum SmtpTls {
    /// Plain connection upgraded with STARTTLS (port 587); refused if the server cannot.
    Starttls,
    /// TLS from the first byte (SMTPS, port 465).
    Implicit,
    /// No TLS: only for a relay on the same host or a local test server.
    None,
}

/// A password from the configuration. `Debug` prints `***`; `config check` masks it.
#[derive(Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Password(String);

impl Password {
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }

    /// The password itself, for the one place that sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

impl Config {
    /// Defaults, then `file` (if given), then the environment.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        let env: Vec<(String, String)> = std::env::vars().collect();
        Self::load_from(file, &env)
    }

    /// Like [`Config::load`] with the environment passed in, so tests need not touch the
    /// process environment.
    pub fn load_from(file: Option<&Path>, env: &[(String, String)]) -> Result<Self, ConfigError> {
        let text = match file {
            // Read it ourselves: figment silently ignores a missing file.
            Some(path) => {
                Some(
                    std::fs::read_to_string(path).map_err(|source| ConfigError::File {
                        path: path.to_owned(),
                        source,
                    })?,
                )
            }
            None => None,
        };
        Self::load_from_str(text.as_deref(), env)
    }

    /// Like [`Config::load_from`] with the file's text instead of its path: defaults, then
    /// `toml` (if given), then `env`, validated.
    pub fn load_from_str(
        toml: Option<&str>,
        env: &[(String, String)],
    ) -> Result<Self, ConfigError> {
        let mut figment = Figment::from(Toml::string(DEFAULTS));
        if let Some(text) = toml {
            figment = figment.merge(Toml::string(text));
        }
        figment = figment.merge(env_provider(env));
        let config: Config = figment.extract().map_err(Box::new)?;
        config.validate()?;
        Ok(config)
    }

    /// Checks what the types cannot say. Each error names the key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        for (key, duration) in self.durations() {
            if duration > MAX_DURATION {
                return Err(invalid(key, "must be at most 100 years"));
            }
        }
        let t = &self.topics;
        let mut names: Vec<(&'static str, &str)> = vec![
            ("topics.events", &t.events),
            ("topics.subscriptions", &t.subscriptions),
            ("topics.invalid", &t.invalid),
            ("topics.dead_letter", &t.dead_letter),
            ("topics.attempts", &t.attempts),
            ("topics.notifications", &t.notifications),
            ("topics.requests", &t.requests),
            ("topics.api_keys", &t.api_keys),
        ];
        names.extend(
            self.retry
                .tiers
                .iter()
                .map(|tier| ("retry.tiers", tier.topic.as_str())),
        );
        for (key, name) in &names {
            validate_topic_name(key, name)?;
        }
        for (i, (key, name)) in names.iter().enumerate() {
            if names[..i].iter().any(|(_, other)| other == name) {
                return Err(invalid(key, format!("topic {name:?} is used twice")));
            }
        }
        if t.replication_factor == 0 {
            return Err(invalid("topics.replication_factor", "must be at least 1"));
        }
        let p = &t.partitions;
        for (key, n) in [
            ("topics.partitions.events", p.events),
            ("topics.partitions.subscriptions", p.subscriptions),
            ("topics.partitions.invalid", p.invalid),
            ("topics.partitions.retry", p.retry),
            ("topics.partitions.dead_letter", p.dead_letter),
            ("topics.partitions.attempts", p.attempts),
            ("topics.partitions.notifications", p.notifications),
            ("topics.partitions.requests", p.requests),
            ("topics.partitions.api_keys", p.api_keys),
        ] {
            if n == 0 {
                return Err(invalid(key, "must be at least 1"));
            }
        }
        if self.retry.tiers.is_empty() {
            return Err(invalid("retry.tiers", "needs at least one tier"));
        }
        for pair in self.retry.tiers.windows(2) {
            if pair[1].delay <= pair[0].delay {
                return Err(invalid(
                    "retry.tiers",
                    format!(
                        "delays must grow from tier to tier ({} is not longer than {})",
                        humantime::format_duration(pair[1].delay),
                        humantime::format_duration(pair[0].delay)
                    ),
                ));
            }
        }
        if self.retry.tiers.iter().any(|t| t.delay.is_zero()) {
            return Err(invalid("retry.tiers", "a delay must be longer than zero"));
        }
        if self.retry.breaker_threshold == 0 {
            return Err(invalid("retry.breaker_threshold", "must be at least 1"));
        }
        let d = &self.delivery;
        if d.timeout.is_zero() {
            return Err(invalid("delivery.timeout", "must be longer than zero"));
        }
        if d.max_in_flight == 0 {
            return Err(invalid("delivery.max_in_flight", "must be at least 1"));
        }
        if d.endpoint_backlog == 0 {
            return Err(invalid("delivery.endpoint_backlog", "must be at least 1"));
        }
        if d.endpoint_concurrency == 0 {
            return Err(invalid(
                "delivery.endpoint_concurrency",
                "must be at least 1",
            ));
        }
        if !d.endpoint_rate_limit.is_finite() || d.endpoint_rate_limit < 0.0 {
            return Err(invalid(
                "delivery.endpoint_rate_limit",
                "must be a number of requests per second, or 0 for unlimited",
            ));
        }
        if d.batch.max_events == 0 {
            return Err(invalid("delivery.batch.max_events", "must be at least 1"));
        }
        if d.batch.max_bytes < 1024 {
            return Err(invalid("delivery.batch.max_bytes", "must be at least 1024"));
        }
        if self.kafka.group_id.trim().is_empty() {
            return Err(invalid("kafka.group_id", "must not be empty"));
        }
        if self.subscriptions.data_dir.as_os_str().is_empty() {
            return Err(invalid("subscriptions.data_dir", "must not be empty"));
        }
        if self.kafka.connect_timeout.is_zero() {
            return Err(invalid("kafka.connect_timeout", "must be longer than zero"));
        }
        self.validate_api()?;
        tracing_subscriber::EnvFilter::try_new(&self.log.filter)
            .map_err(|e| invalid("log.filter", e.to_string()))?;
        // Start-up builds the decoder from this table; `config check` must refuse what `run`
        // would.
        crate::event::EventDecoder::new(&self.codec).map_err(|e| match e {
            crate::event::CodecError::UnknownSchemaName { id, name, known } => invalid(
                "codec.confluent_schema_ids",
                format!(
                    "schema id {id} maps to {name:?}, which is not a known schema (known: {known})"
                ),
            ),
            other => invalid("codec.confluent_schema_ids", other.to_string()),
        })?;
        self.validate_notify(self.notify.enabled)?;
        self.validate_schema_registry()?;
        Ok(())
    }

    /// Checks `[codec.schema_registry]` when a URL is set.
    fn validate_schema_registry(&self) -> Result<(), ConfigError> {
        let r = &self.codec.schema_registry;
        if !r.enabled() {
            return Ok(());
        }
        let url = url::Url::parse(r.url.trim()).map_err(|e| {
            invalid(
                "codec.schema_registry.url",
                format!("is not a URL ({e}); e.g. https://registry.example.com"),
            )
        })?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err(invalid(
                "codec.schema_registry.url",
                "must be an http or https URL with a host",
            ));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(invalid(
                "codec.schema_registry.url",
                "must not carry credentials: set codec.schema_registry.username and password",
            ));
        }
        let basic = !r.username.is_empty();
        if basic && !r.bearer_token.is_empty() {
            return Err(invalid(
                "codec.schema_registry.bearer_token",
                "is set together with codec.schema_registry.username: choose basic authentication or a bearer token",
            ));
        }
        if !basic && !r.password.is_empty() {
            return Err(invalid(
                "codec.schema_registry.password",
                "is set but codec.schema_registry.username is empty",
            ));
        }
        let credentials = basic || !r.bearer_token.is_empty();
        if credentials && url.scheme() == "http" && !url.host_str().is_some_and(is_loopback_host) {
            return Err(invalid(
                "codec.schema_registry.url",
                "is plain http but credentials are set: they would cross the network unencrypted (use https)",
            ));
        }
        if !r.ca_file.is_empty() && !Path::new(&r.ca_file).is_file() {
            return Err(invalid(
                "codec.schema_registry.ca_file",
                format!("{} is not a readable file", r.ca_file),
            ));
        }
        for (key, d) in [
            ("codec.schema_registry.timeout", r.timeout),
            ("codec.schema_registry.retry_initial", r.retry_initial),
        ] {
            if d.is_zero() {
                return Err(invalid(key, "must be longer than zero"));
            }
        }
        if r.retry_max < r.retry_initial {
            return Err(invalid(
                "codec.schema_registry.retry_max",
                "must be at least codec.schema_registry.retry_initial",
            ));
        }
        Ok(())
    }

    /// Checks the `[notify]` section. With `sending` (the notifier will run) the SMTP server
    /// and sender must be set; the rest is checked whenever it is set.
    pub fn validate_notify(&self, sending: bool) -> Result<(), ConfigError> {
        let n = &self.notify;
        let mailbox = |key: &'static str, value: &str| {
            value
                .parse::<lettre::message::Mailbox>()
                .map(drop)
                .map_err(|e| invalid(key, format!("{value:?} is not an e-mail address ({e})")))
        };
        if sending && n.smtp.host.trim().is_empty() {
            return Err(invalid(
                "notify.smtp.host",
                "must name the SMTP server when the notifier runs",
            ));
        }
        if sending && n.from.trim().is_empty() {
            return Err(invalid(
                "notify.from",
                "must be the sender address when the notifier runs",
            ));
        }
        for (key, value) in [
            ("notify.from", &n.from),
            ("notify.reply_to", &n.reply_to),
            ("notify.fallback_to", &n.fallback_to),
        ] {
            if !value.trim().is_empty() {
                mailbox(key, value)?;
            }
        }
        if !n.group_id.is_empty() && n.group_id.trim().is_empty() {
            return Err(invalid("notify.group_id", "must not be blank"));
        }
        if !n.reenable_url.is_empty() {
            let example = n
                .reenable_url
                .replace("{endpoint_id}", "ep_1")
                .replace("{account_id}", "acct_1");
            url::Url::parse(&example).map_err(|e| {
                invalid(
                    "notify.reenable_url",
                    format!("is not a URL once {{endpoint_id}} is filled in ({e})"),
                )
            })?;
        }
        if n.retry_initial.is_zero() {
            return Err(invalid("notify.retry_initial", "must be longer than zero"));
        }
        if n.retry_max < n.retry_initial {
            return Err(invalid(
                "notify.retry_max",
                "must not be shorter than notify.retry_initial",
            ));
        }
        if n.smtp.port == 0 {
            return Err(invalid("notify.smtp.port", "must be a TCP port (1-65535)"));
        }
        if n.smtp.timeout.is_zero() {
            return Err(invalid("notify.smtp.timeout", "must be longer than zero"));
        }
        if n.smtp.tls == SmtpTls::None
            && !n.smtp.username.is_empty()
            && !is_loopback_host(&n.smtp.host)
        {
            return Err(invalid(
                "notify.smtp.tls",
                "is none but notify.smtp.username is set: the password would cross the network \
                 in clear; use starttls or implicit (none is accepted only for a relay on loopback)",
            ));
        }
        if sending && !n.smtp.username.is_empty() && n.smtp.password.is_empty() {
            return Err(invalid(
                "notify.smtp.password",
                "is empty but notify.smtp.username is set (HOOKRELAY__NOTIFY__SMTP__PASSWORD \
                 keeps it out of files)",
            ));
        }
        if !n.smtp.ca_file.is_empty() && !Path::new(&n.smtp.ca_file).is_file() {
            return Err(invalid(
                "notify.smtp.ca_file",
                format!("{} is not a readable file", n.smtp.ca_file),
            ));
        }
        Ok(())
    }

    /// The notifier's consumer group: `notify.group_id`, or `<kafka.group_id>-notify`.
    pub fn notify_group_id(&self) -> String {
        if self.notify.group_id.is_empty() {
            format!("{}-notify", self.kafka.group_id)
        } else {
            self.notify.group_id.clone()
        }
    }

    fn validate_api(&self) -> Result<(), ConfigError> {
        let a = &self.api;
        if a.enabled && self.api_data_dir() == self.subscriptions.data_dir {
            return Err(invalid(
                "api.data_dir",
                "must differ from subscriptions.data_dir (each is a RocksDB directory of its own)",
            ));
        }
        if !(a.rate_limit_per_key.is_finite() && a.rate_limit_per_key > 0.0) {
            return Err(invalid(
                "api.rate_limit_per_key",
                "must be a positive number of requests per second",
            ));
        }
        if a.rate_limit_burst == 0 {
            return Err(invalid("api.rate_limit_burst", "must be at least 1"));
        }
        if a.max_body_bytes < 1024 {
            return Err(invalid("api.max_body_bytes", "must be at least 1024"));
        }
        if a.attempts_retention.is_zero() {
            return Err(invalid(
                "api.attempts_retention",
                "must be longer than zero",
            ));
        }
        if a.secret_rotation_overlap > a.max_secret_rotation_overlap {
            return Err(invalid(
                "api.secret_rotation_overlap",
                "must not be longer than api.max_secret_rotation_overlap",
            ));
        }
        if a.replay_max == 0 {
            return Err(invalid("api.replay_max", "must be at least 1"));
        }
        if a.replays_running_max == 0 {
            return Err(invalid("api.replays_running_max", "must be at least 1"));
        }
        for ip in &a.egress_ips {
            let parsed = ip.parse::<IpNet>().is_ok() || ip.parse::<std::net::IpAddr>().is_ok();
            if !parsed {
                return Err(invalid(
                    "api.egress_ips",
                    format!("{ip:?} is neither an IP address nor a network like 203.0.113.0/24"),
                ));
            }
        }
        if let Some(host) = a
            .allowed_url_hosts
            .iter()
            .find(|h| h.trim_start_matches('.').is_empty() || h.contains(['/', ':', ' ']))
        {
            return Err(invalid(
                "api.allowed_url_hosts",
                format!("{host:?} is not a host name (e.g. hooks.example.com or .example.com)"),
            ));
        }
        Ok(())
    }

    /// The API's RocksDB directory: `api.data_dir`, or when that is empty the subscriptions
    /// table's directory with `-api` appended (`data/subscriptions` → `data/subscriptions-api`),
    /// so every instance that has a directory of its own has both.
    pub fn api_data_dir(&self) -> PathBuf {
        if !self.api.data_dir.as_os_str().is_empty() {
            return self.api.data_dir.clone();
        }
        let mut dir = self.subscriptions.data_dir.clone().into_os_string();
        dir.push("-api");
        PathBuf::from(dir)
    }

    /// True when no Kafka is configured (only the demo runs like that).
    pub fn kafka_configured(&self) -> bool {
        !self.kafka.bootstrap_servers.trim().is_empty()
    }

    /// The effective configuration as TOML, with secrets masked, for `config check`.
    pub fn to_masked_toml(&self) -> String {
        let mut shown = self.clone();
        for (key, value) in shown.kafka.properties.iter_mut() {
            if is_secret_key(key) {
                *value = "***".to_owned();
            }
        }
        if !shown.notify.smtp.password.is_empty() {
            shown.notify.smtp.password = Password::new("***");
        }
        let registry = &mut shown.codec.schema_registry;
        for secret in [&mut registry.password, &mut registry.bearer_token] {
            if !secret.is_empty() {
                *secret = Password::new("***");
            }
        }
        toml::to_string_pretty(&shown).unwrap_or_else(|e| format!("# cannot render: {e}\n"))
    }

    /// Retention of a retry tier's topic: at least twice its delay.
    pub fn retry_retention(&self, tier: &RetryTier) -> Duration {
        tier.delay
            .saturating_mul(2)
            .max(self.topics.retention.retry_minimum)
    }

    /// Every duration setting with its key, for the bound [`validate`](Self::validate) puts
    /// on them all. A new duration setting belongs here.
    pub fn durations(&self) -> Vec<(&'static str, Duration)> {
        let r = &self.topics.retention;
        let n = &self.notify;
        let mut all = vec![
            ("kafka.connect_timeout", self.kafka.connect_timeout),
            ("topics.retention.invalid", r.invalid),
            ("topics.retention.dead_letter", r.dead_letter),
            ("topics.retention.attempts", r.attempts),
            ("topics.retention.notifications", r.notifications),
            ("topics.retention.requests", r.requests),
            ("topics.retention.retry_minimum", r.retry_minimum),
            ("delivery.timeout", self.delivery.timeout),
            ("delivery.batch.linger", self.delivery.batch.linger),
            (
                "api.secret_rotation_overlap",
                self.api.secret_rotation_overlap,
            ),
            (
                "api.max_secret_rotation_overlap",
                self.api.max_secret_rotation_overlap,
            ),
            ("api.attempts_retention", self.api.attempts_retention),
            ("shutdown.drain_timeout", self.shutdown.drain_timeout),
            ("notify.retry_initial", n.retry_initial),
            ("notify.retry_max", n.retry_max),
            ("notify.smtp.timeout", n.smtp.timeout),
            (
                "codec.schema_registry.timeout",
                self.codec.schema_registry.timeout,
            ),
            (
                "codec.schema_registry.retry_initial",
                self.codec.schema_registry.retry_initial,
            ),
            (
                "codec.schema_registry.retry_max",
                self.codec.schema_registry.retry_max,
            ),
        ];
        all.extend(self.retry.tiers.iter().map(|t| ("retry.tiers", t.delay)));
        all
    }
}

/// librdkafka property names that hold credentials.
pub fn is_secret_key(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    k.contains("password") || k.contains("secret") || k.contains("sasl.oauthbearer.config")
}

/// True for `localhost` and loopback addresses: a relay on the same host.
fn is_loopback_host(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

fn validate_topic_name(key: &'static str, name: &str) -> Result<(), ConfigError> {
    let ok = !name.is_empty()
        && name.len() <= 249
        && name != "."
        && name != ".."
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(invalid(
            key,
            format!(
                "{name:?} is not a valid Kafka topic name (letters, digits, . _ -, at most 249)"
            ),
        ))
    }
}

/// `HOOKRELAY__A__B=v` → key `a.b`. Values are parsed like TOML values (numbers, booleans,
/// arrays), falling back to strings.
///
/// Under `kafka.properties` the librdkafka property name may be written with `_` for `.`
/// (`HOOKRELAY__KAFKA__PROPERTIES__SASL_PASSWORD` sets `sasl.password`), since shells do not
/// accept dots in variable names; no librdkafka property has an underscore in its name.
fn env_provider(env: &[(String, String)]) -> figment::providers::Serialized<figment::value::Dict> {
    let mut root = figment::value::Dict::new();
    for (name, value) in env {
        let Some(rest) = name.strip_prefix(ENV_PREFIX) else {
            continue;
        };
        let mut path: Vec<String> = rest.split("__").map(|p| p.to_ascii_lowercase()).collect();
        if path.iter().any(|p| p.is_empty()) {
            continue;
        }
        if path.len() == 3 && path[0] == "kafka" && path[1] == "properties" {
            path[2] = path[2].replace('_', ".");
        }
        insert_path(&mut root, &path, parse_env_value(value));
    }
    figment::providers::Serialized::defaults(root)
}

fn parse_env_value(raw: &str) -> figment::value::Value {
    use std::str::FromStr;
    figment::value::Value::from_str(raw)
        .unwrap_or_else(|_| figment::value::Value::from(raw.to_owned()))
}

fn insert_path(dict: &mut figment::value::Dict, path: &[String], value: figment::value::Value) {
    use figment::value::{Dict, Value};
    let Some((head, tail)) = path.split_first() else {
        return;
    };
    if tail.is_empty() {
        dict.insert(head.clone(), value);
        return;
    }
    let entry = dict
        .entry(head.clone())
        .or_insert_with(|| Value::from(Dict::new()));
    if let Value::Dict(_, inner) = entry {
        insert_path(inner, tail, value);
    } else {
        let mut inner = Dict::new();
        insert_path(&mut inner, tail, value);
        *entry = Value::from(inner);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_load_and_validate() {
        let c = Config::load_from(None, &[]).expect("defaults are valid");
        assert_eq!(c.delivery.timeout, Duration::from_secs(5));
        assert_eq!(c.retry.tiers.len(), 5);
        assert_eq!(c.retry.tiers[4].delay, Duration::from_secs(24 * 3600));
        assert!(!c.kafka_configured());
    }

    #[test]
    fn environment_overrides_nested_keys() {
        let c = Config::load_from(
            None,
            &env(&[
                ("HOOKRELAY__DELIVERY__TIMEOUT", "3s"),
                ("HOOKRELAY__DELIVERY__BATCH__MAX_EVENTS", "7"),
                ("HOOKRELAY__KAFKA__BOOTSTRAP_SERVERS", "k1:9092,k2:9092"),
                ("UNRELATED", "x"),
            ]),
        )
        .expect("valid");
        assert_eq!(c.delivery.timeout, Duration::from_secs(3));
        assert_eq!(c.delivery.batch.max_events, 7);
        assert_eq!(c.kafka.bootstrap_servers, "k1:9092,k2:9092");
    }

    #[test]
    fn unknown_environment_key_is_rejected_by_name() {
        let err = Config::load_from(None, &env(&[("HOOKRELAY__DELIVERY__TIMEOUTT", "3s")]))
            .expect_err("unknown key");
        assert!(err.to_string().contains("timeoutt"), "{err}");
    }

    #[test]
    fn durations_are_bounded_so_clock_arithmetic_cannot_overflow() {
        // u64::MAX seconds: doubling it for the retry topic's retention used to panic.
        let huge = "[retry]\ntiers = [{ topic = \"a\", delay = \"18446744073709551615s\" }]\n";
        let err = Config::load_from_str(Some(huge), &[]).expect_err("too long");
        assert_eq!(
            err.to_string(),
            "configuration key `retry.tiers`: must be at most 100 years"
        );
        let err = Config::load_from(
            None,
            &env(&[("HOOKRELAY__SHUTDOWN__DRAIN_TIMEOUT", "101y")]),
        )
        .expect_err("too long");
        assert!(err.to_string().contains("shutdown.drain_timeout"), "{err}");
        let c = Config::load_from(
            None,
            &env(&[("HOOKRELAY__SHUTDOWN__DRAIN_TIMEOUT", "100y")]),
        )
        .expect("at the bound");
        assert!(c.durations().iter().all(|(_, d)| *d <= MAX_DURATION));
        assert!(c.durations().len() >= 16 + c.retry.tiers.len());
    }

    #[test]
    fn confluent_ids_must_map_to_shipped_schemas() {
        let ok = Config::load_from_str(
            Some("[codec]\nconfluent_schema_ids = { 7 = \"license_event.v1\" }\n"),
            &[],
        )
        .expect("a shipped version");
        assert_eq!(ok.codec.confluent_schema_ids.len(), 1);
        let err = Config::load_from(
            None,
            &env(&[(
                "HOOKRELAY__CODEC__CONFLUENT_SCHEMA_IDS__7",
                "license_event.v9",
            )]),
        )
        .expect_err("no such version");
        let msg = err.to_string();
        assert!(
            msg.starts_with("configuration key `codec.confluent_schema_ids`: schema id 7")
                && msg.contains("license_event.v9")
                && msg.contains("known: license_event.v1"),
            "{msg}"
        );
    }

    #[test]
    fn retry_retention_is_at_least_twice_the_delay() {
        let c = Config::load_from(None, &[]).expect("valid");
        for tier in &c.retry.tiers {
            assert!(c.retry_retention(tier) >= tier.delay * 2);
        }
    }

    #[test]
    fn the_api_directory_sits_next_to_the_subscriptions_one_unless_set() {
        let c = Config::load_from(
            None,
            &env(&[("HOOKRELAY__SUBSCRIPTIONS__DATA_DIR", "/var/lib/hr/one")]),
        )
        .expect("valid");
        assert_eq!(c.api_data_dir(), PathBuf::from("/var/lib/hr/one-api"));
        let c = Config::load_from(None, &env(&[("HOOKRELAY__API__DATA_DIR", "/srv/api")]))
            .expect("valid");
        assert_eq!(c.api_data_dir(), PathBuf::from("/srv/api"));
        let err = Config::load_from(
            None,
            &env(&[
                ("HOOKRELAY__API__DATA_DIR", "/srv/x"),
                ("HOOKRELAY__SUBSCRIPTIONS__DATA_DIR", "/srv/x"),
            ]),
        )
        .expect_err("one directory for both");
        assert!(err.to_string().contains("api.data_dir"), "{err}");
    }

    #[test]
    fn masked_toml_hides_credentials() {
        let c = Config::load_from(
            None,
            &env(&[
                ("HOOKRELAY__KAFKA__PROPERTIES__SASL.PASSWORD", "hunter2"),
                ("HOOKRELAY__KAFKA__PROPERTIES__SSL_KEY_PASSWORD", "keypass9"),
                ("HOOKRELAY__NOTIFY__SMTP__USERNAME", "mailer"),
                ("HOOKRELAY__NOTIFY__SMTP__PASSWORD", "smtp-pass-7"),
            ]),
        )
        .expect("valid");
        let shown = c.to_masked_toml();
        for secret in ["hunter2", "keypass9", "smtp-pass-7"] {
            assert!(!shown.contains(secret), "{secret} shown in\n{shown}");
        }
        assert!(shown.contains("***"));
        assert!(shown.contains("mailer"), "the user name is not a secret");
        assert!(
            !format!("{c:?}").contains("smtp-pass-7"),
            "Debug does not show the SMTP password"
        );
    }

    #[test]
    fn kafka_properties_from_the_environment_may_use_underscores_for_dots() {
        let c = Config::load_from(
            None,
            &env(&[
                (
                    "HOOKRELAY__KAFKA__PROPERTIES__SECURITY_PROTOCOL",
                    "SASL_SSL",
                ),
                (
                    "HOOKRELAY__KAFKA__PROPERTIES__SASL.MECHANISM",
                    "SCRAM-SHA-512",
                ),
                (
                    "HOOKRELAY__KAFKA__PROPERTIES__SSL_CA_LOCATION",
                    "/etc/kafka/ca.pem",
                ),
            ]),
        )
        .expect("valid");
        let p = &c.kafka.properties;
        assert_eq!(
            p.get("security.protocol").map(String::as_str),
            Some("SASL_SSL")
        );
        assert_eq!(
            p.get("sasl.mechanism").map(String::as_str),
            Some("SCRAM-SHA-512")
        );
        assert_eq!(
            p.get("ssl.ca.location").map(String::as_str),
            Some("/etc/kafka/ca.pem"),
            "values keep their underscores and case"
        );
        // Values that look like numbers or booleans stay librdkafka's text.
        let c = Config::load_from(
            None,
            &env(&[
                ("HOOKRELAY__KAFKA__PROPERTIES__SESSION_TIMEOUT_MS", "10000"),
                (
                    "HOOKRELAY__KAFKA__PROPERTIES__ENABLE_SSL_CERTIFICATE_VERIFICATION",
                    "false",
                ),
            ]),
        )
        .expect("valid");
        let p = &c.kafka.properties;
        assert_eq!(
            p.get("session.timeout.ms").map(String::as_str),
            Some("10000")
        );
        assert_eq!(
            p.get("enable.ssl.certificate.verification")
                .map(String::as_str),
            Some("false")
        );
        // Only property names are rewritten, not other keys.
        let c =
            Config::load_from(None, &env(&[("HOOKRELAY__KAFKA__GROUP_ID", "g_1")])).expect("valid");
        assert_eq!(c.kafka.group_id, "g_1");
    }

    fn notify_env<'a>(extra: &[(&'a str, &'a str)]) -> Vec<(String, String)> {
        let mut pairs = vec![
            ("HOOKRELAY__NOTIFY__ENABLED", "true"),
            (
                "HOOKRELAY__NOTIFY__FROM",
                "hookrelay <webhooks@licensor.example>",
            ),
            ("HOOKRELAY__NOTIFY__SMTP__HOST", "smtp.licensor.example"),
        ];
        pairs.extend_from_slice(extra);
        env(&pairs)
    }

    #[test]
    fn notify_is_off_by_default_and_needs_a_server_and_sender_when_on() {
        let c = Config::load_from(None, &[]).expect("defaults");
        assert!(!c.notify.enabled);
        assert_eq!(c.notify.smtp.tls, SmtpTls::Starttls);
        assert_eq!(c.notify_group_id(), "hookrelay-notify");

        let c = Config::load_from(None, &notify_env(&[])).expect("valid");
        assert!(c.notify.enabled);
        for (key, named) in [
            ("HOOKRELAY__NOTIFY__SMTP__HOST", "notify.smtp.host"),
            ("HOOKRELAY__NOTIFY__FROM", "notify.from"),
        ] {
            let err = Config::load_from(None, &notify_env(&[(key, "")])).expect_err("required");
            assert!(err.to_string().contains(named), "{err}");
        }
        // Checked once the notifier is asked to run, whatever `enabled` says.
        let off = Config::load_from(None, &[]).expect("defaults");
        let err = off.validate_notify(true).expect_err("no server");
        assert!(err.to_string().contains("notify.smtp.host"), "{err}");
    }

    #[test]
    fn notify_settings_are_checked_by_key() {
        let cases: &[(&[(&str, &str)], &str)] = &[
            (
                &[("HOOKRELAY__NOTIFY__FROM", "not an address")],
                "notify.from",
            ),
            (
                &[("HOOKRELAY__NOTIFY__FALLBACK_TO", "ops@")],
                "notify.fallback_to",
            ),
            (
                &[("HOOKRELAY__NOTIFY__REENABLE_URL", "dashboard/{endpoint_id}")],
                "notify.reenable_url",
            ),
            (
                &[("HOOKRELAY__NOTIFY__RETRY_INITIAL", "0s")],
                "notify.retry_initial",
            ),
            (
                &[("HOOKRELAY__NOTIFY__RETRY_MAX", "100ms")],
                "notify.retry_max",
            ),
            (&[("HOOKRELAY__NOTIFY__SMTP__TLS", "sometimes")], "tls"),
            (
                &[
                    ("HOOKRELAY__NOTIFY__SMTP__TLS", "none"),
                    ("HOOKRELAY__NOTIFY__SMTP__USERNAME", "u"),
                    ("HOOKRELAY__NOTIFY__SMTP__PASSWORD", "p"),
                ],
                "notify.smtp.tls",
            ),
            (
                &[("HOOKRELAY__NOTIFY__SMTP__USERNAME", "u")],
                "notify.smtp.password",
            ),
            (
                &[("HOOKRELAY__NOTIFY__SMTP__CA_FILE", "/nonexistent/ca.pem")],
                "notify.smtp.ca_file",
            ),
        ];
        for (extra, key) in cases {
            let err = Config::load_from(None, &notify_env(extra)).expect_err(key);
            assert!(err.to_string().contains(key), "{key}: {err}");
        }
        // A relay on loopback may take a password without TLS (a local test server).
        Config::load_from(
            None,
            &notify_env(&[
                ("HOOKRELAY__NOTIFY__SMTP__HOST", "127.0.0.1"),
                ("HOOKRELAY__NOTIFY__SMTP__TLS", "none"),
                ("HOOKRELAY__NOTIFY__SMTP__USERNAME", "u"),
                ("HOOKRELAY__NOTIFY__SMTP__PASSWORD", "p"),
                (
                    "HOOKRELAY__NOTIFY__REENABLE_URL",
                    "https://dash.example/e/{endpoint_id}",
                ),
            ]),
        )
        .expect("valid");
    }
}
