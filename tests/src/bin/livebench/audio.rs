//! The paced sink and the measurement of what came out of it.
//!
//! A PulseAudio daemon with a null sink `village` (paced in real time) and
//! `parec` on its monitor, as in the agent's start-precision bench; every
//! player under test sends ALSA's default device there. The test signal is
//! a quiet continuous pilot tone (440 Hz, amplitude 0.03) with loud clicks
//! (5 ms of 2 kHz, amplitude 0.7) at known sample positions. Each click's
//! onset in the recording, placed on the wall clock from parec's chunk
//! arrival times, minus the wall time the click was "spoken" is its
//! latency; a stretch where the pilot vanishes is a dropout.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::setup::{RATE, Spread, wall_us};

/// Pilot tone: frequency and amplitude.
const PILOT: (f64, f64) = (440.0, 0.03);
/// Click: frequency, amplitude, length in samples (5 ms).
const CLICK: (f64, f64, usize) = (2_000.0, 0.7, 240);
/// A click's onset: the first sample louder than this (pilot and codec
/// noise stay far below).
const ONSET: f32 = 0.3;
/// Dropout detection: windows of 5 ms whose RMS falls under this share of
/// the pilot's median RMS.
const GAP_WINDOW: usize = 240;
const GAP_SHARE: f64 = 0.3;
/// Samples per microphone chunk: 10 ms.
pub const CHUNK: usize = 480;

/// The test signal: `clicks` clicks `spacing_ms` apart after `lead_ms` of
/// pilot only, then a second of pilot; 16-bit mono at 48 kHz.
#[derive(Debug, Clone)]
pub struct Signal {
    /// The samples.
    pub pcm: Vec<i16>,
    /// Sample index of each click's first sample.
    pub clicks: Vec<usize>,
    /// Click spacing, samples.
    pub spacing: usize,
}

impl Signal {
    /// Builds the signal. Clicks are spread over the 10 ms chunk (and so
    /// over the 20 ms Opus frame) so they sample every position in it.
    pub fn new(clicks: usize, spacing_ms: usize, lead_ms: usize) -> Signal {
        let rate = RATE as usize;
        let spacing = spacing_ms * rate / 1000;
        let lead = lead_ms * rate / 1000;
        let at: Vec<usize> = (0..clicks).map(|j| lead + j * spacing + (j * 173) % (2 * CHUNK)).collect();
        let total = (lead + clicks * spacing + rate).div_ceil(CHUNK) * CHUNK;
        let mut pcm = vec![0.0f64; total];
        for (i, s) in pcm.iter_mut().enumerate() {
            *s = PILOT.1 * (std::f64::consts::TAU * PILOT.0 * i as f64 / f64::from(RATE)).sin();
        }
        for &c in &at {
            for k in 0..CLICK.2 {
                pcm[c + k] += CLICK.1 * (std::f64::consts::TAU * CLICK.0 * k as f64 / f64::from(RATE)).sin();
            }
        }
        let pcm = pcm.into_iter().map(|s| (s * 32767.0).round() as i16).collect();
        Signal { pcm, clicks: at, spacing }
    }

    /// The signal as little-endian bytes in chunks of [`CHUNK`] samples.
    pub fn chunks(&self) -> Vec<Vec<u8>> {
        self.pcm.chunks(CHUNK).map(|c| c.iter().flat_map(|s| s.to_le_bytes()).collect()).collect()
    }

    /// Wall time (µs) each click was spoken, given the wall time each chunk
    /// was handed over: a microphone delivers a chunk when its last sample
    /// has been captured, so sample i of chunk k was spoken
    /// `(end of chunk k − i) / rate` before chunk k left.
    pub fn spoken_us(&self, sent_us: &[i64]) -> Vec<i64> {
        self.clicks
            .iter()
            .map(|&c| {
                let k = c / CHUNK;
                let before = ((k + 1) * CHUNK - c) as i64 * 1_000_000 / i64::from(RATE);
                sent_us[k] - before
            })
            .collect()
    }
}

/// Hands the chunks to `send` in real time, each when its last sample is
/// "captured"; returns the wall time (µs) each chunk was handed over.
/// `send` must not block (a channel, a pipe being read).
pub async fn feed(chunks: &[Vec<u8>], mut send: impl FnMut(Vec<u8>) -> anyhow::Result<()>) -> anyhow::Result<Vec<i64>> {
    let period = Duration::from_micros(CHUNK as u64 * 1_000_000 / u64::from(RATE));
    let start = tokio::time::Instant::now();
    let mut sent = Vec::with_capacity(chunks.len());
    for (k, chunk) in chunks.iter().enumerate() {
        tokio::time::sleep_until(start + period * (k as u32 + 1)).await;
        sent.push(wall_us());
        send(chunk.clone())?;
    }
    Ok(sent)
}

