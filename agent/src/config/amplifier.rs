//! `[amplifier]`: which relay driver switches the loudspeaker amplifier, and
//! its settings. Only the table of the chosen driver is used; every table may
//! be left out, and then takes the defaults shown in `default-config.toml`.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::ConfigError;

/// `[amplifier]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AmplifierConfig {
    /// Which driver switches the amplifier.
    pub driver: AmplifierDriver,
    /// `[amplifier.serial]`: the port of the `modbus-rtu` and `serial-frames`
    /// drivers.
    #[serde(default)]
    pub serial: SerialConfig,
    /// `[amplifier.modbus]`: the `modbus-rtu` driver.
    #[serde(default)]
    pub modbus: ModbusConfig,
    /// `[amplifier.frames]`: the `serial-frames` driver.
    #[serde(default)]
    pub frames: FramesConfig,
    /// `[amplifier.gpio]`: the `gpio` driver.
    #[serde(default)]
    pub gpio: GpioConfig,
}

/// Amplifier drivers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AmplifierDriver {
    /// No relay.
    None,
    /// An in-memory relay board.
    Simulated,
    /// A Modbus RTU relay board on a serial port (RS-485 or USB).
    ModbusRtu,
    /// A relay board switched by fixed byte frames on a serial port.
    SerialFrames,
    /// A relay on a GPIO line of the board.
    Gpio,
}

/// `[amplifier.serial]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SerialConfig {
    /// The serial device, e.g. `/dev/ttyUSB0`.
    pub port: PathBuf,
    /// Bits per second.
    pub baud: u32,
    /// Parity bit.
    pub parity: Parity,
    /// 1 or 2.
    pub stop_bits: u8,
    /// How long one exchange with the board may take, milliseconds.
    pub timeout_ms: u64,
    /// How many times a switch is tried before it counts as failed.
    pub attempts: u32,
}

/// Serial parity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Parity {
    /// No parity bit (8N1 boards).
    None,
    /// Even parity (the Modbus default, 8E1).
    Even,
    /// Odd parity.
    Odd,
}

/// `[amplifier.modbus]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ModbusConfig {
    /// The board's slave address, 1–247.
    pub slave: u8,
    /// The coil (relay) address, from 0.
    pub coil: u16,
}

/// `[amplifier.frames]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FramesConfig {
    /// A known board, or `custom` for the frames below.
    pub preset: FramePreset,
    /// The relay channel on a preset board, from 1.
    pub channel: u8,
    /// `custom`: the bytes that switch on, as hex ("A0 01 01 A2").
    pub on: String,
    /// `custom`: the bytes that switch off.
    pub off: String,
    /// The board's answer to `on`, when it answers; empty when it does not.
    pub reply_on: String,
    /// The board's answer to `off`, when it answers; empty when it does not.
    pub reply_off: String,
}

/// Boards whose frames are built in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FramePreset {
    /// The frames in `on` and `off`.
    Custom,
    /// LCUS USB relay board (CH340), one channel: `A0 ch state sum`.
    #[serde(rename = "lcus-1")]
    Lcus1,
    /// LCUS board with two channels.
    #[serde(rename = "lcus-2")]
    Lcus2,
    /// LCUS board with four channels.
    #[serde(rename = "lcus-4")]
    Lcus4,
    /// LCUS board with eight channels.
    #[serde(rename = "lcus-8")]
    Lcus8,
}

/// `[amplifier.gpio]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GpioConfig {
    /// The GPIO character device, e.g. `/dev/gpiochip0`.
    pub chip: PathBuf,
    /// The line offset on that chip (on a Raspberry Pi, the BCM number).
    pub line: u32,
    /// Which level switches the relay on.
    pub active: ActiveLevel,
}

/// Which level of a GPIO line switches the relay on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ActiveLevel {
    /// High is on.
    High,
    /// Low is on (most opto-isolated relay modules).
    Low,
}

