//! Controller configuration: parsed into typed settings without touching
//! ports or files, validated, and only then used to build the server.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The commented default configuration, compiled in and printed by
/// `dalaba-controller --print-default-config`.
pub const DEFAULT_CONFIG: &str = include_str!("default-config.toml");

/// Exit code for a bad configuration or bad command line (EX_USAGE).
pub const EXIT_CONFIG: i32 = 64;

/// Why a configuration was refused. Each variant prints as one line.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid TOML or has unknown or mistyped keys.
    #[error("invalid config {origin}: {message}")]
    Parse {
        /// Where the text came from.
        origin: String,
        /// The TOML parser's explanation, on one line.
        message: String,
    },
    /// A value is out of range or contradicts another.
    #[error("invalid config: {0}")]
    Invalid(String),
}

/// The whole configuration file.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Network and TLS settings.
    pub server: ServerConfig,
    /// Where data lives.
    pub storage: StorageConfig,
    /// Agent link settings.
    pub link: LinkConfig,
    /// Enrolment settings.
    pub enrolment: EnrolmentConfig,
    /// Logging.
    pub log: LogConfig,
    /// The audio library; defaults when the section is absent.
    #[serde(default)]
    pub library: LibraryConfig,
    /// CAP alerts from upstream systems; defaults when the section is absent.
    #[serde(default)]
    pub alerts: AlertsConfig,
    /// Live sessions; defaults when the section is absent.
    #[serde(default)]
    pub live: LiveConfig,
    /// Operator sessions; defaults when the section is absent.
    #[serde(default)]
    pub accounts: AccountsConfig,
    /// Operator alarms and their webhook; defaults when the section is absent.
    #[serde(default)]
    pub alarms: AlarmsConfig,
}

/// `[server]`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Serve plain HTTP instead of HTTPS.
    pub plain_http: bool,
    /// Allow plain HTTP on a non-loopback address.
    pub allow_plain_http_on_network: bool,
    /// PEM certificate chain; empty means "generate a self-signed one".
    pub tls_cert: String,
    /// PEM private key; empty means "generate".
    pub tls_key: String,
    /// Names and addresses in the generated certificate.
    pub tls_names: Vec<String>,
}

/// `[storage]`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct StorageConfig {
    /// Data directory: database, generated certificate, signing key.
    pub data_dir: PathBuf,
}

/// `[link]`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LinkConfig {
    /// Heartbeat interval announced to agents, in seconds.
    pub heartbeat_interval_secs: u64,
    /// An agent silent this long is offline, in seconds.
    pub heartbeat_timeout_secs: u64,
    /// Maximum number of simultaneous agent links.
    pub max_connections: usize,
}

/// `[enrolment]`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct EnrolmentConfig {
    /// Default lifetime of an enrolment code, in minutes.
    pub code_ttl_minutes: u64,
}

/// `[log]`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    /// `text` or `json`.
    pub format: LogFormat,
    /// A tracing filter, e.g. `info` or `dalaba_controller=debug`.
    pub level: String,
}

/// `[library]`: uploads, loudness, the distribution copy, text to speech.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct LibraryConfig {
    /// Largest upload, in MB (10⁶ bytes).
    pub max_upload_mb: u64,
    /// Longest audio accepted, in minutes.
    pub max_duration_minutes: u64,
    /// Loudness every item is brought to at playback, in LUFS.
    pub target_lufs: f64,
    /// Highest true peak the playback gain may produce, in dBTP.
    pub true_peak_ceiling_dbtp: f64,
    /// Bitrate of the Opus distribution copy, in kb/s.
    pub opus_bitrate_kbps: u32,
    /// The text-to-speech program.
    pub tts_command: String,
    /// Its voice.
    pub tts_voice: String,
    /// Longest notice spoken, in characters.
    pub tts_max_chars: usize,
    /// How long the program may run, in seconds.
    pub tts_timeout_secs: u64,
}

