//! A microphone or line-in on the controller host (`[live] host_input`),
//! captured through cpal on ALSA.
//!
//! The cpal stream is `!Send`, so it lives on a thread of its own, which
//! opens the device, reports whether that worked, and keeps the stream
//! until the session stops listening or the device fails. The capture
//! callback mixes to mono, resamples to 48 kHz if the device runs at
//! another rate, and hands 20 ms chunks to the same PCM channel the
//! microphone WebSocket feeds, so encoding, pacing and fan-out are shared.
//! One session holds the input at a time.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::http::StatusCode;
use cpal::traits::{DeviceTrait, HostTrait, StreamTrait};
use cpal::{BufferSize, ErrorKind, FromSample, InputCallbackInfo, SizedSample, StreamConfig};
use dalaba_audio::resample::Resampler;
use tokio::sync::{mpsc, oneshot};

use super::source::{MIC_QUEUE, PCM_RATE};
use crate::api::ApiError;

/// Samples per chunk handed to the encoder: 20 ms at 48 kHz.
const CHUNK: usize = (PCM_RATE / 50) as usize;
/// How often the capture thread checks that its session still listens.
const POLL: Duration = Duration::from_millis(50);

/// The host's capture device and the session holding it.
#[derive(Debug, Default)]
pub struct HostInput {
    /// The ALSA device name; empty when no host input is configured.
    device: String,
    /// Who holds the input, as the 409 names them.
    holder: Arc<Mutex<Option<String>>>,
}

/// An open capture: 20 ms chunks of 48 kHz mono, and why the capture
/// ended when the channel closes on its own.
pub(super) struct Capture {
    pub(super) pcm: mpsc::Receiver<Vec<f32>>,
    pub(super) end: CaptureEnd,
}

/// Why a capture stopped delivering, as the session's end reason.
pub(super) struct CaptureEnd {
    ended: Arc<Mutex<Option<String>>>,
    device: String,
}

impl CaptureEnd {
    /// The device's name.
    pub(super) fn device(&self) -> &str {
        &self.device
    }

    /// The capture thread's reason, once the PCM channel has closed.
    pub(super) fn reason(&self) -> String {
        lock(&self.ended).clone().unwrap_or_else(|| format!("the host input {:?} stopped", self.device))
    }
}

/// Holds the input; released when dropped (after the stream is closed).
struct Claim(Arc<Mutex<Option<String>>>);

impl Drop for Claim {
    fn drop(&mut self) {
        *lock(&self.0) = None;
    }
}

impl HostInput {
    /// The input on ALSA device `device` ("default", "plughw:1,0", …);
    /// empty disables host-input sessions.
    pub fn new(device: impl Into<String>) -> HostInput {
        HostInput { device: device.into(), holder: Arc::default() }
    }

    /// Claims the input for `holder` (a session's description), opens the
    /// device on its own thread and returns its PCM once it captures.
    pub(super) async fn open(&self, holder: String) -> Result<Capture, ApiError> {
        if self.device.is_empty() {
            return Err(ApiError::Coded {
                status: StatusCode::UNPROCESSABLE_ENTITY,
                code: "host_input_not_configured",
                message: "no host input configured; set [live] host_input".into(),
            });
        }
        let claim = {
            let mut current = lock(&self.holder);
            if let Some(other) = current.as_ref() {
                return Err(ApiError::Conflict(format!(
                    "the host input {:?} is in use by {other}; stop it first",
                    self.device
                )));
            }
            *current = Some(holder);
            Claim(Arc::clone(&self.holder))
        };
        let (ready_tx, ready) = oneshot::channel();
        let (pcm_tx, pcm) = mpsc::channel(MIC_QUEUE);
        let ended = Arc::new(Mutex::new(None));
        let (device, thread_ended) = (self.device.clone(), Arc::clone(&ended));
        std::thread::Builder::new()
            .name("dalaba-host-input".into())
            .spawn(move || run(&device, claim, pcm_tx, &thread_ended, ready_tx))
            .map_err(|e| ApiError::Internal(format!("cannot start the host input thread: {e}")))?;
        match ready.await {
            Ok(Ok(())) => Ok(Capture { pcm, end: CaptureEnd { ended, device: self.device.clone() } }),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(ApiError::Internal("the host input thread stopped while opening".into())),
        }
    }
}

