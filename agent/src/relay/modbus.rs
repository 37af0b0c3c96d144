//! Modbus RTU relay boards: write single coil (function 05), then read the
//! coil back (function 01); a switch counts only when the board confirms it.
//!
//! tokio-modbus frames the requests and checks the answers but has no
//! response timeout, and a reply with a bad CRC makes it wait for more bytes.
//! So every call runs under [`tokio::time::timeout`], and a tap on the port
//! keeps what the board said during the call, to tell "no answer" from
//! "bad CRC" from "garbled" when the time runs out.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context as TaskContext, Poll};

use dalaba_protocol::link::AmplifierState;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_modbus::client::{Client as _, Context};
use tokio_modbus::{Request, Response, Slave};
use tokio_serial::SerialStream;

use super::{SerialBoard, hex, modbus_crc, on_off, open_port, port_name, switch_with_retries};
use crate::config::{ModbusConfig, SerialConfig};
use crate::core::AmplifierCommand;
use crate::devices::{Amplifier, AmplifierError, SwitchFuture};

/// A relay on one coil of a Modbus RTU board.
pub struct ModbusRelay {
    serial: SerialConfig,
    slave: u8,
    coil: u16,
    port: String,
    link: Option<Link>,
    state: AmplifierState,
}

/// An open port: the Modbus client on it and what the tap heard.
struct Link {
    ctx: Context,
    heard: Heard,
}

/// The bytes read from the port since the last call began.
type Heard = Arc<Mutex<Vec<u8>>>;

/// The port, with a copy of every byte read into [`Heard`].
struct Tap {
    inner: SerialStream,
    heard: Heard,
}

impl ModbusRelay {
    /// A driver for `coil` of board `slave` on the configured port. Opens
    /// nothing until the first switch.
    pub fn new(serial: &SerialConfig, modbus: &ModbusConfig) -> ModbusRelay {
        ModbusRelay {
            serial: serial.clone(),
            slave: modbus.slave,
            coil: modbus.coil,
            port: port_name(serial),
            link: None,
            state: AmplifierState::Unknown,
        }
    }

    async fn switch_once(&mut self, on: bool) -> Result<AmplifierState, AmplifierError> {
        match self.call(Request::WriteSingleCoil(self.coil, on)).await? {
            Response::WriteSingleCoil(coil, value) if coil == self.coil && value == on => {}
            other => {
                return Err(self.mismatch(format!(
                    "expected the echo of coil {} {}, got {other:?}",
                    self.coil,
                    on_off(on)
                )));
            }
        }
        match self.call(Request::ReadCoils(self.coil, 1)).await? {
            Response::ReadCoils(coils) => match coils.first() {
                Some(&read) if read == on => Ok(if on { AmplifierState::On } else { AmplifierState::Off }),
                Some(&read) => Err(AmplifierError::NotConfirmed {
                    port: self.port.clone(),
                    coil: self.coil,
                    wanted: on_off(on),
                    read: on_off(read),
                }),
                None => Err(self.mismatch("the coil read returned no coils".into())),
            },
            other => Err(self.mismatch(format!("expected coil {} read back, got {other:?}", self.coil))),
        }
    }

    /// One request and its answer, within the timeout. Any failure but a
    /// Modbus exception closes the port, so the next call starts clean.
    async fn call(&mut self, request: Request<'static>) -> Result<Response, AmplifierError> {
        let link = match &mut self.link {
            Some(link) => link,
            None => self.link.insert(Link::open(&self.serial, self.slave)?),
        };
        clear(&link.heard);
        let answer = tokio::time::timeout(self.serial.timeout(), link.ctx.call(request)).await;
        let heard = take(&link.heard);
        let err = match answer {
            Ok(Ok(Ok(response))) => return Ok(response),
            Ok(Ok(Err(code))) => return Err(AmplifierError::Exception { port: self.port.clone(), code }),
            Ok(Err(tokio_modbus::Error::Transport(source))) => AmplifierError::Io { port: self.port.clone(), source },
            Ok(Err(tokio_modbus::Error::Protocol(e))) => {
                AmplifierError::Mismatch { port: self.port.clone(), reply: hex(&heard), why: e.to_string() }
            }
            Err(_elapsed) => self.silence(&heard),
        };
        self.link = None;
        Err(err)
    }