impl Default for LibraryConfig {
    fn default() -> Self {
        let d = crate::library::LibrarySettings::default();
        LibraryConfig {
            max_upload_mb: d.max_upload_bytes / crate::library::MB,
            max_duration_minutes: d.max_duration_ms / 60_000,
            target_lufs: d.target.lufs,
            true_peak_ceiling_dbtp: d.target.peak_ceiling_dbtp,
            opus_bitrate_kbps: d.opus_bitrate_bps / 1000,
            tts_command: d.tts_command,
            tts_voice: d.tts_voice,
            tts_max_chars: d.tts_max_chars,
            tts_timeout_secs: d.tts_timeout.as_secs(),
        }
    }
}

impl LibraryConfig {
    /// The settings the library runs with.
    pub fn settings(&self) -> crate::library::LibrarySettings {
        crate::library::LibrarySettings {
            max_upload_bytes: self.max_upload_mb * crate::library::MB,
            target: dalaba_audio::loudness::Target {
                lufs: self.target_lufs,
                peak_ceiling_dbtp: self.true_peak_ceiling_dbtp,
            },
            max_duration_ms: self.max_duration_minutes * 60_000,
            opus_bitrate_bps: self.opus_bitrate_kbps * 1000,
            tts_command: self.tts_command.clone(),
            tts_voice: self.tts_voice.clone(),
            tts_max_chars: self.tts_max_chars,
            tts_timeout: Duration::from_secs(self.tts_timeout_secs),
        }
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |m: &str| Err(ConfigError::Invalid(format!("library.{m}")));
        if !(1..=10_000).contains(&self.max_upload_mb) {
            return invalid("max_upload_mb must be between 1 and 10000");
        }
        if !(1..=24 * 60).contains(&self.max_duration_minutes) {
            return invalid("max_duration_minutes must be between 1 and 1440");
        }
        if !(-40.0..=-5.0).contains(&self.target_lufs) {
            return invalid("target_lufs must be between -40 and -5");
        }
        if !(-20.0..=0.0).contains(&self.true_peak_ceiling_dbtp) {
            return invalid("true_peak_ceiling_dbtp must be between -20 and 0");
        }
        if !(6..=256).contains(&self.opus_bitrate_kbps) {
            return invalid("opus_bitrate_kbps must be between 6 and 256");
        }
        if self.tts_command.trim().is_empty() {
            return invalid("tts_command must not be empty");
        }
        let voice_ok = !self.tts_voice.is_empty()
            && !self.tts_voice.starts_with('-')
            && self.tts_voice.chars().all(|c| c.is_ascii_alphanumeric() || "-_+/".contains(c));
        if !voice_ok {
            return invalid("tts_voice must be a voice name such as \"cmn\"");
        }
        if !(1..=100_000).contains(&self.tts_max_chars) {
            return invalid("tts_max_chars must be between 1 and 100000");
        }
        if !(1..=600).contains(&self.tts_timeout_secs) {
            return invalid("tts_timeout_secs must be between 1 and 600");
        }
        Ok(())
    }
}

/// `[alerts]`: CAP alerts from upstream systems.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct AlertsConfig {
    /// Largest alert body, in KiB.
    pub max_body_kb: u64,
    /// Volume of alert broadcasts, 0–100.
    pub volume: u8,
    /// Longest an alert broadcast runs, in minutes.
    pub max_duration_minutes: u64,
}

impl Default for AlertsConfig {
    fn default() -> Self {
        let d = crate::alerts::AlertSettings::default();
        AlertsConfig {
            max_body_kb: d.max_body_bytes as u64 / 1024,
            volume: d.volume,
            max_duration_minutes: d.max_duration_ms / 60_000,
        }
    }
}