/// What one run measured.
#[derive(Debug, Clone, Default)]
pub struct Measured {
    /// Latency of each click found, ms.
    pub latencies: Vec<f64>,
    /// Clicks not found within their slot.
    pub missing: usize,
    /// Dropouts: stretches where the pilot vanished, and their total length.
    pub gaps: usize,
    /// Total length of the dropouts, ms.
    pub gap_ms: f64,
}

impl Measured {
    /// The latency spread.
    pub fn spread(&self) -> Spread {
        Spread::of(&self.latencies)
    }
}

/// Finds each click in `rec` and measures its latency and the dropouts
/// between the first click's spoken time and the last one's slot end.
pub fn measure(signal: &Signal, spoken_us: &[i64], rec: &Recording) -> Measured {
    let mut m = Measured::default();
    let sample0 = rec.wall_us_at(0);
    let index_of = |us: i64| -> usize { usize::try_from((us - sample0) * i64::from(RATE) / 1_000_000).unwrap_or(0) };
    for &t in spoken_us {
        // The slot: from 2 ms before the click was spoken (the chain's own
        // constant offset, see docs) to the next click.
        let from = index_of(t).saturating_sub(96);
        let to = (from + signal.spacing).min(rec.samples.len());
        match rec.samples.get(from..to).and_then(|s| s.iter().position(|x| x.abs() > ONSET)) {
            Some(i) => m.latencies.push((rec.wall_us_at(from + i) - t) as f64 / 1000.0),
            None => m.missing += 1,
        }
    }
    let (Some(&first), Some(&last)) = (spoken_us.first(), spoken_us.last()) else { return m };
    let from = index_of(first);
    let to = (index_of(last) + signal.spacing).min(rec.samples.len());
    let rms: Vec<f64> = rec
        .samples
        .get(from..to)
        .unwrap_or_default()
        .chunks_exact(GAP_WINDOW)
        .map(|w| (w.iter().map(|s| f64::from(*s) * f64::from(*s)).sum::<f64>() / GAP_WINDOW as f64).sqrt())
        .collect();
    let reference = Spread::of(&rms).p50;
    let mut in_gap = false;
    for r in rms {
        let low = r < GAP_SHARE * reference;
        if low {
            m.gap_ms += GAP_WINDOW as f64 * 1000.0 / f64::from(RATE);
            if !in_gap {
                m.gaps += 1;
            }
        }
        in_gap = low;
    }
    m
}

/// ALSA's default device to PulseAudio (`libasound2-plugins`).
pub const PULSE_ASOUNDRC: &str = "pcm.!default { type pulse }\nctl.!default { type pulse }\n";

/// Writes `$dir/alsa/asoundrc` routing ALSA to PulseAudio; returns `dir`
/// for `XDG_CONFIG_HOME`.
pub fn asoundrc(dir: &Path) -> anyhow::Result<PathBuf> {
    std::fs::create_dir_all(dir.join("alsa"))?;
    std::fs::write(dir.join("alsa/asoundrc"), PULSE_ASOUNDRC)?;
    Ok(dir.to_path_buf())
}

/// A PulseAudio daemon with a real-time paced null sink `village`, its own
/// runtime directory (killed on drop).
pub struct Pulse {
    child: Child,
    /// `XDG_RUNTIME_DIR` for its clients.
    pub runtime: PathBuf,
}