/// The two frames of the `serial-frames` driver, decoded and checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frames {
    /// Switches on.
    pub on: Vec<u8>,
    /// Switches off.
    pub off: Vec<u8>,
    /// Expected answer to `on`; `None` when the board does not answer.
    pub reply_on: Option<Vec<u8>>,
    /// Expected answer to `off`.
    pub reply_off: Option<Vec<u8>>,
}

impl AmplifierDriver {
    /// The name used in config and in the hello.
    pub fn name(self) -> &'static str {
        match self {
            AmplifierDriver::None => "none",
            AmplifierDriver::Simulated => "simulated",
            AmplifierDriver::ModbusRtu => "modbus-rtu",
            AmplifierDriver::SerialFrames => "serial-frames",
            AmplifierDriver::Gpio => "gpio",
        }
    }
}

impl AmplifierConfig {
    /// Checks every value, whichever driver is chosen, so a mistake in an
    /// unused table is found before the day the driver is switched.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.serial.validate()?;
        self.modbus.validate()?;
        self.frames.frames()?;
        self.gpio.validate()
    }
}

impl SerialConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        if self.port.as_os_str().is_empty() {
            return Err(invalid("amplifier.serial.port must not be empty"));
        }
        if !(300..=4_000_000).contains(&self.baud) {
            return Err(invalid("amplifier.serial.baud must be between 300 and 4000000"));
        }
        if !(1..=2).contains(&self.stop_bits) {
            return Err(invalid("amplifier.serial.stop_bits must be 1 or 2"));
        }
        if !(10..=10_000).contains(&self.timeout_ms) {
            return Err(invalid("amplifier.serial.timeout_ms must be between 10 and 10000"));
        }
        if !(1..=5).contains(&self.attempts) {
            return Err(invalid("amplifier.serial.attempts must be between 1 and 5"));
        }
        Ok(())
    }

    /// How long one exchange with the board may take.
    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms)
    }
}

impl ModbusConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        if !(1..=247).contains(&self.slave) {
            return Err(invalid(format!(
                "amplifier.modbus.slave must be between 1 and 247 (0 is the broadcast address, which no board answers), not {}",
                self.slave
            )));
        }
        Ok(())
    }
}

impl FramesConfig {
    /// The frames this table describes, or why they are wrong.
    pub fn frames(&self) -> Result<Frames, ConfigError> {
        let channels = match self.preset {
            FramePreset::Custom => 0,
            FramePreset::Lcus1 => 1,
            FramePreset::Lcus2 => 2,
            FramePreset::Lcus4 => 4,
            FramePreset::Lcus8 => 8,
        };
        let reply_on = optional_hex("amplifier.frames.reply_on", &self.reply_on)?;
        let reply_off = optional_hex("amplifier.frames.reply_off", &self.reply_off)?;
        if self.preset == FramePreset::Custom {
            let on = optional_hex("amplifier.frames.on", &self.on)?
                .ok_or_else(|| invalid("amplifier.frames.on must be set when preset = \"custom\""))?;
            let off = optional_hex("amplifier.frames.off", &self.off)?
                .ok_or_else(|| invalid("amplifier.frames.off must be set when preset = \"custom\""))?;
            if on == off {
                return Err(invalid("amplifier.frames.on and amplifier.frames.off must differ"));
            }
            return Ok(Frames { on, off, reply_on, reply_off });
        }
        if !self.on.trim().is_empty() || !self.off.trim().is_empty() {
            return Err(invalid(
                "amplifier.frames.on and .off are used only with preset = \"custom\"; leave them empty",
            ));
        }
        if !(1..=channels).contains(&self.channel) {
            return Err(invalid(format!(
                "amplifier.frames.channel must be between 1 and {channels} for this board, not {}",
                self.channel
            )));
        }
        Ok(Frames { on: lcus_frame(self.channel, true), off: lcus_frame(self.channel, false), reply_on, reply_off })
    }
}

impl GpioConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        if self.chip.as_os_str().is_empty() {
            return Err(invalid("amplifier.gpio.chip must not be empty"));
        }
        Ok(())
    }
}

impl Default for SerialConfig {
    fn default() -> Self {
        SerialConfig {
            port: PathBuf::from("/dev/ttyUSB0"),
            baud: 9600,
            parity: Parity::None,
            stop_bits: 1,
            timeout_ms: 500,
            attempts: 2,
        }
    }
}