impl AlertsConfig {
    /// The settings alerts are received with.
    pub fn settings(&self) -> crate::alerts::AlertSettings {
        crate::alerts::AlertSettings {
            // Validated to at most 65536 KiB, which fits any usize.
            max_body_bytes: usize::try_from(self.max_body_kb * 1024).unwrap_or(usize::MAX),
            volume: self.volume,
            max_duration_ms: self.max_duration_minutes * 60_000,
        }
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |m: &str| Err(ConfigError::Invalid(format!("alerts.{m}")));
        if !(1..=65_536).contains(&self.max_body_kb) {
            return invalid("max_body_kb must be between 1 and 65536");
        }
        if self.volume > 100 {
            return invalid("volume must be between 0 and 100");
        }
        if !(1..=24 * 60).contains(&self.max_duration_minutes) {
            return invalid("max_duration_minutes must be between 1 and 1440");
        }
        Ok(())
    }
}

/// `[live]`: live sessions.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct LiveConfig {
    /// The ALSA capture device of the `host_input` source ("default",
    /// "plughw:1,0", …); empty disables that source.
    pub host_input: String,
}

impl LiveConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        let name = &self.host_input;
        let ok = name.len() <= 200
            && !name.starts_with('-')
            && name.chars().all(|c| c.is_ascii_alphanumeric() || ":,._-=".contains(c));
        if !ok {
            return Err(ConfigError::Invalid(format!(
                "live.host_input {name:?} must be an ALSA device name such as \"default\" or \"plughw:1,0\", or empty"
            )));
        }
        Ok(())
    }
}

/// `[accounts]`: operator login sessions.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct AccountsConfig {
    /// A session unused this long ends, minutes.
    pub idle_minutes: u64,
    /// A session ends this long after login, hours.
    pub absolute_hours: u64,
}

impl Default for AccountsConfig {
    fn default() -> Self {
        AccountsConfig { idle_minutes: 30, absolute_hours: 12 }
    }
}

impl AccountsConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        if !(1..=24 * 60).contains(&self.idle_minutes) {
            return Err(ConfigError::Invalid("accounts.idle_minutes must be between 1 and 1440".into()));
        }
        if !(1..=24 * 30).contains(&self.absolute_hours) {
            return Err(ConfigError::Invalid("accounts.absolute_hours must be between 1 and 720".into()));
        }
        Ok(())
    }

    /// The session lifetimes.
    pub fn sessions(&self) -> crate::accounts::session::SessionSettings {
        crate::accounts::session::SessionSettings {
            idle: std::time::Duration::from_secs(self.idle_minutes * 60),
            absolute: std::time::Duration::from_secs(self.absolute_hours * 3600),
        }
    }
}

/// `[alarms]`: operator alarms and their webhook.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct AlarmsConfig {
    /// An enrolled agent offline longer than this raises `offline`, minutes.
    pub offline_after_minutes: u64,
    /// A clock offset larger than this raises `clock`, ms.
    pub clock_offset_max_ms: u64,
    /// Free disk below this raises `disk`, MB (10⁶ bytes).
    pub disk_free_min_mb: u64,
    /// Sync failing this long raises `sync`, minutes.
    pub sync_failing_minutes: u64,
    /// How often the rules run, seconds.
    pub evaluate_every_secs: u64,
    /// Where raises and clears are posted (`http://` or `https://`); empty: nowhere.
    pub webhook_url: String,
    /// The HMAC-SHA256 key of the `X-Dalaba-Signature` header; empty: unsigned.
    pub webhook_secret: String,
}

impl Default for AlarmsConfig {
    fn default() -> Self {
        AlarmsConfig {
            offline_after_minutes: 30,
            clock_offset_max_ms: 1000,
            disk_free_min_mb: 500,
            sync_failing_minutes: 60,
            evaluate_every_secs: 20,
            webhook_url: String::new(),
            webhook_secret: String::new(),
        }
    }
}