impl Pulse {
    /// Starts the daemon and waits for its socket.
    pub fn start(runtime: &Path) -> anyhow::Result<Pulse> {
        std::fs::create_dir_all(runtime)?;
        let child = Command::new("pulseaudio")
            .args([
                "--daemonize=no",
                "--exit-idle-time=-1",
                "--disallow-exit",
                "-n",
                "--load=module-null-sink sink_name=village",
                "--load=module-native-protocol-unix",
                "--log-target=stderr",
            ])
            .env("XDG_RUNTIME_DIR", runtime)
            .env("HOME", runtime)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(runtime.join("pulse.log"))?)
            .spawn()
            .map_err(|e| anyhow::anyhow!("cannot start pulseaudio (apt-get install pulseaudio): {e}"))?;
        let pulse = Pulse { child, runtime: runtime.to_path_buf() };
        let deadline = Instant::now() + Duration::from_secs(10);
        while !runtime.join("pulse/native").exists() {
            anyhow::ensure!(Instant::now() < deadline, "pulseaudio did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(pulse)
    }
}

impl Drop for Pulse {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `parec` recording `village.monitor` (mono S16LE, 48 kHz), each chunk
/// stamped with the wall clock as it arrives.
pub struct Recorder {
    child: Child,
    reader: Option<std::thread::JoinHandle<Recording>>,
}

/// What a [`Recorder`] captured.
#[derive(Debug, Default)]
pub struct Recording {
    /// The samples.
    pub samples: Vec<f32>,
    /// For every chunk: samples received so far, wall clock (µs) on arrival.
    pub arrivals: Vec<(usize, i64)>,
}

/// Half-width of the calibration window of [`Recording::wall_us_at`], s.
const CALIBRATION_WINDOW_S: usize = 3;

impl Recording {
    /// The wall clock (µs) at which sample `index` was rendered: a chunk
    /// never arrives before its last sample was rendered, so
    /// min(arrival − (received − index) / rate) over the arrivals within
    /// ±3 s is the latest moment consistent with all of them (the agent's
    /// start-precision bench; there the chain read 5 ms early, a constant).
    pub fn wall_us_at(&self, index: usize) -> i64 {
        let window = CALIBRATION_WINDOW_S * RATE as usize;
        let offset =
            |&(received, at): &(usize, i64)| at - (received as i64 - index as i64) * 1_000_000 / i64::from(RATE);
        let local = self.arrivals.iter().filter(|(r, _)| r.abs_diff(index) <= window).map(offset).min();
        local.or_else(|| self.arrivals.iter().map(offset).min()).unwrap_or(0)
    }
}

impl Recorder {
    /// Starts parec on the daemon at `runtime`.
    pub fn start(runtime: &Path) -> anyhow::Result<Recorder> {
        let mut child = Command::new("parec")
            .args([
                "-d",
                "village.monitor",
                "--format=s16le",
                "--rate=48000",
                "--channels=1",
                "--latency-msec=5",
                "--raw",
            ])
            .env("XDG_RUNTIME_DIR", runtime)
            .env("HOME", runtime)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| anyhow::anyhow!("cannot start parec (apt-get install pulseaudio-utils): {e}"))?;
        let mut out = child.stdout.take().ok_or_else(|| anyhow::anyhow!("parec has no stdout"))?;
        let reader = std::thread::spawn(move || {
            use std::io::Read;
            let mut bytes = Vec::new();
            let mut arrivals = Vec::new();
            let mut buf = vec![0u8; 4096];
            while let Ok(n @ 1..) = out.read(&mut buf) {
                let at = wall_us();
                bytes.extend_from_slice(&buf[..n]);
                arrivals.push((bytes.len() / 2, at));
            }
            let samples =
                bytes.chunks_exact(2).map(|b| f32::from(i16::from_le_bytes([b[0], b[1]])) / 32768.0).collect();
            Recording { samples, arrivals }
        });
        Ok(Recorder { child, reader: Some(reader) })
    }

    /// Stops parec and returns the recording.
    pub fn stop(mut self) -> Recording {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.reader.take().and_then(|r| r.join().ok()).unwrap_or_default()
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A recording of `signal` delayed by `delay` samples with the pilot
    /// cut for 50 ms once, stamped as if parec delivered 5 ms chunks in real
    /// time from wall time `t0`.
    fn recording(signal: &Signal, t0: i64, delay: usize) -> Recording {
        let mut samples = vec![0.0f32; delay];
        samples.extend(signal.pcm.iter().map(|s| f32::from(*s) / 32768.0));
        let cut = signal.clicks[3] + 100 * 48;
        samples[cut..cut + 50 * 48].fill(0.0);
        let arrivals = (1..=samples.len() / 240).map(|k| (k * 240, t0 + k as i64 * 5_000)).collect();
        Recording { samples, arrivals }
    }

    #[test]
    fn finds_every_click_at_its_latency_and_the_dropout() {
        let signal = Signal::new(10, 300, 500);
        let t0 = 1_000_000_000;
        // Chunks handed over exactly on time from t0.
        let sent: Vec<i64> = (0..signal.pcm.len() / CHUNK).map(|k| t0 + (k as i64 + 1) * 10_000).collect();
        let spoken = signal.spoken_us(&sent);
        assert_eq!(spoken[0], t0 + signal.clicks[0] as i64 * 1_000_000 / 48_000);
        let m = measure(&signal, &spoken, &recording(&signal, t0, 48 * 80));
        assert_eq!(m.missing, 0);
        assert_eq!(m.latencies.len(), 10);
        for l in &m.latencies {
            assert!((l - 80.0).abs() < 0.2, "{l} ms");
        }
        assert_eq!(m.gaps, 1, "{m:?}");
        assert!((40.0..=55.0).contains(&m.gap_ms), "{m:?}");
    }
}
