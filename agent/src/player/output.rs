//! The real player: one control thread that keeps the output open, a decode
//! thread per item, and the [`Mixer`] inside cpal's output callback (or a
//! paced thread for `output = "null"`).

use std::fs::File;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, Sender, SyncSender};
use std::time::{Duration, Instant};

use cpal::traits::{DeviceTrait, HostTrait, StreamTrait};
use cpal::{BufferSize, FromSample, OutputCallbackInfo, SizedSample, StreamConfig};
use dalaba_audio::{AudioError, StreamDecoder};

use dalaba_protocol::live::LiveFrame;

use super::jitter::JitterConfig;
use super::live::LiveItem;
use super::mixer::{Block, Command, Item, Mixer, RATE};
use super::{LiveRequest, StartRequest};
use crate::clock;
use crate::core::{LiveNews, PlaybackNews};
use crate::shell::{News, NewsSender};

/// Decoded blocks (about 20 ms each for Opus) a decode thread may hold
/// ready ahead of the output: about two seconds (under 1 MB).
const BLOCKS_AHEAD: usize = 100;

/// The null output's pacing step.
const NULL_STEP_FRAMES: usize = 480;

/// How the output is opened and live streams are buffered (`[audio]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputSettings {
    /// "default", an ALSA device name such as "plughw:1,0", or "null".
    pub device: String,
    /// How early the core should hand items over.
    pub lead: Duration,
    /// Frames per ALSA period; the device buffer is two periods.
    pub period_frames: u32,
    /// A live stream's jitter-buffer depths.
    pub jitter: JitterConfig,
}

/// cpal/ALSA output with a pre-roll. Dropping it closes the output.
#[derive(Debug)]
pub struct AudioPlayer {
    control: Sender<Control>,
    lead: Duration,
}

enum Control {
    Start(StartRequest, NewsSender),
    Stop(String),
    StartLive(LiveRequest, NewsSender),
    LiveFrame(LiveFrame, Instant),
    StopLive(String),
}

impl AudioPlayer {
    /// Opens the output on a thread of its own and keeps it open. Never
    /// fails: an output that cannot be opened is logged now, tried again
    /// at each item, and each item it fails is reported as failed.
    pub fn open(settings: OutputSettings) -> AudioPlayer {
        let (control, commands) = mpsc::channel();
        let lead = settings.lead;
        let spawned = std::thread::Builder::new().name("dalaba-player".into()).spawn(move || {
            let mut player = ControlThread::new(settings);
            for command in commands {
                player.handle(command);
            }
        });
        if let Err(e) = spawned {
            // Then every Start fails below: the channel's receiver is gone.
            tracing::error!(error = %e, "cannot start the player thread");
        }
        AudioPlayer { control, lead }
    }

    /// How early the core should hand items over.
    pub fn lead(&self) -> Duration {
        self.lead
    }

    pub(super) fn start(&mut self, request: StartRequest, news: &NewsSender) {
        if let Err(mpsc::SendError(Control::Start(request, news))) =
            self.control.send(Control::Start(request, news.clone()))
        {
            let reason = "the player thread is not running".to_string();
            let failed = PlaybackNews::Failed { entry_id: request.entry_id, part: request.part, reason };
            let _ = news.send(News::Playback(failed));
        }
    }

    pub(super) fn stop(&mut self, entry_id: &str) {
        let _ = self.control.send(Control::Stop(entry_id.to_string()));
    }

    pub(super) fn start_live(&mut self, request: LiveRequest, news: &NewsSender) {
        if let Err(mpsc::SendError(Control::StartLive(request, news))) =
            self.control.send(Control::StartLive(request, news.clone()))
        {
            let reason = "the player thread is not running".to_string();
            let _ = news.send(News::Live(LiveNews::Failed { session_id: request.session_id, reason }));
        }
    }

    pub(super) fn live_frame(&mut self, frame: LiveFrame, arrived: Instant) {
        let _ = self.control.send(Control::LiveFrame(frame, arrived));
    }

    pub(super) fn stop_live(&mut self, session_id: &str) {
        let _ = self.control.send(Control::StopLive(session_id.to_string()));
    }
}

/// The control thread's state.
struct ControlThread {
    settings: OutputSettings,
    output: Option<Output>,
    /// The latest item handed to a decode thread.
    current: Option<InHand>,
}