impl AlarmsConfig {
    /// The settings alarms run with (call after validation).
    pub fn settings(&self) -> crate::alarms::AlarmSettings {
        // Validated ranges keep every product below i64::MAX.
        let ms = |minutes: u64| i64::try_from(minutes * 60_000).unwrap_or(i64::MAX);
        let webhook = self.webhook_uri().ok().flatten().map(|url| {
            let secret = (!self.webhook_secret.is_empty()).then(|| self.webhook_secret.clone());
            crate::alarms::webhook::WebhookSettings::new(url, secret)
        });
        crate::alarms::AlarmSettings {
            thresholds: crate::alarms::rules::Thresholds {
                offline_after_ms: ms(self.offline_after_minutes),
                clock_offset_max_ms: i64::try_from(self.clock_offset_max_ms).unwrap_or(i64::MAX),
                disk_free_min_bytes: self.disk_free_min_mb * 1_000_000,
                sync_failing_ms: ms(self.sync_failing_minutes),
            },
            evaluate_every: Duration::from_secs(self.evaluate_every_secs),
            webhook,
        }
    }

    /// The webhook URL, if one is set; why it is not a usable URL.
    fn webhook_uri(&self) -> Result<Option<axum::http::Uri>, String> {
        let url = self.webhook_url.trim();
        if url.is_empty() {
            return Ok(None);
        }
        let uri: axum::http::Uri = url.parse().map_err(|e| format!("{e}"))?;
        if !matches!(uri.scheme_str(), Some("http" | "https")) {
            return Err("it must start with http:// or https://".into());
        }
        if uri.host().is_none_or(str::is_empty) {
            return Err("it has no host".into());
        }
        Ok(Some(uri))
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |m: String| Err(ConfigError::Invalid(format!("alarms.{m}")));
        if !(1..=7 * 24 * 60).contains(&self.offline_after_minutes) {
            return invalid("offline_after_minutes must be between 1 and 10080".into());
        }
        if !(1..=3_600_000).contains(&self.clock_offset_max_ms) {
            return invalid("clock_offset_max_ms must be between 1 and 3600000".into());
        }
        if self.disk_free_min_mb > 10_000_000 {
            return invalid("disk_free_min_mb must be between 0 and 10000000".into());
        }
        if !(1..=7 * 24 * 60).contains(&self.sync_failing_minutes) {
            return invalid("sync_failing_minutes must be between 1 and 10080".into());
        }
        if !(1..=3600).contains(&self.evaluate_every_secs) {
            return invalid("evaluate_every_secs must be between 1 and 3600".into());
        }
        if let Err(why) = self.webhook_uri() {
            return invalid(format!("webhook_url {:?} is not a webhook URL: {}", self.webhook_url, one_line(&why)));
        }
        if !self.webhook_secret.is_empty() && self.webhook_url.trim().is_empty() {
            return invalid("webhook_secret is set but webhook_url is empty".into());
        }
        Ok(())
    }
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

impl Config {
    /// Parses and validates a configuration text. `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Config, ConfigError> {
        let config: Config = toml::from_str(text)
            .map_err(|e| ConfigError::Parse { origin: origin.to_string(), message: one_line(&e.to_string()) })?;
        config.validate()?;
        Ok(config)
    }

