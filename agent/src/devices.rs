//! Device adapters the shell reads and drives: the amplifier relay and the
//! disk. Real serial and GPIO relay drivers arrive with scheduled broadcasts;
//! their trait is here.

use std::path::{Path, PathBuf};

use dalaba_protocol::link::AmplifierState;

use crate::config::AmplifierDriver;
use crate::core::{AmplifierCommand, DeviceSnapshot};

/// Why the amplifier could not be switched.
#[derive(Debug, thiserror::Error)]
pub enum AmplifierError {
    /// The relay board did not answer or answered wrongly.
    #[error("relay board fault: {0}")]
    Fault(String),
}

/// Something that switches a loudspeaker amplifier.
pub trait Amplifier: Send {
    /// Switches the relay and returns the confirmed state.
    fn switch(&mut self, cmd: AmplifierCommand) -> Result<AmplifierState, AmplifierError>;
    /// The last known state.
    fn state(&self) -> AmplifierState;
    /// The driver's name, as in the config.
    fn driver(&self) -> &'static str;
}

/// No relay: the agent cannot switch or know the amplifier.
#[derive(Debug, Default)]
pub struct NoAmplifier;

impl Amplifier for NoAmplifier {
    fn switch(&mut self, _cmd: AmplifierCommand) -> Result<AmplifierState, AmplifierError> {
        Ok(AmplifierState::Unknown)
    }
    fn state(&self) -> AmplifierState {
        AmplifierState::Unknown
    }
    fn driver(&self) -> &'static str {
        "none"
    }
}

/// An in-memory relay board: confirms every switch.
#[derive(Debug, Default)]
pub struct SimulatedRelay {
    state: Option<AmplifierState>,
    /// Number of switch commands received (for tests).
    pub switches: u64,
}

impl Amplifier for SimulatedRelay {
    fn switch(&mut self, cmd: AmplifierCommand) -> Result<AmplifierState, AmplifierError> {
        self.switches += 1;
        let s = match cmd {
            AmplifierCommand::On => AmplifierState::On,
            AmplifierCommand::Off => AmplifierState::Off,
        };
        self.state = Some(s);
        Ok(s)
    }
    fn state(&self) -> AmplifierState {
        self.state.unwrap_or(AmplifierState::Unknown)
    }
    fn driver(&self) -> &'static str {
        "simulated"
    }
}

/// Builds the configured amplifier driver.
pub fn amplifier(driver: AmplifierDriver) -> Box<dyn Amplifier> {
    match driver {
        AmplifierDriver::None => Box::new(NoAmplifier),
        AmplifierDriver::Simulated => Box::new(SimulatedRelay::default()),
    }
}

/// The agent's devices, read together into a [`DeviceSnapshot`].
pub struct Devices {
    /// The amplifier.
    pub amplifier: Box<dyn Amplifier>,
    state_dir: PathBuf,
    fault: bool,
}

impl std::fmt::Debug for Devices {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Devices").field("state_dir", &self.state_dir).finish_non_exhaustive()
    }
}

/// Disk figures are rounded down to this, so a growing log file does not
/// make every poll a "change" worth a status message.
const DISK_GRANULE: u64 = 16 * 1024 * 1024;

impl Devices {
    /// Devices of an agent whose state lives in `state_dir`.
    pub fn new(amplifier: Box<dyn Amplifier>, state_dir: &Path) -> Devices {
        Devices { amplifier, state_dir: state_dir.to_path_buf(), fault: false }
    }

    /// The agent's state directory (the content cache and persisted state
    /// live under it).
    pub fn state_dir(&self) -> &Path {
        &self.state_dir
    }

    /// Carries out a switch command; a failure is remembered as a fault.
    pub fn switch(&mut self, cmd: AmplifierCommand) -> Result<AmplifierState, AmplifierError> {
        let r = self.amplifier.switch(cmd);
        self.fault = r.is_err();
        r
    }

    /// Reads every device now.
    pub fn snapshot(&self) -> DeviceSnapshot {
        DeviceSnapshot {
            disk_free_bytes: disk_free(&self.state_dir) / DISK_GRANULE * DISK_GRANULE,
            cache_bytes: dir_size(&self.state_dir.join("cache")),
            amplifier: if self.fault { AmplifierState::Fault } else { self.amplifier.state() },
            now_playing: None,
        }
    }
}

/// Free bytes available to unprivileged users on the file system of `path`;
/// 0 when it cannot be read.
pub fn disk_free(path: &Path) -> u64 {
    rustix::fs::statvfs(path).map(|s| s.f_bavail.saturating_mul(s.f_frsize)).unwrap_or(0)
}

fn dir_size(path: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(path) else { return 0 };
    entries
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_size(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn simulated_relay_confirms() {
        let mut r = SimulatedRelay::default();
        assert_eq!(r.state(), AmplifierState::Unknown);
        assert_eq!(r.switch(AmplifierCommand::Off).expect("switch"), AmplifierState::Off);
        assert_eq!(r.state(), AmplifierState::Off);
    }

    #[test]
    fn snapshot_reads_disk_and_cache() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(dir.path().join("cache/ab")).expect("mkdir");
        std::fs::write(dir.path().join("cache/ab/x"), vec![0u8; 1000]).expect("write");
        let d = Devices::new(Box::new(SimulatedRelay::default()), dir.path());
        let s = d.snapshot();
        assert_eq!(s.cache_bytes, 1000);
        assert!(s.disk_free_bytes > 0);
    }
}