/// An item the player was given, and the handles to stop it and to read
/// how far it got.
struct InHand {
    entry_id: String,
    part: usize,
    stopped: Arc<AtomicBool>,
    /// Frames the mixer wrote out ([`Item::played`]).
    played: Arc<AtomicU64>,
    news: NewsSender,
}

impl InHand {
    /// Stops the item; the core hears how much of it went out. A buffer
    /// the mixer is filling at this instant may still go out after the
    /// count: at most one output period is heard again on a resumption.
    fn stop(self) {
        self.stopped.store(true, Ordering::Relaxed);
        let frames = self.played.load(Ordering::Relaxed);
        let played_ms = frames.saturating_mul(1000) / u64::from(RATE);
        let news = PlaybackNews::Stopped { entry_id: self.entry_id, part: self.part, played_ms };
        let _ = self.news.send(News::Playback(news));
    }
}

/// An open output and the way to its mixer.
struct Output {
    mixer: Sender<Command>,
    /// Set by the stream's error callback: open again at the next item.
    broken: Arc<AtomicBool>,
    /// Kept alive while open; `None` for the null output.
    _stream: Option<cpal::Stream>,
}

impl ControlThread {
    /// Opens the output at once, so the first item costs nothing either.
    fn new(settings: OutputSettings) -> ControlThread {
        let mut thread = ControlThread { settings, output: None, current: None };
        match thread.ensure_open() {
            Ok(()) => tracing::info!(output = %thread.settings.device, "audio output open"),
            Err(e) => {
                let output = &thread.settings.device;
                tracing::error!(%output, error = %e, "audio output not available; will retry at the next item")
            }
        }
        thread
    }

    fn handle(&mut self, command: Control) {
        match command {
            Control::Start(request, news) => {
                let mixer = match self.ensure_open() {
                    Ok(()) => self.output.as_ref().map(|o| o.mixer.clone()),
                    Err(reason) => {
                        fail(&news, &request, reason);
                        return;
                    }
                };
                let Some(mixer) = mixer else { return };
                let (stopped, played) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicU64::new(0)));
                let in_hand = InHand {
                    entry_id: request.entry_id.clone(),
                    part: request.part,
                    stopped: Arc::clone(&stopped),
                    played: Arc::clone(&played),
                    news: news.clone(),
                };
                if let Some(previous) = self.current.replace(in_hand) {
                    previous.stopped.store(true, Ordering::Relaxed);
                }
                let spawned = std::thread::Builder::new().name("dalaba-decode".into()).spawn({
                    let (request, news) = (request.clone(), news.clone());
                    move || decode(request, news, mixer, stopped, played)
                });
                if let Err(e) = spawned {
                    fail(&news, &request, format!("cannot start a decode thread: {e}"));
                }
            }
            Control::StartLive(request, news) => {
                if let Err(reason) = self.ensure_open() {
                    tracing::error!(session_id = %request.session_id, %reason, "cannot play the live stream");
                    let _ = news.send(News::Live(LiveNews::Failed { session_id: request.session_id, reason }));
                    return;
                }
                let item = LiveItem {
                    amplitude: request.amplitude(),
                    session_id: request.session_id,
                    stream_id: request.stream_id,
                    target: clock::mono_at(request.at_ms),
                    jitter: self.settings.jitter,
                    news,
                };
                self.to_mixer(Command::Live(item));
            }
            Control::LiveFrame(frame, arrived) => self.to_mixer(Command::LiveFrame(frame, arrived)),
            Control::StopLive(session_id) => self.to_mixer(Command::StopLive(session_id)),
            Control::Stop(entry_id) => {
                if let Some(in_hand) = self.current.take_if(|h| h.entry_id == entry_id) {
                    in_hand.stop();
                }
            }
        }
    }

    fn to_mixer(&self, command: Command) {
        if let Some(o) = &self.output {
            let _ = o.mixer.send(command);
        }
    }

    /// Opens the output unless it is open and healthy.
    fn ensure_open(&mut self) -> Result<(), String> {
        if self.output.as_ref().is_some_and(|o| !o.broken.load(Ordering::Relaxed)) {
            return Ok(());
        }
        self.output = None;
        let broken = Arc::new(AtomicBool::new(false));
        let (mixer, stream) = if self.settings.device == "null" {
            (open_null()?, None)
        } else {
            let (mixer, stream) = open_alsa(&self.settings.device, self.settings.period_frames, Arc::clone(&broken))?;
            (mixer, Some(stream))
        };
        self.output = Some(Output { mixer, broken, _stream: stream });
        Ok(())
    }
}

