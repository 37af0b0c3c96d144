//! Agent configuration: parsed and validated before anything is opened.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use crate::player::OutputSettings;
use crate::player::jitter::JitterConfig;

mod amplifier;

pub use amplifier::{
    ActiveLevel, AmplifierConfig, AmplifierDriver, FramePreset, Frames, FramesConfig, GpioConfig, ModbusConfig, Parity,
    SerialConfig, lcus_frame, parse_hex,
};

/// The commented default configuration, printed by `--print-default-config`.
pub const DEFAULT_CONFIG: &str = include_str!("default-config.toml");

/// Exit code for a bad configuration or command line (EX_USAGE).
pub const EXIT_CONFIG: u8 = 64;

/// Why a configuration was refused; each prints as one line.
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
    /// Not valid TOML, or unknown or mistyped keys.
    #[error("invalid config {origin}: {message}")]
    Parse {
        /// Where the text came from.
        origin: String,
        /// The parser's explanation, on one line.
        message: String,
    },
    /// A value out of range.
    #[error("invalid config: {0}")]
    Invalid(String),
}

/// The whole file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `[storage]`.
    pub storage: StorageConfig,
    /// `[amplifier]`.
    pub amplifier: AmplifierConfig,
    /// `[audio]`.
    pub audio: AudioConfig,
    /// `[link]`.
    pub link: LinkConfig,
    /// `[log]`.
    pub log: LogConfig,
}

/// `[storage]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageConfig {
    /// State directory.
    pub state_dir: PathBuf,
    /// Size budget of the content cache, in MB (10^6 bytes). Content the
    /// plan needs is kept even over it. Optional, so configuration files
    /// written before the cache existed stay valid.
    #[serde(default = "StorageConfig::default_cache_budget_mb")]
    pub cache_budget_mb: u64,
}

impl StorageConfig {
    fn default_cache_budget_mb() -> u64 {
        2048
    }

    /// The content cache budget in bytes.
    pub fn cache_budget_bytes(&self) -> u64 {
        self.cache_budget_mb.saturating_mul(1_000_000)
    }
}

/// `[audio]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AudioConfig {
    /// ALSA device name ("default", "plughw:1,0", …) or "null".
    pub output: String,
    /// How early the player is handed an item, in ms (its pre-roll).
    #[serde(default = "AudioConfig::default_start_lead_ms")]
    pub start_lead_ms: u64,
    /// Frames per ALSA period; the device buffer is two periods.
    #[serde(default = "AudioConfig::default_period_frames")]
    pub period_frames: u32,
    /// A live stream's smallest jitter-buffer depth (a clean link), ms.
    #[serde(default = "AudioConfig::default_live_min_delay_ms")]
    pub live_min_delay_ms: u32,
    /// A live stream's largest jitter-buffer depth, ms.
    #[serde(default = "AudioConfig::default_live_max_delay_ms")]
    pub live_max_delay_ms: u32,
}

impl AudioConfig {
    fn default_start_lead_ms() -> u64 {
        1500
    }

    fn default_period_frames() -> u32 {
        256
    }

    fn default_live_min_delay_ms() -> u32 {
        10
    }

    fn default_live_max_delay_ms() -> u32 {
        500
    }

    /// The player's pre-roll.
    pub fn lead(&self) -> Duration {
        Duration::from_millis(self.start_lead_ms)
    }

    /// How the player opens the output and buffers live streams.
    pub fn output_settings(&self) -> OutputSettings {
        OutputSettings {
            device: self.output.clone(),
            lead: self.lead(),
            period_frames: self.period_frames,
            jitter: JitterConfig { min_ms: self.live_min_delay_ms, max_ms: self.live_max_delay_ms },
        }
    }
}

/// `[link]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinkConfig {
    /// Longest reconnect delay, seconds.
    pub backoff_max_secs: u64,
    /// Device poll interval, seconds.
    pub device_poll_secs: u64,
}

/// `[log]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    /// `text` or `json`.
    pub format: LogFormat,
    /// A tracing filter.
    pub level: String,
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