    /// What a timeout means, given what the board said meanwhile.
    fn silence(&self, heard: &[u8]) -> AmplifierError {
        let port = self.port.clone();
        match heard {
            [] => AmplifierError::NoAnswer { port, timeout_ms: self.serial.timeout_ms },
            [body @ .., lo, hi] if body.len() >= 2 && modbus_crc(body) != u16::from_le_bytes([*lo, *hi]) => {
                AmplifierError::BadCrc { port, reply: hex(heard) }
            }
            _ => AmplifierError::Garbled { port, reply: hex(heard) },
        }
    }

    fn mismatch(&self, why: String) -> AmplifierError {
        AmplifierError::Mismatch { port: self.port.clone(), reply: String::from("(decoded)"), why }
    }
}

impl SerialBoard for ModbusRelay {
    fn once(&mut self, on: bool) -> impl Future<Output = Result<AmplifierState, AmplifierError>> + Send {
        self.switch_once(on)
    }

    fn port(&self) -> &str {
        &self.port
    }

    fn attempts(&self) -> u32 {
        self.serial.attempts
    }

    fn record(&mut self, state: AmplifierState) {
        self.state = state;
    }
}

impl Amplifier for ModbusRelay {
    fn switch(&mut self, cmd: AmplifierCommand) -> SwitchFuture<'_> {
        Box::pin(switch_with_retries(self, cmd == AmplifierCommand::On))
    }

    fn state(&self) -> AmplifierState {
        self.state
    }

    fn driver(&self) -> &'static str {
        "modbus-rtu"
    }
}

impl std::fmt::Debug for ModbusRelay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ModbusRelay")
            .field("port", &self.port)
            .field("slave", &self.slave)
            .field("coil", &self.coil)
            .field("open", &self.link.is_some())
            .field("state", &self.state)
            .finish()
    }
}

impl Link {
    fn open(serial: &SerialConfig, slave: u8) -> Result<Link, AmplifierError> {
        let heard = Heard::default();
        let tap = Tap { inner: open_port(serial)?, heard: Arc::clone(&heard) };
        Ok(Link { ctx: tokio_modbus::client::rtu::attach_slave(tap, Slave(slave)), heard })
    }
}

fn clear(heard: &Heard) {
    // A poisoned lock only means a reader panicked mid-push; the bytes are
    // still bytes.
    heard.lock().unwrap_or_else(|p| p.into_inner()).clear();
}

fn take(heard: &Heard) -> Vec<u8> {
    std::mem::take(&mut *heard.lock().unwrap_or_else(|p| p.into_inner()))
}

impl AsyncRead for Tap {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = polled {
            let mut heard = self.heard.lock().unwrap_or_else(|p| p.into_inner());
            // Bounded: one call never needs more than a frame or two.
            if heard.len() < 1024 {
                heard.extend_from_slice(&buf.filled()[before..]);
            }
        }
        polled
    }
}

impl AsyncWrite for Tap {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn silence_is_named_by_what_was_heard() {
        let relay = ModbusRelay::new(&SerialConfig::default(), &ModbusConfig::default());
        let check = |heard: &[u8], expect: &str| {
            let msg = relay.silence(heard).to_string();
            assert!(msg.contains(expect), "{heard:02X?}: {msg}");
            assert!(msg.contains("/dev/ttyUSB0"), "{msg}");
        };
        check(&[], "did not answer within 500 ms");
        check(&[0x01, 0x05, 0x00, 0x00, 0xFF, 0x00, 0x8C, 0x3B], "bad CRC: 01 05 00 00 FF 00 8C 3B");
        check(&[0x01, 0x05, 0x00], "garbled or incomplete reply: 01 05 00");
        // A whole, correct frame that tokio-modbus still did not take.
        check(&[0x01, 0x05, 0x00, 0x00, 0xFF, 0x00, 0x8C, 0x3A], "garbled");
    }
}
