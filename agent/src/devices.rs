//! Device adapters the shell reads and drives: the amplifier relay and the
//! disk. The [`Amplifier`] trait and the trivial drivers are here; the
//! Modbus, serial-frame and GPIO drivers are in [`crate::relay`].

use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;

use dalaba_protocol::link::AmplifierState;

use crate::config::{AmplifierConfig, AmplifierDriver, ConfigError};
use crate::core::{AmplifierCommand, DeviceSnapshot};
use crate::relay;

/// Why the amplifier could not be switched. Each names the device and what
/// it did, in words a village technician can act on.
#[derive(Debug, thiserror::Error)]
pub enum AmplifierError {
    /// The serial port could not be opened (missing, unplugged, in use,
    /// no permission).
    #[error("cannot open relay board port {port}: {source}")]
    Open {
        /// The port.
        port: String,
        /// Why.
        #[source]
        source: tokio_serial::Error,
    },
    /// Reading or writing the port failed.
    #[error("relay board at {port}: {source}")]
    Io {
        /// The port.
        port: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The board said nothing within the timeout.
    #[error("relay board at {port} did not answer within {timeout_ms} ms")]
    NoAnswer {
        /// The port.
        port: String,
        /// The timeout.
        timeout_ms: u64,
    },
    /// The board answered, but the answer's CRC is wrong (noise on the
    /// line, wrong baud rate or parity).
    #[error("relay board at {port} answered with a bad CRC: {reply}")]
    BadCrc {
        /// The port.
        port: String,
        /// What arrived, in hex.
        reply: String,
    },
    /// The board answered with something that is not a whole reply.
    #[error("relay board at {port} sent a garbled or incomplete reply: {reply}")]
    Garbled {
        /// The port.
        port: String,
        /// What arrived, in hex.
        reply: String,
    },
    /// A well-formed Modbus reply that does not answer the request (another
    /// slave address, another function, another coil).
    #[error("relay board at {port} sent a reply that does not match the request ({reply}): {why}")]
    Mismatch {
        /// The port.
        port: String,
        /// What arrived, in hex.
        reply: String,
        /// What is wrong with it.
        why: String,
    },
    /// The board refused the request with a Modbus exception.
    #[error("relay board at {port} refused the request: Modbus exception {code}")]
    Exception {
        /// The port.
        port: String,
        /// The exception.
        code: tokio_modbus::ExceptionCode,
    },
    /// A serial-frame board answered other bytes than the configured reply.
    #[error("relay board at {port} answered {reply} instead of the expected {expected}")]
    WrongReply {
        /// The port.
        port: String,
        /// What arrived, in hex.
        reply: String,
        /// The configured reply, in hex.
        expected: String,
    },
    /// The relay does not read back as switched.
    #[error("relay board at {port}: coil {coil} reads {read} after switching {wanted}")]
    NotConfirmed {
        /// The port.
        port: String,
        /// The coil.
        coil: u16,
        /// "ON" or "OFF", as commanded.
        wanted: &'static str,
        /// "ON" or "OFF", as read back.
        read: &'static str,
    },
    /// The GPIO line could not be claimed, set or read.
    #[error("GPIO line {line} of {chip}: {source}")]
    Gpio {
        /// The chip.
        chip: String,
        /// The line offset.
        line: u32,
        /// Why.
        #[source]
        source: relay::gpio::LineError,
    },
    /// The GPIO line does not read back the level just set.
    #[error("GPIO line {line} of {chip} reads {read} after setting it {wanted}")]
    GpioNotConfirmed {
        /// The chip.
        chip: String,
        /// The line offset.
        line: u32,
        /// "high" or "low", as set.
        wanted: &'static str,
        /// "high" or "low", as read back.
        read: &'static str,
    },
}

/// The answer to [`Amplifier::switch`]: a future, so a slow relay board
/// never blocks the runtime's worker.
pub type SwitchFuture<'a> = Pin<Box<dyn Future<Output = Result<AmplifierState, AmplifierError>> + Send + 'a>>;

/// Something that switches a loudspeaker amplifier.
pub trait Amplifier: Send {
    /// Switches the relay and resolves to the confirmed state. Drivers bound
    /// the time this takes by their own timeouts.
    fn switch(&mut self, cmd: AmplifierCommand) -> SwitchFuture<'_>;
    /// The last known state.
    fn state(&self) -> AmplifierState;
    /// The driver's name, as in the config.
    fn driver(&self) -> &'static str;
}

/// No relay: the agent cannot switch or know the amplifier.
#[derive(Debug, Default)]
pub struct NoAmplifier;

impl Amplifier for NoAmplifier {
    fn switch(&mut self, _cmd: AmplifierCommand) -> SwitchFuture<'_> {
        Box::pin(std::future::ready(Ok(AmplifierState::Unknown)))
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
    fn switch(&mut self, cmd: AmplifierCommand) -> SwitchFuture<'_> {
        self.switches += 1;
        let s = match cmd {
            AmplifierCommand::On => AmplifierState::On,
            AmplifierCommand::Off => AmplifierState::Off,
        };
        self.state = Some(s);
        Box::pin(std::future::ready(Ok(s)))
    }
    fn state(&self) -> AmplifierState {
        self.state.unwrap_or(AmplifierState::Unknown)
    }
    fn driver(&self) -> &'static str {
        "simulated"
    }
}

/// Builds the configured amplifier driver. Opens nothing: each driver opens
/// its device at the first switch, so a missing board is a fault the agent
/// reports, not a reason to stop. Fails only on settings that
/// [`Config::parse`](crate::config::Config::parse) already refuses.
pub fn amplifier(config: &AmplifierConfig) -> Result<Box<dyn Amplifier>, ConfigError> {
    Ok(match config.driver {
        AmplifierDriver::None => Box::new(NoAmplifier),
        AmplifierDriver::Simulated => Box::new(SimulatedRelay::default()),
        AmplifierDriver::ModbusRtu => Box::new(relay::modbus::ModbusRelay::new(&config.serial, &config.modbus)),
        AmplifierDriver::SerialFrames => {
            Box::new(relay::frames::FramesRelay::new(&config.serial, config.frames.frames()?))
        }
        AmplifierDriver::Gpio => Box::new(relay::gpio::GpioRelay::cdev(&config.gpio)),
    })
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
    pub async fn switch(&mut self, cmd: AmplifierCommand) -> Result<AmplifierState, AmplifierError> {
        let r = self.amplifier.switch(cmd).await;
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

    #[tokio::test]
    async fn simulated_relay_confirms() {
        let mut r = SimulatedRelay::default();
        assert_eq!(r.state(), AmplifierState::Unknown);
        assert_eq!(r.switch(AmplifierCommand::Off).await.expect("switch"), AmplifierState::Off);
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
