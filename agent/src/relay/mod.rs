//! Real amplifier relay drivers, behind [`Amplifier`](crate::devices::Amplifier).
//!
//! Every driver opens its device lazily, at the first switch (which is the
//! forced OFF at agent start), and again after any failure: a board that is
//! missing at start is an error in the log and a fault in the status, never
//! a reason for the agent to stop, and one that is plugged back in works at
//! the next switch. Every exchange with a board is bounded by a timeout, so a
//! silent board delays one switch, not the agent.
//!
//! # Layout
//! - [`modbus`]: Modbus RTU boards — write single coil (05), read coils (01)
//!   to confirm — through tokio-modbus on a tokio-serial port.
//! - [`frames`]: boards switched by fixed byte frames (LCUS and the like),
//!   with an optional expected reply.
//! - [`gpio`]: a relay on a GPIO line of the Linux character device, behind
//!   the small [`gpio::GpioLine`] trait so its logic is tested on a fake.
//! - Here: opening a serial port, the retries of a serial board's switch,
//!   the Modbus CRC, hex for messages.

pub mod frames;
pub mod gpio;
pub mod modbus;

use tokio_serial::{DataBits, FlowControl, SerialPort, SerialStream, StopBits};

use dalaba_protocol::link::AmplifierState;

use crate::config::{Parity, SerialConfig};
use crate::devices::AmplifierError;

/// A board on a serial port that switches once per call; [`switch_with_retries`]
/// tries again up to the configured `attempts`.
pub(crate) trait SerialBoard: Send {
    /// One switch, confirmed as far as the board can confirm it.
    fn once(&mut self, on: bool) -> impl Future<Output = Result<AmplifierState, AmplifierError>> + Send;
    /// The port, for the log.
    fn port(&self) -> &str;
    /// How many tries a switch gets (`[amplifier.serial] attempts`).
    fn attempts(&self) -> u32;
    /// Remembers the state after a switch, or `Unknown` after a failure.
    fn record(&mut self, state: AmplifierState);
}

/// Switches `board`, trying again after a failure (logged) until its
/// attempts are used up; the last error is the answer.
pub(crate) async fn switch_with_retries<B: SerialBoard>(
    board: &mut B,
    on: bool,
) -> Result<AmplifierState, AmplifierError> {
    let mut attempt = 1;
    loop {
        match board.once(on).await {
            Ok(state) => {
                board.record(state);
                return Ok(state);
            }
            Err(e) if attempt < board.attempts() => {
                tracing::warn!(port = %board.port(), attempt, error = %e, "relay switch failed; trying again");
                attempt += 1;
            }
            Err(e) => {
                board.record(AmplifierState::Unknown);
                return Err(e);
            }
        }
    }
}

/// The Modbus CRC-16 (polynomial 0xA001 reflected, initial 0xFFFF) of
/// `bytes`; it goes on the wire low byte first.
pub fn modbus_crc(bytes: &[u8]) -> u16 {
    let mut crc = 0xFFFFu16;
    for &b in bytes {
        crc ^= u16::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 { (crc >> 1) ^ 0xA001 } else { crc >> 1 };
        }
    }
    crc
}

/// Bytes as spaced upper-case hex, `A0 01 01 A2`, for messages; long runs
/// are cut with an ellipsis.
pub fn hex(bytes: &[u8]) -> String {
    const SHOWN: usize = 32;
    let mut s = bytes.iter().take(SHOWN).map(|b| format!("{b:02X}")).collect::<Vec<_>>().join(" ");
    if bytes.is_empty() {
        s.push_str("(nothing)");
    } else if bytes.len() > SHOWN {
        s.push_str(&format!(" … ({} bytes)", bytes.len()));
    }
    s
}

/// "ON" or "OFF", as technicians read it.
pub(crate) fn on_off(on: bool) -> &'static str {
    if on { "ON" } else { "OFF" }
}

/// The port's name for messages.
pub(crate) fn port_name(serial: &SerialConfig) -> String {
    serial.port.display().to_string()
}

/// Opens the configured serial port, 8 data bits, no flow control, with
/// whatever the board sent before now discarded. Needs a tokio runtime.
pub(crate) fn open_port(serial: &SerialConfig) -> Result<SerialStream, AmplifierError> {
    let parity = match serial.parity {
        Parity::None => tokio_serial::Parity::None,
        Parity::Even => tokio_serial::Parity::Even,
        Parity::Odd => tokio_serial::Parity::Odd,
    };
    let stop_bits = if serial.stop_bits == 2 { StopBits::Two } else { StopBits::One };
    let builder = tokio_serial::new(serial.port.to_string_lossy(), serial.baud)
        .data_bits(DataBits::Eight)
        .parity(parity)
        .stop_bits(stop_bits)
        .flow_control(FlowControl::None)
        .timeout(serial.timeout());
    let stream =
        SerialStream::open(&builder).map_err(|source| AmplifierError::Open { port: port_name(serial), source })?;
    // Stale bytes (an answer that came too late last time) would be taken
    // for the answer to the next request. Failing to clear is harmless.
    let _ = stream.clear(tokio_serial::ClearBuffer::All);
    Ok(stream)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc_matches_a_known_modbus_frame() {
        // Write coil 0 ON to slave 1, as tokio-modbus and the Modbus
        // specification's examples encode it.
        let frame = [0x01, 0x05, 0x00, 0x00, 0xFF, 0x00];
        assert_eq!(modbus_crc(&frame).to_le_bytes(), [0x8C, 0x3A]);
    }

    #[test]
    fn hex_is_readable() {
        assert_eq!(hex(&[0xA0, 1, 1, 0xA2]), "A0 01 01 A2");
        assert_eq!(hex(&[]), "(nothing)");
        assert!(hex(&[0; 40]).ends_with("… (40 bytes)"));
    }
}