/// The capture thread: opens, reports, then keeps the stream until the
/// session stops listening or the device fails.
fn run(
    device: &str,
    claim: Claim,
    pcm: mpsc::Sender<Vec<f32>>,
    ended: &Mutex<Option<String>>,
    ready: oneshot::Sender<Result<(), ApiError>>,
) {
    let (errors_tx, errors) = std::sync::mpsc::channel::<cpal::Error>();
    let dropped = Arc::new(AtomicU64::new(0));
    let stream = match open_stream(device, &pcm, &errors_tx, &dropped) {
        Ok(stream) => stream,
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };
    drop(errors_tx);
    // Nobody waiting means the start was abandoned: `pcm` is closed below.
    let _ = ready.send(Ok(()));
    let reason = loop {
        match errors.recv_timeout(POLL) {
            Ok(e) if matches!(e.kind(), ErrorKind::Xrun | ErrorKind::RealtimeDenied | ErrorKind::DeviceChanged) => {
                tracing::warn!(device, error = %e, "host input glitch");
            }
            Ok(e) => break Some(format!("the host input {device:?} failed: {e}")),
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) if pcm.is_closed() => break None,
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                break Some(format!("the host input {device:?} stopped"));
            }
        }
    };
    if let Some(reason) = &reason {
        *lock(ended) = Some(reason.clone());
    }
    // The reason is set before the channel's last senders go.
    drop(stream);
    drop(pcm);
    drop(claim);
    tracing::info!(
        device,
        reason = reason.as_deref().unwrap_or("session over"),
        dropped_chunks = dropped.load(Ordering::Relaxed),
        "host input closed"
    );
}