    /// Reads, parses and validates a configuration file.
    pub fn load(path: &std::path::Path) -> Result<Config, ConfigError> {
        let text =
            std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.to_path_buf(), source })?;
        Config::parse(&text, &path.display().to_string())
    }

    /// The compiled-in defaults.
    pub fn default_config() -> Config {
        // The default text is part of the binary and covered by a test.
        Config::parse(DEFAULT_CONFIG, "(built-in defaults)").expect("built-in default config is valid")
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let s = &self.server;
        if s.plain_http && !s.listen.ip().is_loopback() && !s.allow_plain_http_on_network {
            return Err(ConfigError::Invalid(format!(
                "server.plain_http on non-loopback address {} needs server.allow_plain_http_on_network = true",
                s.listen
            )));
        }
        if s.tls_cert.is_empty() != s.tls_key.is_empty() {
            return Err(ConfigError::Invalid("server.tls_cert and server.tls_key must be set together".into()));
        }
        let l = &self.link;
        if !(1..=300).contains(&l.heartbeat_interval_secs) {
            return Err(ConfigError::Invalid("link.heartbeat_interval_secs must be between 1 and 300".into()));
        }
        if l.heartbeat_timeout_secs < 2 * l.heartbeat_interval_secs {
            return Err(ConfigError::Invalid(
                "link.heartbeat_timeout_secs must be at least twice link.heartbeat_interval_secs".into(),
            ));
        }
        if l.max_connections == 0 {
            return Err(ConfigError::Invalid("link.max_connections must be at least 1".into()));
        }
        if self.enrolment.code_ttl_minutes == 0 || self.enrolment.code_ttl_minutes > 60 * 24 * 30 {
            return Err(ConfigError::Invalid("enrolment.code_ttl_minutes must be between 1 and 43200".into()));
        }
        if self.storage.data_dir.as_os_str().is_empty() {
            return Err(ConfigError::Invalid("storage.data_dir must not be empty".into()));
        }
        self.library.validate()?;
        self.alerts.validate()?;
        self.live.validate()?;
        self.accounts.validate()?;
        self.alarms.validate()?;
        if let Err(e) = tracing_subscriber::EnvFilter::try_new(&self.log.level) {
            return Err(ConfigError::Invalid(format!("log.level {:?}: {}", self.log.level, one_line(&e.to_string()))));
        }
        Ok(())
    }
}

impl LinkConfig {
    /// The heartbeat interval.
    pub fn heartbeat_interval(&self) -> Duration {
        Duration::from_secs(self.heartbeat_interval_secs)
    }

    /// The presence timeout.
    pub fn heartbeat_timeout(&self) -> Duration {
        Duration::from_secs(self.heartbeat_timeout_secs)
    }
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_config_parses() {
        let c = Config::default_config();
        assert_eq!(c.link.heartbeat_interval_secs, 15);
        assert!(!c.server.plain_http);
    }

    fn check_invalid(edit: (&str, &str), expect: &str) {
        let text = DEFAULT_CONFIG.replace(edit.0, edit.1);
        assert_ne!(text, DEFAULT_CONFIG, "edit {edit:?} did not apply");
        let err = Config::parse(&text, "test").unwrap_err().to_string();
        assert!(err.contains(expect), "{err}");
        assert!(!err.contains('\n'), "error is not one line: {err}");
    }

    #[test]
    fn bad_configs_are_one_line_errors() {
        check_invalid(("listen = \"127.0.0.1:8443\"", "listen = \"nowhere\""), "invalid config");
        check_invalid(("heartbeat_interval_secs = 15", "heartbeat_interval_secs = 0"), "heartbeat_interval_secs");
        check_invalid(("heartbeat_timeout_secs = 45", "heartbeat_timeout_secs = 20"), "at least twice");
        check_invalid(("[link]", "[link]\nfrobnicate = 1"), "frobnicate");
        let text = DEFAULT_CONFIG
            .replace("listen = \"127.0.0.1:8443\"", "listen = \"0.0.0.0:8443\"")
            .replace("plain_http = false", "plain_http = true");
        let err = Config::parse(&text, "test").unwrap_err().to_string();
        assert!(err.contains("allow_plain_http_on_network"), "{err}");
        check_invalid(("level = \"info\"", "level = \"[[[\""), "log.level");
    }

    #[test]
    fn library_defaults_and_bad_values() {
        let settings = Config::default_config().library.settings();
        assert_eq!(settings, crate::library::LibrarySettings::default());
        check_invalid(("max_upload_mb = 200", "max_upload_mb = 0"), "library.max_upload_mb");
        check_invalid(("target_lufs = -16.0", "target_lufs = 3.0"), "library.target_lufs");
        check_invalid(("opus_bitrate_kbps = 32", "opus_bitrate_kbps = 1"), "library.opus_bitrate_kbps");
        check_invalid(("tts_voice = \"cmn\"", "tts_voice = \"-w /etc/x\""), "library.tts_voice");
        check_invalid(("tts_max_chars = 5000", "tts_max_chars = 0"), "library.tts_max_chars");
        check_invalid(("[library]", "[library]\nspeed = 3"), "speed");
        let without = DEFAULT_CONFIG.split("[library]").next().unwrap_or_default().to_owned()
            + "[log]\nformat = \"text\"\nlevel = \"info\"\n";
        let parsed = Config::parse(&without, "test").expect("a config without [library] takes the defaults");
        assert_eq!(parsed.library.max_upload_mb, 200);
    }

