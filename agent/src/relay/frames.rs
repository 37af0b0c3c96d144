//! Relay boards switched by fixed byte frames on a serial port, such as the
//! LCUS USB relays (`A0 01 01 A2` on, `A0 01 00 A1` off). When the board
//! answers, the expected answer is configured and checked byte for byte;
//! when it does not, a frame written whole counts as switched.

use dalaba_protocol::link::AmplifierState;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_serial::{SerialPort, SerialStream};

use super::{SerialBoard, hex, open_port, port_name, switch_with_retries};
use crate::config::{Frames, SerialConfig};
use crate::core::AmplifierCommand;
use crate::devices::{Amplifier, AmplifierError, SwitchFuture};

/// A relay switched by the configured frames.
pub struct FramesRelay {
    serial: SerialConfig,
    frames: Frames,
    port: String,
    stream: Option<SerialStream>,
    state: AmplifierState,
}

impl FramesRelay {
    /// A driver sending `frames` on the configured port. Opens nothing until
    /// the first switch.
    pub fn new(serial: &SerialConfig, frames: Frames) -> FramesRelay {
        FramesRelay {
            serial: serial.clone(),
            frames,
            port: port_name(serial),
            stream: None,
            state: AmplifierState::Unknown,
        }
    }

    async fn switch_once(&mut self, on: bool) -> Result<AmplifierState, AmplifierError> {
        let (frame, reply) =
            if on { (&self.frames.on, &self.frames.reply_on) } else { (&self.frames.off, &self.frames.reply_off) };
        let stream = match &mut self.stream {
            Some(s) => s,
            None => self.stream.insert(open_port(&self.serial)?),
        };
        if reply.is_some() {
            // An old, late answer must not pass for this one.
            let _ = stream.clear(tokio_serial::ClearBuffer::Input);
        }
        let mut heard = Vec::new();
        let exchange = async {
            stream.write_all(frame).await?;
            stream.flush().await?;
            if let Some(expected) = reply {
                let mut buf = [0u8; 64];
                while heard.len() < expected.len() && expected.starts_with(&heard) {
                    let n = stream.read(&mut buf).await?;
                    if n == 0 {
                        return Err(std::io::Error::from(std::io::ErrorKind::UnexpectedEof));
                    }
                    heard.extend_from_slice(&buf[..n]);
                }
            }
            Ok(())
        };
        let result = tokio::time::timeout(self.serial.timeout(), exchange).await;
        let port = self.port.clone();
        let err = match (result, reply) {
            (Ok(Ok(())), None) => return Ok(state(on)),
            (Ok(Ok(())), Some(expected)) if heard == *expected => return Ok(state(on)),
            (Ok(Ok(())), Some(expected)) => {
                AmplifierError::WrongReply { port, reply: hex(&heard), expected: hex(expected) }
            }
            (Ok(Err(source)), _) => AmplifierError::Io { port, source },
            (Err(_), Some(_)) if heard.is_empty() => {
                AmplifierError::NoAnswer { port, timeout_ms: self.serial.timeout_ms }
            }
            (Err(_), Some(expected)) => {
                AmplifierError::WrongReply { port, reply: hex(&heard), expected: hex(expected) }
            }
            // Not even the write went through in time: the port is stuck.
            (Err(_), None) => AmplifierError::Io {
                port,
                source: std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!("writing the frame took longer than {} ms", self.serial.timeout_ms),
                ),
            },
        };
        self.stream = None;
        Err(err)
    }
}

fn state(on: bool) -> AmplifierState {
    if on { AmplifierState::On } else { AmplifierState::Off }
}

impl SerialBoard for FramesRelay {
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

impl Amplifier for FramesRelay {
    fn switch(&mut self, cmd: AmplifierCommand) -> SwitchFuture<'_> {
        Box::pin(switch_with_retries(self, cmd == AmplifierCommand::On))
    }

    fn state(&self) -> AmplifierState {
        self.state
    }

    fn driver(&self) -> &'static str {
        "serial-frames"
    }
}

impl std::fmt::Debug for FramesRelay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FramesRelay")
            .field("port", &self.port)
            .field("on", &hex(&self.frames.on))
            .field("off", &hex(&self.frames.off))
            .field("open", &self.stream.is_some())
            .field("state", &self.state)
            .finish()
    }
}
