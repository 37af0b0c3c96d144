//! Relay boards on pseudo-terminals, for driver tests and for end-to-end
//! tests that give the real `dalaba-agent` a serial port.
//!
//! Each board holds the master side of a pty pair in its own thread; the
//! agent (or a driver) opens [`RelayEmulator::path`] like any serial device.
//! The board also keeps the slave side open, so the master never sees a hang
//! up between the agent's opens.
//!
//! - [`RelayEmulator`]: a Modbus RTU relay board (function 05 write single
//!   coil, 01 read coils). It checks every request's CRC, records each with
//!   its time, records coil writes, and can misbehave on demand
//!   ([`Behaviour`]): stay silent, garble its CRC, cut its answer short,
//!   answer for another slave, refuse, or leave a stuck relay.
//! - [`SerialBoard`]: a raw serial board that records every byte it receives
//!   and may answer configured frames (LCUS-type boards).

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use dalaba_agent::relay::modbus_crc;
use serialport::{SerialPort, TTYPort};

/// How the emulated Modbus board answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Behaviour {
    /// Like a working board.
    Normal,
    /// Hears and records requests but never answers (unpowered, wrong
    /// address on the bus, broken A/B wires).
    Silent,
    /// Answers with a wrong CRC (noise on the line).
    BadCrc,
    /// Answers with only the first three bytes of the frame.
    Truncated,
    /// Answers as another slave address, with a valid CRC.
    WrongSlave,
    /// Refuses with exception 04, slave device failure.
    Exception,
    /// Echoes writes but its coils never change (a dead relay).
    Stuck,
}

/// One request as the board heard it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// When it was complete.
    pub at: Instant,
    /// Its bytes, CRC included.
    pub bytes: Vec<u8>,
    /// Whether its CRC was right (an incomplete frame's is not).
    pub crc_ok: bool,
}

/// A write single coil (05) the board carried out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CoilWrite {
    /// When.
    pub at: Instant,
    /// Which coil.
    pub coil: u16,
    /// On or off.
    pub on: bool,
}

/// A Modbus RTU relay board on a pty. Stops when dropped.
pub struct RelayEmulator {
    board: Arc<Mutex<ModbusBoard>>,
    pty: PtyThread,
}

/// A raw serial board on a pty. Stops when dropped.
pub struct SerialBoard {
    board: Arc<Mutex<RawBoard>>,
    pty: PtyThread,
}

#[derive(Debug)]
struct ModbusBoard {
    slave: u8,
    behaviour: Behaviour,
    coils: [bool; 64],
    requests: Vec<Request>,
    writes: Vec<CoilWrite>,
    pending: Vec<u8>,
}

#[derive(Debug, Default)]
struct RawBoard {
    received: Vec<(Instant, Vec<u8>)>,
    replies: Vec<(Vec<u8>, Vec<u8>)>,
    unanswered: Vec<u8>,
}

struct PtyThread {
    path: PathBuf,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl RelayEmulator {
    /// A board answering as `slave`, all coils off.
    pub fn start(slave: u8) -> std::io::Result<RelayEmulator> {
        let board = Arc::new(Mutex::new(ModbusBoard {
            slave,
            behaviour: Behaviour::Normal,
            coils: [false; 64],
            requests: Vec::new(),
            writes: Vec::new(),
            pending: Vec::new(),
        }));
        let b = Arc::clone(&board);
        let pty = PtyThread::spawn(move |port, data| lock(&b).serve(port, data))?;
        Ok(RelayEmulator { board, pty })
    }

    /// The serial device to give the driver or the agent.
    pub fn path(&self) -> &Path {
        &self.pty.path
    }

    /// Changes how the board answers from the next request on.
    pub fn set_behaviour(&self, behaviour: Behaviour) {
        lock(&self.board).behaviour = behaviour;
    }

    /// Every request heard so far, in order.
    pub fn requests(&self) -> Vec<Request> {
        lock(&self.board).requests.clone()
    }

    /// Every coil write carried out so far, in order.
    pub fn writes(&self) -> Vec<CoilWrite> {
        lock(&self.board).writes.clone()
    }

    /// Whether `coil` is on now.
    pub fn coil(&self, coil: u16) -> bool {
        lock(&self.board).coils.get(usize::from(coil)).copied().unwrap_or(false)
    }
}

impl ModbusBoard {
    /// Frames are told apart by size (every request this board knows is
    /// eight bytes) and, as on a real bus, by silence: a pause discards a
    /// partial frame.
    fn serve(&mut self, port: &mut TTYPort, data: Option<&[u8]>) {
        let Some(data) = data else {
            if !self.pending.is_empty() {
                let bytes = std::mem::take(&mut self.pending);
                self.requests.push(Request { at: Instant::now(), bytes, crc_ok: false });
            }
            return;
        };
        self.pending.extend_from_slice(data);
        while self.pending.len() >= 8 {
            let frame: Vec<u8> = self.pending.drain(..8).collect();
            let crc_ok = modbus_crc(&frame[..6]).to_le_bytes() == frame[6..];
            self.requests.push(Request { at: Instant::now(), bytes: frame.clone(), crc_ok });
            // A slave ignores a frame with a bad CRC or for another address.
            if !crc_ok || frame[0] != self.slave {
                continue;
            }
            if let Some(reply) = self.answer(&frame) {
                let _ = port.write_all(&reply);
                let _ = port.flush();
            }
        }
    }