fn fail(news: &NewsSender, request: &StartRequest, reason: String) {
    tracing::error!(entry_id = %request.entry_id, path = %request.path.display(), %reason, "cannot play");
    let failed = PlaybackNews::Failed { entry_id: request.entry_id.clone(), part: request.part, reason };
    let _ = news.send(News::Playback(failed));
}

/// One item's decode thread: opens and decodes the first block, hands the
/// item to the mixer, then keeps [`BLOCKS_AHEAD`] blocks ready until the
/// end, a decode error, or the mixer dropping the item.
fn decode(
    request: StartRequest,
    news: NewsSender,
    mixer: Sender<Command>,
    stopped: Arc<AtomicBool>,
    played: Arc<AtomicU64>,
) {
    let path = request.path.display().to_string();
    let file = match File::open(&request.path) {
        Ok(f) => f,
        Err(e) => return fail(&news, &request, format!("cannot open {path}: {e}")),
    };
    let mut decoder = match StreamDecoder::open(file, None) {
        Ok(d) => d,
        Err(e) => return fail(&news, &request, format!("cannot play {path}: {e}")),
    };
    let amplitude = request.amplitude();
    let scaled = |block: &[f32]| block.iter().map(|s| s * amplitude).collect::<Vec<f32>>();
    let skip = (u128::from(request.offset_ms) * u128::from(RATE) / 1000) as usize;
    let first = match first_block_after(&mut decoder, skip) {
        Ok(Some(block)) => scaled(&block),
        Ok(None) if skip > 0 => {
            // Resumed at (or past) its end: nothing is left to play.
            let finished = PlaybackNews::Finished { entry_id: request.entry_id, part: request.part };
            let _ = news.send(News::Playback(finished));
            return;
        }
        Ok(None) => return fail(&news, &request, format!("{path} holds no audio")),
        Err(e) => return fail(&news, &request, format!("cannot play {path}: {e}")),
    };
    let (tx, rx): (SyncSender<Block>, Receiver<Block>) = mpsc::sync_channel(BLOCKS_AHEAD);
    let _ = tx.send(Ok(first));
    let target = clock::mono_at(request.at_ms);
    let item = Item {
        entry_id: request.entry_id.clone(),
        part: request.part,
        target,
        blocks: rx,
        news: news.clone(),
        stopped: Arc::clone(&stopped),
        played,
    };
    if stopped.load(Ordering::Relaxed) {
        return;
    }
    if mixer.send(Command::Play(item)).is_err() {
        return fail(&news, &request, "the audio output closed".into());
    }
    loop {
        let block = match decoder.next_block() {
            Ok(Some(block)) => Ok(scaled(block)),
            Ok(None) => return,
            Err(e) => Err(format!("decoding {path} failed: {e}")),
        };
        let failed = block.is_err();
        // An error here means the mixer dropped the item (stopped or
        // replaced): stop decoding.
        if tx.send(block).is_err() || failed {
            return;
        }
    }
}

/// The first block after the first `skip` samples, which are decoded and
/// dropped (a preempted item resuming where it stopped; the decoder cannot
/// seek, and decoding is many times faster than real time). `None` when
/// the audio ends first.
fn first_block_after(decoder: &mut StreamDecoder, mut skip: usize) -> Result<Option<Vec<f32>>, AudioError> {
    while let Some(block) = decoder.next_block()? {
        if skip < block.len() {
            return Ok(Some(block[skip..].to_vec()));
        }
        skip -= block.len();
    }
    Ok(None)
}