impl Default for ModbusConfig {
    fn default() -> Self {
        ModbusConfig { slave: 1, coil: 0 }
    }
}

impl Default for FramesConfig {
    fn default() -> Self {
        FramesConfig {
            preset: FramePreset::Lcus1,
            channel: 1,
            on: String::new(),
            off: String::new(),
            reply_on: String::new(),
            reply_off: String::new(),
        }
    }
}

impl Default for GpioConfig {
    fn default() -> Self {
        GpioConfig { chip: PathBuf::from("/dev/gpiochip0"), line: 17, active: ActiveLevel::High }
    }
}

/// The LCUS frame for `channel`: `A0`, channel, state, and the sum of the
/// three modulo 256.
pub fn lcus_frame(channel: u8, on: bool) -> Vec<u8> {
    let state = u8::from(on);
    vec![0xA0, channel, state, 0xA0u8.wrapping_add(channel).wrapping_add(state)]
}

/// Decodes hex bytes: pairs of digits, optionally separated by spaces, each
/// optionally prefixed `0x`. Empty text is `None`.
pub fn parse_hex(text: &str) -> Result<Option<Vec<u8>>, String> {
    let mut out = Vec::new();
    for word in text.split_whitespace() {
        let digits = word.strip_prefix("0x").or_else(|| word.strip_prefix("0X")).unwrap_or(word);
        if digits.is_empty() || digits.len() % 2 != 0 {
            return Err(format!("{word:?} is not whole hex bytes (two digits each)"));
        }
        for pair in digits.as_bytes().chunks(2) {
            let s = std::str::from_utf8(pair).map_err(|_| format!("{word:?} is not hex"))?;
            out.push(u8::from_str_radix(s, 16).map_err(|_| format!("{s:?} in {word:?} is not a hex byte"))?);
        }
    }
    if out.len() > 256 {
        return Err(format!("{} bytes is too long for a frame (at most 256)", out.len()));
    }
    Ok((!out.is_empty()).then_some(out))
}

fn optional_hex(key: &str, text: &str) -> Result<Option<Vec<u8>>, ConfigError> {
    parse_hex(text).map_err(|why| invalid(format!("{key} {text:?}: {why}")))
}

