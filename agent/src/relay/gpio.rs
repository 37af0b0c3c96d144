//! A relay on a GPIO line, through the Linux GPIO character device
//! (`/dev/gpiochipN`, uAPI v2, via gpiocdev).
//!
//! The driver logic — which level means on, claiming the line at the OFF
//! level so starting never clicks the relay on, reading the level back — is
//! [`GpioRelay`]; the line itself is the small [`GpioLine`] trait, so the
//! logic is tested on a fake where no GPIO chip exists. The line is held for
//! the life of the agent: a released line may float back to any level.

use std::path::PathBuf;

use dalaba_protocol::link::AmplifierState;

use crate::config::{ActiveLevel, GpioConfig};
use crate::core::AmplifierCommand;
use crate::devices::{Amplifier, AmplifierError, SwitchFuture};

/// Why a GPIO line failed: the chip's or the kernel's error.
pub type LineError = Box<dyn std::error::Error + Send + Sync>;

/// The electrical level on a pin.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    /// 0 V.
    Low,
    /// 3.3 V.
    High,
}

/// One GPIO output line, in physical levels.
pub trait GpioLine: Send {
    /// Claims the line as an output driving `initial` from the first
    /// instant. Called before any other method, and again after a failure.
    fn claim(&mut self, initial: Level) -> Result<(), LineError>;
    /// Drives the line.
    fn set(&mut self, level: Level) -> Result<(), LineError>;
    /// Reads the line's level back.
    fn level(&mut self) -> Result<Level, LineError>;
    /// Gives the line up (after a failure, before claiming it again).
    fn release(&mut self);
}

/// A relay on one GPIO line.
pub struct GpioRelay {
    line: Box<dyn GpioLine>,
    active: ActiveLevel,
    chip: String,
    offset: u32,
    claimed: bool,
    state: AmplifierState,
}

/// The real line, on a GPIO character device.
#[derive(Debug)]
pub struct CdevLine {
    chip: PathBuf,
    offset: u32,
    request: Option<gpiocdev::Request>,
}

impl GpioRelay {
    /// The configured line on its GPIO character device. Opens nothing
    /// until the first switch.
    pub fn cdev(config: &GpioConfig) -> GpioRelay {
        let line = CdevLine { chip: config.chip.clone(), offset: config.line, request: None };
        GpioRelay::new(Box::new(line), config)
    }

    /// The configured relay logic on any line (a fake in tests).
    pub fn new(line: Box<dyn GpioLine>, config: &GpioConfig) -> GpioRelay {
        GpioRelay {
            line,
            active: config.active,
            chip: config.chip.display().to_string(),
            offset: config.line,
            claimed: false,
            state: AmplifierState::Unknown,
        }
    }

    /// The level that switches the relay on (`true`) or off.
    fn level_for(&self, on: bool) -> Level {
        match (self.active, on) {
            (ActiveLevel::High, true) | (ActiveLevel::Low, false) => Level::High,
            (ActiveLevel::High, false) | (ActiveLevel::Low, true) => Level::Low,
        }
    }

    fn switch_now(&mut self, on: bool) -> Result<AmplifierState, AmplifierError> {
        let wanted = self.level_for(on);
        if !self.claimed {
            let off = self.level_for(false);
            self.line.claim(off).map_err(|e| self.error(e))?;
            self.claimed = true;
        }
        self.line.set(wanted).map_err(|e| self.error(e))?;
        let read = self.line.level().map_err(|e| self.error(e))?;
        if read != wanted {
            return Err(AmplifierError::GpioNotConfirmed {
                chip: self.chip.clone(),
                line: self.offset,
                wanted: level_name(wanted),
                read: level_name(read),
            });
        }
        Ok(if on { AmplifierState::On } else { AmplifierState::Off })
    }

    fn error(&self, source: LineError) -> AmplifierError {
        AmplifierError::Gpio { chip: self.chip.clone(), line: self.offset, source }
    }
}

fn level_name(level: Level) -> &'static str {
    match level {
        Level::Low => "low",
        Level::High => "high",
    }
}

impl Amplifier for GpioRelay {
    fn switch(&mut self, cmd: AmplifierCommand) -> SwitchFuture<'_> {
        // A line is set by one ioctl that does not wait on hardware: no need
        // for a blocking thread.
        let result = self.switch_now(cmd == AmplifierCommand::On);
        match &result {
            Ok(state) => self.state = *state,
            Err(_) => {
                self.line.release();
                self.claimed = false;
                self.state = AmplifierState::Unknown;
            }
        }
        Box::pin(std::future::ready(result))
    }

    fn state(&self) -> AmplifierState {
        self.state
    }

    fn driver(&self) -> &'static str {
        "gpio"
    }
}

impl std::fmt::Debug for GpioRelay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GpioRelay")
            .field("chip", &self.chip)
            .field("line", &self.offset)
            .field("active", &self.active)
            .field("claimed", &self.claimed)
            .field("state", &self.state)
            .finish()
    }
}

impl CdevLine {
    /// Without the kernel's active-low flag, "active" is the high level.
    fn value(level: Level) -> gpiocdev::line::Value {
        match level {
            Level::High => gpiocdev::line::Value::Active,
            Level::Low => gpiocdev::line::Value::Inactive,
        }
    }

    fn request(&self) -> Result<&gpiocdev::Request, LineError> {
        self.request.as_ref().ok_or_else(|| "the line is not claimed".into())
    }
}