/// Opens `name` for capture: 48 kHz mono or stereo, float or 16-bit; else
/// the device's own configuration, resampled.
fn open_stream(
    name: &str,
    pcm: &mpsc::Sender<Vec<f32>>,
    errors: &std::sync::mpsc::Sender<cpal::Error>,
    dropped: &Arc<AtomicU64>,
) -> Result<cpal::Stream, ApiError> {
    let unavailable = |message: String| ApiError::Coded {
        status: StatusCode::SERVICE_UNAVAILABLE,
        code: "host_input_unavailable",
        message,
    };
    let host = cpal::default_host();
    let device = if name == "default" {
        host.default_input_device()
    } else {
        host.device_by_id(&cpal::DeviceId::new(cpal::HostId::Alsa, name))
    };
    let Some(device) = device else {
        return Err(ApiError::Coded {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            code: "host_input_unavailable",
            message: format!("there is no ALSA capture device {name:?} (check [live] host_input and the sound card)"),
        });
    };
    let sink = Sink { pcm: pcm.clone(), errors: errors.clone(), dropped: Arc::clone(dropped) };
    let mut first_error = None;
    for (channels, format) in [
        (1, cpal::SampleFormat::F32),
        (1, cpal::SampleFormat::I16),
        (2, cpal::SampleFormat::F32),
        (2, cpal::SampleFormat::I16),
    ] {
        let config = StreamConfig { channels, sample_rate: PCM_RATE, buffer_size: BufferSize::Default };
        match build_format(&device, format, config, sink.clone(), None) {
            Ok(stream) => return start(name, stream),
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    // The device's own rate and channels, converted here.
    let fallback = device.default_input_config().map_err(|e| e.to_string()).and_then(|supported| {
        let config = supported.config();
        let resampler = Resampler::new(config.sample_rate).map_err(|e| e.to_string())?;
        build_format(&device, supported.sample_format(), config, sink, Some(resampler)).map_err(|e| e.to_string())
    });
    match fallback {
        Ok(stream) => start(name, stream),
        Err(e) => {
            let why = first_error.map_or(e, |first| first.to_string());
            Err(unavailable(format!("the host input {name:?} cannot be opened: {why}")))
        }
    }
}

fn start(name: &str, stream: cpal::Stream) -> Result<cpal::Stream, ApiError> {
    stream.play().map_err(|e| ApiError::Coded {
        status: StatusCode::SERVICE_UNAVAILABLE,
        code: "host_input_unavailable",
        message: format!("the host input {name:?} cannot start capturing: {e}"),
    })?;
    tracing::info!(device = name, "host input open");
    Ok(stream)
}

/// Where the capture callback delivers.
#[derive(Clone)]
struct Sink {
    pcm: mpsc::Sender<Vec<f32>>,
    errors: std::sync::mpsc::Sender<cpal::Error>,
    dropped: Arc<AtomicU64>,
}

fn build_format(
    device: &cpal::Device,
    format: cpal::SampleFormat,
    config: StreamConfig,
    sink: Sink,
    resampler: Option<Resampler>,
) -> Result<cpal::Stream, cpal::Error> {
    match format {
        cpal::SampleFormat::F32 => build::<f32>(device, config, sink, resampler),
        cpal::SampleFormat::I16 => build::<i16>(device, config, sink, resampler),
        cpal::SampleFormat::I32 => build::<i32>(device, config, sink, resampler),
        cpal::SampleFormat::U16 => build::<u16>(device, config, sink, resampler),
        _ => build::<f32>(device, config, sink, resampler),
    }
}

/// A stream whose callback turns frames into 20 ms mono chunks at 48 kHz.
fn build<T>(
    device: &cpal::Device,
    config: StreamConfig,
    sink: Sink,
    mut resampler: Option<Resampler>,
) -> Result<cpal::Stream, cpal::Error>
where
    T: SizedSample,
    f32: FromSample<T>,
{
    let channels = usize::from(config.channels).max(1);
    let Sink { pcm, errors, dropped } = sink;
    let mut mono = Vec::new();
    let mut ready: Vec<f32> = Vec::with_capacity(4 * CHUNK);
    let data = move |input: &[T], _: &InputCallbackInfo| {
        mono.clear();
        mono.extend(
            input.chunks(channels).map(|f| f.iter().map(|&s| s.to_sample::<f32>()).sum::<f32>() / f.len() as f32),
        );
        match resampler.as_mut() {
            Some(r) => r.push(&mono, &mut ready),
            None => ready.extend_from_slice(&mono),
        }
        let mut used = 0;
        while ready.len() - used >= CHUNK {
            // Full: the encoder is behind, drop rather than wait in the
            // audio thread. Closed: the capture thread notices and stops.
            if pcm.try_send(ready[used..used + CHUNK].to_vec()).is_err() {
                dropped.fetch_add(1, Ordering::Relaxed);
            }
            used += CHUNK;
        }
        ready.drain(..used);
    };
    let error = move |e: cpal::Error| {
        let _ = errors.send(e);
    };
    device.build_input_stream::<T, _, _>(config, data, error, None)
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Only plain values are written under these locks.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_unconfigured_input_is_a_422_naming_the_setting() {
        let err = HostInput::new("").open("live session X".into()).await.err().expect("refused");
        let ApiError::Coded { status, message, .. } = err else { panic!("{err:?}") };
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(message, "no host input configured; set [live] host_input");
    }

    #[tokio::test]
    async fn a_held_input_is_a_409_naming_the_holder() {
        let input = HostInput::new("plughw:9,0");
        *lock(&input.holder) = Some("live session L1 \"寻人\", started by operator".into());
        let err = input.open("live session L2".into()).await.err().expect("refused");
        let ApiError::Conflict(message) = err else { panic!("{err:?}") };
        assert!(message.contains("plughw:9,0") && message.contains("L1"), "{message}");
    }
}