    fn answer(&mut self, frame: &[u8]) -> Option<Vec<u8>> {
        let function = frame[1];
        let address = u16::from_be_bytes([frame[2], frame[3]]);
        let value = u16::from_be_bytes([frame[4], frame[5]]);
        let mut reply = match (self.behaviour, function) {
            (Behaviour::Silent, _) => return None,
            (Behaviour::Exception, _) => vec![self.slave, function | 0x80, 0x04],
            (_, 0x05) if usize::from(address) >= self.coils.len() => vec![self.slave, 0x85, 0x02],
            (_, 0x05) if value != 0xFF00 && value != 0x0000 => vec![self.slave, 0x85, 0x03],
            (behaviour, 0x05) => {
                let on = value == 0xFF00;
                if behaviour != Behaviour::Stuck {
                    self.coils[usize::from(address)] = on;
                    self.writes.push(CoilWrite { at: Instant::now(), coil: address, on });
                }
                frame[..6].to_vec()
            }
            (_, 0x01) if value == 0 || usize::from(address) + usize::from(value) > self.coils.len() => {
                vec![self.slave, 0x81, 0x02]
            }
            (_, 0x01) => {
                let coils = &self.coils[usize::from(address)..usize::from(address) + usize::from(value)];
                let mut bytes = vec![0u8; coils.len().div_ceil(8)];
                for (i, &on) in coils.iter().enumerate() {
                    bytes[i / 8] |= u8::from(on) << (i % 8);
                }
                let mut reply = vec![self.slave, 0x01, bytes.len() as u8];
                reply.extend(bytes);
                reply
            }
            (_, f) => vec![self.slave, f | 0x80, 0x01],
        };
        if self.behaviour == Behaviour::WrongSlave {
            reply[0] = self.slave.wrapping_add(1);
        }
        reply.extend(modbus_crc(&reply).to_le_bytes());
        match self.behaviour {
            Behaviour::BadCrc => {
                if let Some(last) = reply.last_mut() {
                    *last ^= 0x5A;
                }
            }
            Behaviour::Truncated => reply.truncate(3),
            _ => {}
        }
        Some(reply)
    }
}

impl SerialBoard {
    /// A board that records what it receives and answers nothing.
    pub fn start() -> std::io::Result<SerialBoard> {
        let board = Arc::new(Mutex::new(RawBoard::default()));
        let b = Arc::clone(&board);
        let pty = PtyThread::spawn(move |port, data| lock(&b).serve(port, data))?;
        Ok(SerialBoard { board, pty })
    }

    /// The serial device to give the driver or the agent.
    pub fn path(&self) -> &Path {
        &self.pty.path
    }

    /// Answers `reply` whenever the bytes received end with `frame`.
    pub fn reply_to(&self, frame: &[u8], reply: &[u8]) {
        lock(&self.board).replies.push((frame.to_vec(), reply.to_vec()));
    }

    /// Every byte received so far, in order.
    pub fn received(&self) -> Vec<u8> {
        lock(&self.board).received.iter().flat_map(|(_, b)| b.iter().copied()).collect()
    }

    /// What was received, as the reads that brought it, with their times.
    pub fn reads(&self) -> Vec<(Instant, Vec<u8>)> {
        lock(&self.board).received.clone()
    }
}

impl RawBoard {
    fn serve(&mut self, port: &mut TTYPort, data: Option<&[u8]>) {
        let Some(data) = data else { return };
        self.received.push((Instant::now(), data.to_vec()));
        self.unanswered.extend_from_slice(data);
        if let Some((_, reply)) = self.replies.iter().find(|(frame, _)| self.unanswered.ends_with(frame)) {
            let _ = port.write_all(reply);
            let _ = port.flush();
            self.unanswered.clear();
        }
    }
}

impl PtyThread {
    /// Opens a pty pair and calls `serve` with each read from the master
    /// side, or with `None` after 20 ms of silence.
    fn spawn<F>(mut serve: F) -> std::io::Result<PtyThread>
    where
        F: FnMut(&mut TTYPort, Option<&[u8]>) + Send + 'static,
    {
        let (mut master, slave) = TTYPort::pair().map_err(std::io::Error::other)?;
        let path = slave.name().map(PathBuf::from).ok_or_else(|| std::io::Error::other("the pty has no name"))?;
        master.set_timeout(Duration::from_millis(20)).map_err(std::io::Error::other)?;
        let stop = Arc::new(AtomicBool::new(false));
        let halt = Arc::clone(&stop);
        let thread = std::thread::Builder::new().name("relay-board".into()).spawn(move || {
            // Held so the master never reads a hang-up between the
            // driver's opens.
            let _slave = slave;
            let mut buf = [0u8; 512];
            while !halt.load(Ordering::Relaxed) {
                match master.read(&mut buf) {
                    Ok(0) => serve(&mut master, None),
                    Ok(n) => serve(&mut master, Some(&buf[..n])),
                    Err(e) if e.kind() == std::io::ErrorKind::TimedOut => serve(&mut master, None),
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(_) => std::thread::sleep(Duration::from_millis(20)),
                }
            }
        })?;
        Ok(PtyThread { path, stop, thread: Some(thread) })
    }
}

impl Drop for PtyThread {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // The board thread panicking would be a test bug; its data stays usable.
    m.lock().unwrap_or_else(|p| p.into_inner())
}