impl GpioLine for CdevLine {
    fn claim(&mut self, initial: Level) -> Result<(), LineError> {
        if !self.chip.exists() {
            return Err("no such GPIO chip (`ls /dev/gpiochip*` lists the chips of this board)".into());
        }
        let request = gpiocdev::Request::builder()
            .on_chip(&self.chip)
            .with_consumer("dalaba-agent")
            .with_line(self.offset)
            .as_output(CdevLine::value(initial))
            .request()?;
        self.request = Some(request);
        Ok(())
    }

    fn set(&mut self, level: Level) -> Result<(), LineError> {
        Ok(self.request()?.set_value(self.offset, CdevLine::value(level))?)
    }

    fn level(&mut self) -> Result<Level, LineError> {
        Ok(match self.request()?.value(self.offset)? {
            gpiocdev::line::Value::Active => Level::High,
            gpiocdev::line::Value::Inactive => Level::Low,
        })
    }

    fn release(&mut self) {
        self.request = None;
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    /// What the fake line went through.
    #[derive(Debug, Default)]
    struct FakePin {
        /// Every level driven, the claim's initial level first.
        driven: Vec<Level>,
        claims: usize,
        /// Fail the next claim.
        missing: bool,
        /// Read back this instead of the driven level.
        stuck: Option<Level>,
    }

    struct FakeLine(Arc<Mutex<FakePin>>);

    impl GpioLine for FakeLine {
        fn claim(&mut self, initial: Level) -> Result<(), LineError> {
            let mut pin = self.0.lock().unwrap();
            if pin.missing {
                return Err("No such file or directory".into());
            }
            pin.claims += 1;
            pin.driven.push(initial);
            Ok(())
        }
        fn set(&mut self, level: Level) -> Result<(), LineError> {
            self.0.lock().unwrap().driven.push(level);
            Ok(())
        }
        fn level(&mut self) -> Result<Level, LineError> {
            let pin = self.0.lock().unwrap();
            Ok(pin.stuck.or(pin.driven.last().copied()).unwrap_or(Level::Low))
        }
        fn release(&mut self) {}
    }

    fn relay(active: ActiveLevel) -> (GpioRelay, Arc<Mutex<FakePin>>) {
        let pin = Arc::new(Mutex::new(FakePin::default()));
        let config = GpioConfig { active, ..GpioConfig::default() };
        (GpioRelay::new(Box::new(FakeLine(Arc::clone(&pin))), &config), pin)
    }

    #[tokio::test]
    async fn active_high_drives_high_for_on() {
        let (mut r, pin) = relay(ActiveLevel::High);
        assert_eq!(r.switch(AmplifierCommand::Off).await.unwrap(), AmplifierState::Off);
        assert_eq!(r.switch(AmplifierCommand::On).await.unwrap(), AmplifierState::On);
        assert_eq!(r.state(), AmplifierState::On);
        assert_eq!(pin.lock().unwrap().driven, [Level::Low, Level::Low, Level::High]);
    }

    #[tokio::test]
    async fn active_low_inverts_and_claims_at_the_off_level() {
        let (mut r, pin) = relay(ActiveLevel::Low);
        assert_eq!(r.switch(AmplifierCommand::On).await.unwrap(), AmplifierState::On);
        assert_eq!(r.switch(AmplifierCommand::Off).await.unwrap(), AmplifierState::Off);
        // Claimed high (off), so the relay never clicked on before asked.
        assert_eq!(pin.lock().unwrap().driven, [Level::High, Level::Low, Level::High]);
        assert_eq!(pin.lock().unwrap().claims, 1, "the line is held, not claimed per switch");
    }

    #[tokio::test]
    async fn a_missing_chip_is_an_error_and_the_next_switch_tries_again() {
        let (mut r, pin) = relay(ActiveLevel::High);
        pin.lock().unwrap().missing = true;
        let err = r.switch(AmplifierCommand::Off).await.unwrap_err().to_string();
        assert_eq!(err, "GPIO line 17 of /dev/gpiochip0: No such file or directory");
        assert_eq!(r.state(), AmplifierState::Unknown);
        pin.lock().unwrap().missing = false;
        assert_eq!(r.switch(AmplifierCommand::Off).await.unwrap(), AmplifierState::Off);
    }

    #[tokio::test]
    async fn a_line_that_does_not_follow_is_a_fault() {
        let (mut r, pin) = relay(ActiveLevel::High);
        pin.lock().unwrap().stuck = Some(Level::Low);
        let err = r.switch(AmplifierCommand::On).await.unwrap_err().to_string();
        assert!(err.contains("reads low after setting it high"), "{err}");
    }

    #[tokio::test]
    async fn the_real_line_reports_a_missing_or_wrong_chip() {
        let dir = tempfile::tempdir().unwrap();
        for chip in [dir.path().join("gpiochip0"), PathBuf::from("/dev/null")] {
            let config = GpioConfig { chip: chip.clone(), ..GpioConfig::default() };
            let mut r = GpioRelay::cdev(&config);
            let err = r.switch(AmplifierCommand::Off).await.unwrap_err().to_string();
            assert!(err.starts_with(&format!("GPIO line 17 of {}: ", chip.display())), "{err}");
            assert!(!err.contains('\n'), "{err}");
        }
    }
}
