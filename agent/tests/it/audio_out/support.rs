//! A real agent process with a prepared state directory, and the ALSA and
//! PulseAudio set-ups that capture what it plays. Shared by the audio tests
//! and the start-precision bench (`examples/start_precision.rs`).

#![allow(dead_code)] // each user takes what it needs

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use dalaba_agent::core::PlayLog;
use dalaba_agent::identity::Identity;
use dalaba_audio::opus::{OggOpusEncoder, OpusSettings};
use dalaba_protocol::enrol::{SignatureAlgorithm, SigningKeyInfo};
use dalaba_protocol::state::{ContentInfo, DesiredState, PlanEntry, PlannedPlay, PlaybackSettings, Priority};
use sha2::{Digest, Sha256};

/// Sample rate of every capture.
pub const RATE: u32 = 48_000;

/// Wall clock now, Unix ms (test harness, not the agent).
pub fn wall_ms() -> i64 {
    #[allow(clippy::disallowed_methods)] // the harness measures the agent against the wall clock
    let now = SystemTime::now();
    now.duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// Wall clock now in microseconds.
pub fn wall_us() -> i64 {
    #[allow(clippy::disallowed_methods)] // the harness measures the agent against the wall clock
    let now = SystemTime::now();
    now.duration_since(UNIX_EPOCH).map(|d| d.as_micros() as i64).unwrap_or(0)
}

/// A piece of content: Ogg Opus bytes and its hash.
pub struct Content {
    pub bytes: Vec<u8>,
    pub sha256: String,
    pub duration_ms: u64,
}

impl Content {
    /// Mono 48 kHz samples as Ogg Opus, as the controller distributes.
    pub fn opus(samples: &[f32]) -> Content {
        let mut encoder = OggOpusEncoder::new(Vec::new(), &OpusSettings::default(), RATE).expect("encoder");
        encoder.push(samples).expect("encode");
        let bytes = encoder.finish().expect("finish");
        Content::raw(bytes, (samples.len() as u64 * 1000).div_ceil(u64::from(RATE)))
    }

    /// Any bytes (a corrupt file, say) claimed to last `duration_ms`.
    pub fn raw(bytes: Vec<u8>, duration_ms: u64) -> Content {
        let sha256 = hex::encode(Sha256::digest(&bytes));
        Content { bytes, sha256, duration_ms }
    }
}

/// One planned item.
pub struct Item<'a> {
    pub id: String,
    pub start_ms: i64,
    pub content: &'a Content,
    pub volume: u8,
}