impl Config {
    /// Parses and validates a configuration text.
    pub fn parse(text: &str, origin: &str) -> Result<Config, ConfigError> {
        let c: Config = toml::from_str(text).map_err(|e| ConfigError::Parse {
            origin: origin.to_string(),
            message: e.to_string().split_whitespace().collect::<Vec<_>>().join(" "),
        })?;
        if !(1..=3600).contains(&c.link.backoff_max_secs) {
            return Err(ConfigError::Invalid("link.backoff_max_secs must be between 1 and 3600".into()));
        }
        if !(1..=3600).contains(&c.link.device_poll_secs) {
            return Err(ConfigError::Invalid("link.device_poll_secs must be between 1 and 3600".into()));
        }
        c.amplifier.validate()?;
        if c.audio.output.trim().is_empty() {
            return Err(ConfigError::Invalid("audio.output must not be empty".into()));
        }
        if !(50..=5000).contains(&c.audio.start_lead_ms) {
            return Err(ConfigError::Invalid("audio.start_lead_ms must be between 50 and 5000".into()));
        }
        if !(64..=8192).contains(&c.audio.period_frames) {
            return Err(ConfigError::Invalid("audio.period_frames must be between 64 and 8192".into()));
        }
        if c.audio.live_min_delay_ms > 1000 {
            return Err(ConfigError::Invalid("audio.live_min_delay_ms must be between 0 and 1000".into()));
        }
        if !(c.audio.live_min_delay_ms.max(20)..=5000).contains(&c.audio.live_max_delay_ms) {
            return Err(ConfigError::Invalid(
                "audio.live_max_delay_ms must be between 20 and 5000 and not below audio.live_min_delay_ms".into(),
            ));
        }
        if c.storage.state_dir.as_os_str().is_empty() {
            return Err(ConfigError::Invalid("storage.state_dir must not be empty".into()));
        }
        if !(1..=10_000_000).contains(&c.storage.cache_budget_mb) {
            return Err(ConfigError::Invalid("storage.cache_budget_mb must be between 1 and 10000000".into()));
        }
        if let Err(e) = tracing_subscriber::EnvFilter::try_new(&c.log.level) {
            let why = e.to_string().split_whitespace().collect::<Vec<_>>().join(" ");
            return Err(ConfigError::Invalid(format!("log.level {:?}: {why}", c.log.level)));
        }
        Ok(c)
    }

    /// Reads and parses a file.
    pub fn load(path: &std::path::Path) -> Result<Config, ConfigError> {
        let text =
            std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.to_path_buf(), source })?;
        Config::parse(&text, &path.display().to_string())
    }

    /// The compiled-in defaults.
    pub fn default_config() -> Config {
        // Covered by a test: the built-in text always parses.
        Config::parse(DEFAULT_CONFIG, "(built-in defaults)").expect("built-in default config is valid")
    }
}

impl LinkConfig {
    /// The longest reconnect delay.
    pub fn backoff_max(&self) -> Duration {
        Duration::from_secs(self.backoff_max_secs)
    }

    /// The device poll interval.
    pub fn device_poll(&self) -> Duration {
        Duration::from_secs(self.device_poll_secs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_config_parses() {
        let c = Config::default_config();
        assert_eq!(c.storage.cache_budget_bytes(), 2_048_000_000);
        let without_budget = DEFAULT_CONFIG.replace("cache_budget_mb = 2048", "");
        let old = Config::parse(&without_budget, "t").expect("a config without cache_budget_mb parses");
        assert_eq!(old.storage.cache_budget_mb, 2048, "the default matches the commented default");
        assert_eq!(c.amplifier.driver, AmplifierDriver::None);
        assert_eq!(c.link.backoff_max_secs, 30);
    }

    #[test]
    fn bad_configs_are_one_line_errors() {
        for (from, to, expect) in [
            ("driver = \"none\"", "driver = \"laser\"", "laser"),
            ("backoff_max_secs = 30", "backoff_max_secs = 0", "backoff_max_secs"),
            ("cache_budget_mb = 2048", "cache_budget_mb = 0", "storage.cache_budget_mb"),
            ("cache_budget_mb = 2048", "cache_budget_mb = -1", "cache_budget_mb"),
            ("[audio]", "[audio]\nvolume = 3", "volume"),
            ("output = \"default\"", "output = \" \"", "audio.output"),
            ("start_lead_ms = 1500", "start_lead_ms = 10", "audio.start_lead_ms"),
            ("period_frames = 256", "period_frames = 16", "audio.period_frames"),
            ("live_min_delay_ms = 10", "live_min_delay_ms = 5000", "audio.live_min_delay_ms"),
            ("live_max_delay_ms = 500", "live_max_delay_ms = 5", "audio.live_max_delay_ms"),
            ("live_min_delay_ms = 10", "live_min_delay_ms = 600", "audio.live_max_delay_ms"),
            ("level = \"info\"", "level = \"[[[\"", "log.level"),
        ] {
            let text = DEFAULT_CONFIG.replace(from, to);
            assert_ne!(text, DEFAULT_CONFIG);
            let err = Config::parse(&text, "t").unwrap_err().to_string();
            assert!(err.contains(expect), "{err}");
            assert!(!err.contains('\n'), "{err}");
        }
    }
}
