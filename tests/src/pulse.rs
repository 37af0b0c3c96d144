//! Real-time paced audio capture for agents on a machine with no sound
//! card: a PulseAudio daemon with one null sink per village, each agent's
//! ALSA default device routed to its sink (`PULSE_SINK`), and `parec`
//! recording the sink's monitor to a file. ALSA's `file` plugin over `null`
//! captures exact samples but takes a second of audio in ~10 ms, so an
//! item "plays" in a blink and nothing can interrupt it; and the `file`
//! plugin over `pulse` fails cpal's `snd_pcm_avail_delay` with EIO.
//!
//! A recording is a timeline: the monitor delivers silence while nothing
//! plays (measured: a null sink with no stream at all renders a steady
//! second per second), so sample `i` was rendered `i / 48 000` s after the
//! first. parec's first samples come about two seconds after it starts,
//! so a recording covers that much less than the wall time since; a
//! starved machine could lose more. [`Recorder::shortfall_secs`] measures
//! it, and a test can check that it did not grow while it listened.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// `$XDG_CONFIG_HOME/alsa/asoundrc` for an agent: ALSA's default device is
/// PulseAudio (`libasound2-plugins`), its sink chosen by `PULSE_SINK`.
pub const PULSE_ASOUNDRC: &str = "pcm.!default { type pulse }\nctl.!default { type pulse }\n";

/// Sample rate of recordings.
pub const RATE: u32 = 48_000;

/// A PulseAudio daemon with null sinks `village0`, `village1`, … in its own
/// runtime directory (give clients [`Pulse::env`]). Killed when dropped.
#[derive(Debug)]
pub struct Pulse {
    child: Child,
    runtime: PathBuf,
}

/// `parec` recording one sink's monitor to a file (mono S16LE at
/// [`RATE`]). Stops when dropped.
#[derive(Debug)]
pub struct Recorder {
    child: Child,
    file: PathBuf,
    started: Instant,
}

impl Pulse {
    /// Starts the daemon with `sinks` null sinks and waits for its socket.
    pub fn start(runtime: &Path, sinks: usize) -> anyhow::Result<Pulse> {
        std::fs::create_dir_all(runtime)?;
        let mut args: Vec<String> =
            ["--daemonize=no", "--exit-idle-time=-1", "--disallow-exit", "-n", "--log-target=stderr"]
                .map(String::from)
                .to_vec();
        args.extend((0..sinks).map(|i| format!("--load=module-null-sink sink_name={}", Pulse::sink(i))));
        args.push("--load=module-native-protocol-unix".into());
        let child = Command::new("pulseaudio")
            .args(&args)
            .env("XDG_RUNTIME_DIR", runtime)
            .env("HOME", runtime)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(runtime.join("pulse.log"))?)
            .spawn()
            .map_err(|e| anyhow::anyhow!("cannot start pulseaudio (is it installed?): {e}"))?;
        let pulse = Pulse { child, runtime: runtime.to_path_buf() };
        let socket = runtime.join("pulse/native");
        let deadline = Instant::now() + Duration::from_secs(10);
        while !socket.exists() {
            if Instant::now() > deadline {
                anyhow::bail!("pulseaudio did not start: {}", pulse.log());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(pulse)
    }

    /// The name of the `i`th sink.
    pub fn sink(i: usize) -> String {
        format!("village{i}")
    }

    /// The environment a client needs to reach this daemon.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        let runtime = self.runtime.display().to_string();
        vec![("XDG_RUNTIME_DIR", runtime.clone()), ("HOME", runtime)]
    }

    /// Records the monitor of the `i`th sink to `file`.
    pub fn record(&self, i: usize, file: &Path) -> anyhow::Result<Recorder> {
        let out = std::fs::File::create(file)?;
        let monitor = format!("{}.monitor", Pulse::sink(i));
        let child = Command::new("parec")
            .args(["-d", &monitor, "--format=s16le", "--rate=48000", "--channels=1", "--latency-msec=5", "--raw"])
            .envs(self.env())
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| anyhow::anyhow!("cannot start parec: {e}"))?;
        Ok(Recorder { child, file: file.to_path_buf(), started: Instant::now() })
    }

    /// The daemon's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.runtime.join("pulse.log")).unwrap_or_default()
    }
}

impl Recorder {
    /// The samples recorded so far (empty before the first arrive).
    pub fn samples(&self) -> Vec<f32> {
        let bytes = std::fs::read(&self.file).unwrap_or_default();
        bytes.chunks_exact(2).map(|s| f32::from(i16::from_le_bytes([s[0], s[1]])) / 32768.0).collect()
    }

    /// Seconds since the recorder started that `samples` (read now) do not
    /// cover: parec's start-up and latency (tens of ms), plus any audio the
    /// capture lost on a starved machine. A failure message states it so
    /// a short capture is not blamed on the agent.
    pub fn shortfall_secs(&self, samples: usize) -> f64 {
        self.started.elapsed().as_secs_f64() - samples as f64 / f64::from(RATE)
    }
}

impl Drop for Pulse {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Writes [`PULSE_ASOUNDRC`] under `xdg` (for `XDG_CONFIG_HOME`).
pub fn write_asoundrc(xdg: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(xdg.join("alsa"))?;
    std::fs::write(xdg.join("alsa/asoundrc"), PULSE_ASOUNDRC)
}

/// The amplitude of the `hz` component of `x` (Goertzel; exact for a tone
/// on a bin of `x.len()` at `rate`).
pub fn tone_amplitude(x: &[f32], hz: f64, rate: u32) -> f64 {
    let w = 2.0 * std::f64::consts::PI * hz / f64::from(rate);
    let coeff = 2.0 * w.cos();
    let (mut s1, mut s2) = (0.0f64, 0.0f64);
    for &v in x {
        let s = f64::from(v) + coeff * s1 - s2;
        s2 = s1;
        s1 = s;
    }
    let power = s1 * s1 + s2 * s2 - coeff * s1 * s2;
    2.0 * power.max(0.0).sqrt() / x.len().max(1) as f64
}