/// A state directory as enrolment and a synced plan leave it: credentials
/// for a controller that is not listening, the desired state, the cache.
pub fn prepare_state(dir: &Path, items: &[Item<'_>], gain_db: f64, cache: &[&Content]) {
    let closed_port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    let identity = Identity {
        controller_url: format!("https://127.0.0.1:{closed_port}"),
        agent_id: "ag-audio-test".into(),
        secret: "s".repeat(43),
        village_id: 1,
        village_name: "Test village".into(),
        controller_cert_sha256: "ab".repeat(32),
        signing_key: SigningKeyInfo {
            algorithm: SignatureAlgorithm::Ed25519,
            key_id: "k1".into(),
            public_key: "cd".repeat(32),
        },
    };
    identity.save(dir).expect("save identity");
    let mut content: Vec<ContentInfo> = Vec::new();
    for item in items {
        if content.iter().all(|c| c.sha256 != item.content.sha256) {
            content.push(ContentInfo {
                sha256: item.content.sha256.clone(),
                size_bytes: item.content.bytes.len() as u64,
                duration_ms: item.content.duration_ms,
                gain_db,
                title: "test tone".into(),
            });
        }
    }
    let first = items.first().map_or(0, |i| i.start_ms);
    let desired = DesiredState {
        version: 1,
        generated_at_ms: wall_ms(),
        from_ms: first - 60_000,
        to_ms: first + 3_600_000,
        entries: items
            .iter()
            .enumerate()
            .map(|(n, i)| PlanEntry {
                id: i.id.clone(),
                schedule_id: n as i64 + 1,
                title: format!("item {n}"),
                nominal_start_ms: i.start_ms,
                start_ms: i.start_ms,
                plays: vec![PlannedPlay {
                    sha256: i.content.sha256.clone(),
                    start_ms: i.start_ms,
                    duration_ms: i.content.duration_ms,
                }],
                volume: i.volume,
                priority: Priority::Scheduled,
            })
            .collect(),
        content,
        playback: PlaybackSettings::default(),
    };
    std::fs::create_dir_all(dir.join("playback")).expect("mkdir");
    std::fs::write(dir.join("playback/desired.json"), serde_json::to_vec(&desired).expect("json")).expect("write");
    std::fs::create_dir_all(dir.join("cache")).expect("mkdir");
    for c in cache {
        std::fs::write(dir.join("cache").join(&c.sha256), &c.bytes).expect("write content");
    }
}

/// `dalaba-agent run` as a child process; killed on drop.
pub struct Agent {
    pub child: Child,
    pub log: PathBuf,
    pub state: PathBuf,
}

impl Agent {
    /// Starts the agent binary on `state` with `[audio] output = output`
    /// and the environment `env` (ALSA configuration).
    pub fn spawn(bin: &Path, work: &Path, state: &Path, output: &str, env: &[(&str, &Path)]) -> Agent {
        let config = work.join("agent.toml");
        let text =
            dalaba_agent::config::DEFAULT_CONFIG.replace("output = \"default\"", &format!("output = {output:?}"));
        std::fs::write(&config, text).expect("write config");
        let log = work.join("agent.log");
        let mut cmd = Command::new(bin);
        cmd.arg("--config").arg(&config).arg("--state-dir").arg(state).arg("run");
        cmd.env("RUST_LOG", "info").stdin(Stdio::null()).stdout(Stdio::null());
        cmd.stderr(std::fs::File::create(&log).expect("log file"));
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().expect("spawn dalaba-agent");
        Agent { child, log, state: state.to_path_buf() }
    }

    /// The persisted play log, once it holds an event for every id in
    /// `ids`, waiting up to `within`.
    pub fn wait_logged(&mut self, ids: &[&str], within: Duration) -> PlayLog {
        let deadline = Instant::now() + within;
        loop {
            let log: PlayLog = std::fs::read(self.state.join("playback/play-log.json"))
                .ok()
                .and_then(|b| serde_json::from_slice(&b).ok())
                .unwrap_or_default();
            if ids.iter().all(|id| log.logged.contains_key(*id)) {
                return log;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("the agent exited ({status}); its log:\n{}", self.log_text());
            }
            assert!(Instant::now() < deadline, "no play event for {ids:?} in time; agent log:\n{}", self.log_text());
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Still running?
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Writes `$dir/alsa/asoundrc` and returns `dir` for `XDG_CONFIG_HOME`.
pub fn asoundrc(dir: &Path, text: &str) -> PathBuf {
    std::fs::create_dir_all(dir.join("alsa")).expect("mkdir");
    std::fs::File::create(dir.join("alsa/asoundrc")).and_then(|mut f| f.write_all(text.as_bytes())).expect("asoundrc");
    dir.to_path_buf()
}

/// ALSA's default device as a `file` plugin over `null`, behind a `plug`
/// fixing the format: the file gets 16-bit little-endian stereo at 48 kHz,
/// bit-exact, whatever cpal opened.
pub const FILE_PLUGIN_ASOUNDRC: &str = r#"
pcm.!default {
    type plug
    slave { pcm "dalaba_tap"; format S16_LE; rate 48000; channels 2 }
}
pcm.dalaba_tap {
    type file
    slave.pcm "null"
    file { @func getenv vars [ ALSA_TEST_PCM_FILE ] default "/tmp/dalaba-alsa.raw" }
    format "raw"
}
"#;

/// ALSA's default device to PulseAudio (`libasound2-plugins`).
pub const PULSE_ASOUNDRC: &str = "pcm.!default { type pulse }\nctl.!default { type pulse }\n";

/// Interleaved S16LE frames → one channel as f32.
pub fn s16_channel(bytes: &[u8], channels: usize, channel: usize) -> Vec<f32> {
    bytes
        .chunks_exact(2 * channels)
        .map(|frame| f32::from(i16::from_le_bytes([frame[2 * channel], frame[2 * channel + 1]])) / 32768.0)
        .collect()
}

/// A PulseAudio daemon with a real-time paced null sink `village`, its own
/// runtime directory, run as a child (killed on drop).
pub struct Pulse {
    child: Child,
    pub runtime: PathBuf,
}

impl Pulse {
    /// `None` when pulseaudio is not installed.
    pub fn start(runtime: &Path) -> Option<Pulse> {
        std::fs::create_dir_all(runtime).expect("mkdir");
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
            .stderr(std::fs::File::create(runtime.join("pulse.log")).expect("log"))
            .spawn()
            .ok()?;
        let pulse = Pulse { child, runtime: runtime.to_path_buf() };
        let socket = runtime.join("pulse/native");
        let deadline = Instant::now() + Duration::from_secs(10);
        while !socket.exists() {
            assert!(Instant::now() < deadline, "pulseaudio did not start: {}", pulse.log());
            std::thread::sleep(Duration::from_millis(20));
        }
        Some(pulse)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.runtime.join("pulse.log")).unwrap_or_default()
    }
}

impl Drop for Pulse {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `parec` recording `village.monitor` (mono S16LE at 48 kHz), its output
/// read on a thread that stamps every chunk with the wall clock as it
/// arrives.
pub struct Recorder {
    child: Child,
    reader: Option<std::thread::JoinHandle<Recording>>,
}

/// What a [`Recorder`] captured.
pub struct Recording {
    pub samples: Vec<f32>,
    /// For every chunk parec delivered: the samples received so far, and
    /// the wall clock (µs) when the chunk arrived.
    pub arrivals: Vec<(usize, i64)>,
}

impl Recording {
    /// The wall clock (µs) at which sample `index` was rendered, from the
    /// arrival stamps of the chunks that hold it or follow it (within
    /// `CALIBRATION_WINDOW_S` seconds): a chunk never arrives before its
    /// last sample was rendered, so min(arrival − (received − index) /
    /// rate) is the latest moment consistent with every arrival. What
    /// remains is the monitor path's constant delay (the chunk period,
    /// 5 ms with `--latency-msec=5`). Local windows follow the sink's clock
    /// where it drifts from the wall clock (tens of ppm). Only later chunks
    /// count: were samples lost before `index` (parec overrun on a loaded
    /// machine), an earlier chunk would place it as much too early; lost
    /// after it, a later chunk only places it later, which the minimum
    /// ignores.
    pub fn wall_us_at(&self, index: usize) -> i64 {
        let window = CALIBRATION_WINDOW_S * RATE as usize;
        let near = |&&(received, _): &&(usize, i64)| received >= index && received - index <= window;
        let offset =
            |&(received, at): &(usize, i64)| at - (received as i64 - index as i64) * 1_000_000 / i64::from(RATE);
        let local = self.arrivals.iter().filter(near).map(offset).min();
        local.or_else(|| self.arrivals.iter().map(offset).min()).unwrap_or(0)
    }
}

/// Width of the calibration window of [`Recording::wall_us_at`].
pub const CALIBRATION_WINDOW_S: usize = 3;

impl Recorder {
    pub fn start(runtime: &Path) -> Recorder {
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
            .expect("spawn parec");
        let mut out = child.stdout.take().expect("piped");
        let reader = std::thread::spawn(move || {
            use std::io::Read;
            let mut bytes = Vec::new();
            let mut arrivals = Vec::new();
            let mut buf = vec![0u8; 4096];
            loop {
                match out.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        let at = wall_us();
                        bytes.extend_from_slice(&buf[..n]);
                        arrivals.push((bytes.len() / 2, at));
                    }
                }
            }
            Recording { samples: s16_channel(&bytes, 1, 0), arrivals }
        });
        Recorder { child, reader: Some(reader) }
    }

    /// Stops parec and returns the recording.
    pub fn stop(mut self) -> Recording {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.reader.take().expect("once").join().expect("reader thread")
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Index of the first sample at or after `from` whose magnitude exceeds
/// `threshold`.
pub fn onset(samples: &[f32], from: usize, threshold: f32) -> Option<usize> {
    samples.get(from..)?.iter().position(|s| s.abs() > threshold).map(|i| i + from)
}

/// Is `tool` installed (does `tool --version` run)?
pub fn has_tool(tool: &str) -> bool {
    Command::new(tool).arg("--version").stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok()
}

/// The calibration on made-up arrivals: a chunk of 240 samples every 5 ms,
/// each arriving 2 ms after its last sample was rendered, and a second of
/// samples lost (a parec overrun) half a second before the sample asked
/// about. Earlier chunks would place it a second early; it is placed within
/// the arrival delay.
#[test]
fn samples_lost_before_a_sample_do_not_pull_it_early() {
    let chunk = 240usize;
    let (mut arrivals, mut received, mut rendered_us) = (Vec::new(), 0usize, 0i64);
    for n in 0..1_000 {
        if n == 300 {
            rendered_us += 1_000_000; // a second rendered, never received
        }
        received += chunk;
        rendered_us += 5_000;
        arrivals.push((received, rendered_us + 2_000));
    }
    let recording = Recording { samples: vec![0.0; received], arrivals };
    // Sample 400 chunks in: rendered at 400 × 5 ms plus the lost second.
    let index = 400 * chunk - 1;
    let truth = 400 * 5_000 + 1_000_000;
    let placed = recording.wall_us_at(index);
    assert!((placed - truth).abs() <= 2_100, "placed {} ms from the truth", (placed - truth) as f64 / 1_000.0);
}