    #[test]
    fn alerts_defaults_and_bad_values() {
        assert_eq!(Config::default_config().alerts.settings(), crate::alerts::AlertSettings::default());
        check_invalid(("max_body_kb = 1024", "max_body_kb = 0"), "alerts.max_body_kb");
        check_invalid(("volume = 100", "volume = 101"), "alerts.volume");
        check_invalid(("volume = 100", "volume = -1"), "invalid config");
        check_invalid(("max_duration_minutes = 30", "max_duration_minutes = 0"), "alerts.max_duration_minutes");
        check_invalid(("[alerts]", "[alerts]\nvoice = \"cmn\""), "voice");
    }

    #[test]
    fn alarms_defaults_and_bad_values() {
        let settings = Config::default_config().alarms.settings();
        assert_eq!(settings, crate::alarms::AlarmSettings::default());
        check_invalid(("offline_after_minutes = 30", "offline_after_minutes = 0"), "alarms.offline_after_minutes");
        check_invalid(("clock_offset_max_ms = 1000", "clock_offset_max_ms = 0"), "alarms.clock_offset_max_ms");
        check_invalid(("disk_free_min_mb = 500", "disk_free_min_mb = -1"), "invalid config");
        check_invalid(("sync_failing_minutes = 60", "sync_failing_minutes = 0"), "alarms.sync_failing_minutes");
        check_invalid(("evaluate_every_secs = 20", "evaluate_every_secs = 0"), "alarms.evaluate_every_secs");
        check_invalid(("webhook_url = \"\"", "webhook_url = \"ftp://x/y\""), "http:// or https://");
        check_invalid(("webhook_url = \"\"", "webhook_url = \"not a url\""), "alarms.webhook_url");
        check_invalid(("webhook_url = \"\"", "webhook_url = \"http:///x\""), "alarms.webhook_url");
        check_invalid(("webhook_secret = \"\"", "webhook_secret = \"s\""), "webhook_url is empty");
        check_invalid(("[alarms]", "[alarms]\nemail = \"x\""), "email");
        let text = DEFAULT_CONFIG
            .replace("webhook_url = \"\"", "webhook_url = \"https://ops.example.cn/hooks/dalaba?k=1\"")
            .replace("webhook_secret = \"\"", "webhook_secret = \"s3cret\"");
        let webhook = Config::parse(&text, "test").expect("valid").alarms.settings().webhook.expect("a webhook");
        assert_eq!(webhook.url.to_string(), "https://ops.example.cn/hooks/dalaba?k=1");
        assert_eq!(webhook.secret.as_deref(), Some("s3cret"));
    }

    #[test]
    fn live_host_input_is_off_by_default_and_checked() {
        assert_eq!(Config::default_config().live.host_input, "");
        let with = |name: &str| DEFAULT_CONFIG.replace("host_input = \"\"", &format!("host_input = {name:?}"));
        for good in ["default", "plughw:1,0", "dsnoop:CARD=Device,DEV=0"] {
            let parsed = Config::parse(&with(good), "test").expect(good);
            assert_eq!(parsed.live.host_input, good);
        }
        check_invalid(("host_input = \"\"", "host_input = \"hw:1 0\""), "live.host_input");
        check_invalid(("host_input = \"\"", "host_input = \"-D\""), "live.host_input");
        check_invalid(("[live]", "[live]\nmic = 1"), "mic");
    }
}