fn invalid(message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid(message.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::config::{Config, DEFAULT_CONFIG};

    #[test]
    fn the_default_file_shows_the_defaults_of_omitted_tables() {
        let a = Config::default_config().amplifier;
        assert_eq!(a.driver, AmplifierDriver::None);
        assert_eq!(a.serial, SerialConfig::default());
        assert_eq!(a.modbus, ModbusConfig::default());
        assert_eq!(a.frames, FramesConfig::default());
        assert_eq!(a.gpio, GpioConfig::default());
        // An older file with only the driver still parses.
        let start = DEFAULT_CONFIG.find("\n[amplifier.serial]\n").unwrap();
        let end = DEFAULT_CONFIG.find("\n[audio]\n").unwrap();
        let short = format!("{}{}", &DEFAULT_CONFIG[..start], &DEFAULT_CONFIG[end..]);
        assert_eq!(Config::parse(&short, "t").unwrap().amplifier.serial, SerialConfig::default());
    }

    #[test]
    fn bad_amplifier_settings_are_one_line_errors() {
        for (from, to, expect) in [
            ("driver = \"none\"", "driver = \"modbus\"", "unknown variant `modbus`"),
            ("parity = \"none\"", "parity = \"mark\"", "unknown variant `mark`"),
            ("slave = 1", "slave = 0", "amplifier.modbus.slave must be between 1 and 247"),
            ("slave = 1", "slave = 248", "amplifier.modbus.slave"),
            ("slave = 1", "slave = 300", "slave"),
            ("coil = 0", "coil = 0\nrelay = 2", "unknown field `relay`"),
            ("[amplifier.gpio]", "[amplifier.gpio]\npin = 4", "unknown field `pin`"),
            ("active = \"high\"", "active = \"up\"", "unknown variant `up`"),
            ("preset = \"lcus-1\"", "preset = \"custom\"", "amplifier.frames.on must be set"),
            ("reply_on = \"\"", "reply_on = \"A0 XY\"", "amplifier.frames.reply_on \"A0 XY\": \"XY\""),
            ("on = \"\"", "on = \"A0 01 01 A2\"", "only with preset"),
            ("stop_bits = 1", "stop_bits = 3", "amplifier.serial.stop_bits must be 1 or 2"),
            ("baud = 9600", "baud = 0", "amplifier.serial.baud"),
            ("timeout_ms = 500", "timeout_ms = 0", "amplifier.serial.timeout_ms"),
            ("attempts = 2", "attempts = 0", "amplifier.serial.attempts"),
            ("port = \"/dev/ttyUSB0\"", "port = \"\"", "amplifier.serial.port"),
            ("chip = \"/dev/gpiochip0\"", "chip = \"\"", "amplifier.gpio.chip"),
        ] {
            let text = DEFAULT_CONFIG.replacen(from, to, 1);
            assert_ne!(text, DEFAULT_CONFIG, "{from}");
            let err = Config::parse(&text, "t").unwrap_err().to_string();
            assert!(err.contains(expect), "{to}: {err}");
            assert!(!err.contains('\n'), "{err}");
        }
    }

    #[test]
    fn lcus_presets_are_the_documented_frames() {
        let f = FramesConfig::default().frames().unwrap();
        assert_eq!(f.on, [0xA0, 0x01, 0x01, 0xA2]);
        assert_eq!(f.off, [0xA0, 0x01, 0x00, 0xA1]);
        assert_eq!(f.reply_on, None);
        let f = FramesConfig { preset: FramePreset::Lcus4, channel: 3, ..FramesConfig::default() }.frames().unwrap();
        assert_eq!(f.on, [0xA0, 0x03, 0x01, 0xA4]);
        assert_eq!(f.off, [0xA0, 0x03, 0x00, 0xA3]);
    }

    #[test]
    fn hex_is_parsed_strictly() {
        for (text, expect) in [
            ("A0 01 01 A2", Some(vec![0xA0, 1, 1, 0xA2])),
            ("a0010 1a2", None),
            ("0xA0 0x01", Some(vec![0xA0, 1])),
            ("A00101A2", Some(vec![0xA0, 1, 1, 0xA2])),
            ("", Some(vec![])),
            ("   ", Some(vec![])),
            ("A0 0G", None),
            ("A0 1", None),
            ("0x", None),
            ("é1", None),
        ] {
            let got = parse_hex(text);
            match expect {
                Some(bytes) if bytes.is_empty() => assert_eq!(got, Ok(None), "{text:?}"),
                Some(bytes) => assert_eq!(got, Ok(Some(bytes)), "{text:?}"),
                None => assert!(got.is_err(), "{text:?} gave {got:?}"),
            }
        }
    }

    #[test]
    fn frame_settings_are_checked() {
        let custom = |on: &str, off: &str| FramesConfig {
            preset: FramePreset::Custom,
            on: on.into(),
            off: off.into(),
            ..FramesConfig::default()
        };
        for (cfg, expect) in [
            (custom("", "01"), "amplifier.frames.on must be set"),
            (custom("01", "01"), "must differ"),
            (custom("01 zz", "02"), "amplifier.frames.on \"01 zz\""),
            (FramesConfig { channel: 2, ..FramesConfig::default() }, "between 1 and 1"),
            (FramesConfig { channel: 0, preset: FramePreset::Lcus8, ..FramesConfig::default() }, "between 1 and 8"),
            (FramesConfig { on: "A0".into(), ..FramesConfig::default() }, "only with preset"),
            (FramesConfig { reply_on: "A".into(), ..FramesConfig::default() }, "amplifier.frames.reply_on"),
        ] {
            let err = cfg.frames().unwrap_err().to_string();
            assert!(err.contains(expect), "{err}");
        }
        assert_eq!(custom("01 02", "0x03").frames().unwrap().off, [3]);
    }
}