/// Opens an ALSA device through cpal: 48 kHz, stereo (every channel the
/// same) or mono, 32-bit float or 16-bit, periods of `period` frames (or
/// the device's own when it refuses that).
fn open_alsa(name: &str, period: u32, broken: Arc<AtomicBool>) -> Result<(Sender<Command>, cpal::Stream), String> {
    let host = cpal::default_host();
    let device = if name == "default" {
        host.default_output_device().ok_or_else(|| "ALSA has no default output device".to_string())?
    } else {
        host.device_by_id(&cpal::DeviceId::new(cpal::HostId::Alsa, name))
            .ok_or_else(|| format!("there is no ALSA output device {name:?} (is the sound card connected?)"))?
    };
    let mut first_error = None;
    for (channels, format, buffer) in [
        (2, cpal::SampleFormat::F32, BufferSize::Fixed(period)),
        (2, cpal::SampleFormat::I16, BufferSize::Fixed(period)),
        (1, cpal::SampleFormat::F32, BufferSize::Fixed(period)),
        (1, cpal::SampleFormat::I16, BufferSize::Fixed(period)),
        (2, cpal::SampleFormat::F32, BufferSize::Default),
        (2, cpal::SampleFormat::I16, BufferSize::Default),
    ] {
        let config = StreamConfig { channels, sample_rate: RATE, buffer_size: buffer };
        // Each try has its own mixer: a stream that fails drops its callback.
        let (tx, rx) = mpsc::channel();
        let result = match format {
            cpal::SampleFormat::F32 => build::<f32>(&device, config, Mixer::new(rx), &broken),
            _ => build::<i16>(&device, config, Mixer::new(rx), &broken),
        };
        match result {
            Ok(stream) => {
                stream.play().map_err(|e| format!("ALSA output {name:?} cannot start: {e}"))?;
                tracing::info!(output = name, channels, ?format, ?buffer, "audio output opened");
                return Ok((tx, stream));
            }
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    let why = first_error.map_or_else(|| "no configuration was accepted".to_string(), |e| e.to_string());
    Err(format!("ALSA output {name:?} cannot be opened at 48 kHz: {why}"))
}

/// Builds a stream whose callback runs `mixer` on the output's timeline.
fn build<T>(
    device: &cpal::Device,
    config: StreamConfig,
    mut mixer: Mixer,
    broken: &Arc<AtomicBool>,
) -> Result<cpal::Stream, cpal::Error>
where
    T: SizedSample + FromSample<f32>,
{
    let channels = usize::from(config.channels);
    let mut scratch: Vec<f32> = Vec::new();
    let data = move |out: &mut [T], info: &OutputCallbackInfo| {
        // Playback minus callback instant: how long until this buffer's
        // first frame is heard (ALSA's and any sound server's buffers).
        let ts = info.timestamp();
        let latency = ts.playback.checked_duration_since(ts.callback).unwrap_or_default();
        let first_leaves = clock::now().mono + latency;
        scratch.resize(out.len(), 0.0);
        mixer.fill(&mut scratch, channels, first_leaves);
        for (o, s) in out.iter_mut().zip(&scratch) {
            *o = T::from_sample(*s);
        }
    };
    let broken = Arc::clone(broken);
    let mut xruns = 0u64;
    // An xrun (the callback came too late, a glitch of silence) is one cpal
    // recovers from itself, so the output stays open: reopening it would
    // cost the next item or live session a fraction of a second and throw
    // away what the device still held. They are logged at the 1st, 2nd,
    // 4th, 8th… so a technician sees them add up without a flood. Any
    // other fault marks the output for reopening at the next item; ALSA
    // may report it on every period, so only the first is an error.
    let error = move |e: cpal::Error| {
        if e.kind() == cpal::ErrorKind::Xrun {
            xruns += 1;
            if xruns.is_power_of_two() {
                tracing::warn!(error = %e, xruns, "audio output glitch (it recovers by itself)");
            } else {
                tracing::debug!(error = %e, xruns, "audio output glitch");
            }
        } else if broken.swap(true, Ordering::Relaxed) {
            tracing::debug!(error = %e, "audio output failed again");
        } else {
            tracing::error!(error = %e, "audio output failed");
        }
    };
    device.build_output_stream::<T, _, _>(config, data, error, None)
}

/// `output = "null"`: a thread that runs the mixer in real time and throws
/// the samples away, so timing and news are those of a real output with no
/// latency.
fn open_null() -> Result<Sender<Command>, String> {
    let (tx, rx) = mpsc::channel();
    let mut mixer = Mixer::new(rx);
    std::thread::Builder::new()
        .name("dalaba-null-output".into())
        .spawn(move || {
            let mut buffer = vec![0.0f32; NULL_STEP_FRAMES];
            let step = Duration::from_nanos(NULL_STEP_FRAMES as u64 * 1_000_000_000 / u64::from(RATE));
            let mut next = clock::now().mono;
            while !mixer.is_closed() {
                mixer.fill(&mut buffer, 1, next);
                next += step;
                std::thread::sleep(next.saturating_duration_since(clock::now().mono));
            }
        })
        .map(|_| tx)
        .map_err(|e| format!("cannot start the null output: {e}"))
}

#[cfg(test)]
mod tests {
    use std::io::Cursor;

    use super::*;

    /// A mono 16-bit WAV at 48 kHz whose sample `i` is `i % 30_000`.
    fn ramp_wav(n: u32) -> Vec<u8> {
        let mut wav = Vec::new();
        for chunk in [&b"RIFF"[..], &(36 + 2 * n).to_le_bytes(), b"WAVEfmt ", &16u32.to_le_bytes()] {
            wav.extend_from_slice(chunk);
        }
        for chunk in [&1u16.to_le_bytes()[..], &1u16.to_le_bytes(), &RATE.to_le_bytes(), &(2 * RATE).to_le_bytes()] {
            wav.extend_from_slice(chunk);
        }
        for chunk in [&2u16.to_le_bytes()[..], &16u16.to_le_bytes(), b"data", &(2 * n).to_le_bytes()] {
            wav.extend_from_slice(chunk);
        }
        for i in 0..n {
            wav.extend_from_slice(&((i % 30_000) as i16).to_le_bytes());
        }
        wav
    }

    fn open(n: u32) -> StreamDecoder {
        StreamDecoder::open(Cursor::new(ramp_wav(n)), Some("wav")).expect("a WAV file")
    }

    /// The real path on the paced `null` output: an item stopped while it
    /// plays is reported with the audio that went out, counted by the
    /// mixer, and nothing follows it.
    #[test]
    fn a_stopped_item_is_reported_with_what_went_out() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("ramp.wav");
        std::fs::write(&path, ramp_wav(4 * RATE)).expect("written");
        let settings = OutputSettings {
            device: "null".into(),
            lead: Duration::ZERO,
            period_frames: 256,
            jitter: JitterConfig::default(),
        };
        let mut player = AudioPlayer::open(settings);
        let (news, mut heard) = tokio::sync::mpsc::unbounded_channel();
        let request = StartRequest {
            entry_id: "e".into(),
            part: 1,
            path,
            gain_db: 0.0,
            volume: 100,
            at_ms: clock::now().wall_ms,
            offset_ms: 0,
            duration_ms: 4_000,
        };
        player.start(request, &news);
        let next = |heard: &mut tokio::sync::mpsc::UnboundedReceiver<News>| match heard.blocking_recv() {
            Some(News::Playback(n)) => n,
            _ => panic!("the player went away"),
        };
        assert!(matches!(next(&mut heard), PlaybackNews::Started { part: 1, .. }));
        // Some audio goes out: the null output is paced in real time.
        std::thread::sleep(Duration::from_millis(100));
        player.stop("e");
        let stopped = next(&mut heard);
        let PlaybackNews::Stopped { entry_id, part, played_ms } = stopped else { panic!("{stopped:?}") };
        assert_eq!((entry_id.as_str(), part), ("e", 1));
        assert!((1..4_000).contains(&played_ms), "{played_ms} ms of a 4 s item");
        player.stop("e");
        drop(player);
        drop(news);
        assert!(heard.blocking_recv().is_none(), "nothing after the stop, not even for a second stop");
    }

    /// Regression: the shell dropped `offset_ms`, so a preempted item
    /// resumed from its beginning instead of where it stopped.
    #[test]
    fn a_resumed_item_begins_at_its_offset() {
        let value = |s: f32| (s * 32768.0).round() as u32;
        for skip in [0, 1, 12_000, 24_001] {
            let mut decoder = open(48_000);
            let first = first_block_after(&mut decoder, skip).expect("decodes").expect("audio left");
            assert_eq!(value(first[0]), skip as u32 % 30_000, "skip {skip}");
            let mut left = first.len();
            while let Some(block) = decoder.next_block().expect("decodes") {
                left += block.len();
            }
            assert_eq!(left, 48_000 - skip, "skip {skip}");
        }
        let mut decoder = open(4_800);
        assert!(first_block_after(&mut decoder, 4_800).expect("decodes").is_none(), "nothing left");
    }
}
