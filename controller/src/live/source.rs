//! A session's audio source: prepared before the session starts (so a bad
//! file or a missing espeak-ng is the caller's error, not a silent
//! session), then run by one task that encodes Opus packets, paces them in
//! real time and hands them to [`Live::fan_out`](super::Live::fan_out).
//!
//! Files (a library item, a text spoken by espeak-ng, decoded bytes) are
//! decoded and encoded on the blocking pool, a few packets ahead of the
//! pacing, in 20 ms frames: nobody waits on a recording's latency, and
//! fewer packets halve the fan-out's work. The microphone arrives as 16-bit
//! PCM over its WebSocket, the host input (`host_input`) from cpal's
//! capture callback; both are paced by their sender and encoded as they
//! come, by the same task, in 10 ms frames with the low-delay encoder
//! (2.5 ms lookahead instead of 6.5): a person is speaking, and every
//! millisecond between mouth and loudspeaker counts.

use std::io::Cursor;
use std::time::Duration;

use dalaba_audio::StreamDecoder;
use dalaba_audio::opus::{Encoder, FRAME_SAMPLES, OpusSettings, SHORT_FRAME_SAMPLES};
use tokio::sync::mpsc;
use tokio::time::{Instant, sleep_until};
use tokio_util::sync::CancellationToken;

use super::Source;
use super::host_input::{Capture, HostInput};
use crate::api::{ApiError, AppState};

/// Sample rate of the microphone's PCM and of every stream: 48 kHz mono.
pub const PCM_RATE: u32 = 48_000;
/// Accepted microphone chunk sizes in bytes: 10 to 20 ms of 16-bit mono
/// PCM at 48 kHz, an even number of bytes.
pub const MIC_CHUNK_BYTES: std::ops::RangeInclusive<usize> = 960..=1920;
/// Microphone chunks waiting for the encoder (about a second at 20 ms).
pub(super) const MIC_QUEUE: usize = 50;
/// How long a microphone session waits for its microphone to connect.
const MIC_WAIT: Duration = Duration::from_secs(60);
/// Encoded packets waiting ahead of the pacing.
const PACKETS_AHEAD: usize = 8;
/// One packet's duration.
const FRAME: Duration = Duration::from_millis(20);
/// A file's packets leave in bursts of this many (100 ms of audio): each
/// agent link writes a burst with one TLS write (`link::send_outbound`)
/// instead of one per packet, which is most of a county-wide fan-out's
/// cost. The packets carry their media time as capture time, so agents'
/// jitter buffers see the bursts as arrival spread and stay deep enough.
const BURST: u32 = 5;
/// After a file's last packet, time for it to leave the agents' buffers
/// before the stop is sent.
const TAIL: Duration = Duration::from_millis(1_000);
/// Live stream encoding: speech and alarms, mono.
const OPUS: OpusSettings = OpusSettings { bitrate_bps: 40_000, complexity: 5 };

/// A source ready to run.
pub(super) struct Prepared {
    pub(super) kind: Kind,
    /// Gain towards the county loudness, for the agents.
    pub(super) gain_db: f64,
}

impl std::fmt::Debug for Prepared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Prepared").field("gain_db", &self.gain_db).finish_non_exhaustive()
    }
}

pub(super) enum Kind {
    /// A decoder positioned at the start of the audio.
    File(Box<StreamDecoder>),
    /// PCM from the microphone WebSocket.
    Microphone,
    /// PCM from the controller host's capture device.
    HostInput(Capture),
}

/// Opens the source; errors are for the caller of `start`. A host input
/// is claimed for `holder` (the session, as a 409 names it).
pub(super) async fn prepare(
    st: &AppState,
    source: &Source,
    host_input: &HostInput,
    holder: String,
) -> Result<Prepared, ApiError> {
    match source {
        Source::Microphone => Ok(Prepared { kind: Kind::Microphone, gain_db: 0.0 }),
        Source::HostInput => Ok(Prepared { kind: Kind::HostInput(host_input.open(holder).await?), gain_db: 0.0 }),
        Source::LibraryItem { item_id } => {
            let id = *item_id;
            let item = st
                .db(move |s| s.library_item(id))
                .await?
                .ok_or_else(|| ApiError::NotFound(format!("library item {id} does not exist")))?;
            let path = st
                .library
                .content
                .path(&item.distribution.sha256)
                .ok_or_else(|| ApiError::Internal(format!("library item {id} has a bad distribution hash")))?;
            let decoder = blocking(move || {
                let file = std::fs::File::open(&path)
                    .map_err(|e| ApiError::Internal(format!("cannot open {}: {e}", path.display())))?;
                StreamDecoder::open(file, None)
                    .map_err(|e| ApiError::Internal(format!("library item {id}'s file cannot be decoded: {e}")))
            })
            .await?;
            Ok(Prepared { kind: Kind::File(Box::new(decoder)), gain_db: item.gain_db })
        }
        Source::Text { text } => {
            let temp = st
                .library
                .content
                .temp_file()
                .map_err(|e| ApiError::Internal(format!("cannot create a temporary file: {e}")))?;
            let path = temp.path().to_owned();
            crate::library::tts::speak(&st.library.settings, text, &path).await.map_err(|e| match e {
                crate::library::tts::TtsError::EmptyText | crate::library::tts::TtsError::TooLong { .. } => {
                    ApiError::BadRequest(e.to_string())
                }
                other => ApiError::Coded {
                    status: axum::http::StatusCode::SERVICE_UNAVAILABLE,
                    code: "tts_failed",
                    message: other.to_string(),
                },
            })?;
            let decoder = blocking(move || {
                // The open file outlives its name, which goes with `temp`.
                let file = std::fs::File::open(temp.path())
                    .map_err(|e| ApiError::Internal(format!("cannot open espeak-ng's speech: {e}")))?;
                drop(temp);
                StreamDecoder::open(file, Some("wav"))
                    .map_err(|e| ApiError::Internal(format!("espeak-ng's speech cannot be decoded: {e}")))
            })
            .await?;
            Ok(Prepared { kind: Kind::File(Box::new(decoder)), gain_db: 0.0 })
        }
        Source::Audio { bytes, hint } => {
            if bytes.is_empty() {
                return Err(ApiError::BadRequest("the audio is empty".into()));
            }
            let (bytes, hint) = (bytes.clone(), hint.clone());
            let decoder = blocking(move || {
                StreamDecoder::open(Cursor::new(bytes), hint.as_deref())
                    .map_err(|e| ApiError::BadRequest(format!("the audio cannot be played: {e}")))
            })
            .await?;
            Ok(Prepared { kind: Kind::File(Box::new(decoder)), gain_db: 0.0 })
        }
    }
}

/// How long after the start commands go out their agents are taken to
/// have them (the link's latency, the agent's checks).
pub(super) const COMMAND_MARGIN: Duration = Duration::from_millis(300);

/// Runs the session's source until it ends, `stop` is cancelled, or
/// `max` passes; a source that ends on its own ends the session. A
/// recorded source (a file, spoken text) starts `lead` from now, when the
/// agents' amplifiers are warm; the microphone is sent as it comes (the
/// console tells the operator when to speak).
pub(super) fn spawn(
    st: AppState,
    session_id: String,
    prepared: Prepared,
    pcm: Option<mpsc::Receiver<Vec<f32>>>,
    stop: CancellationToken,
    max: Duration,
    lead: Duration,
) {
    tokio::spawn(async move {
        let (tx, rx) = mpsc::channel(PACKETS_AHEAD);
        let paced = match (prepared.kind, pcm) {
            (Kind::File(decoder), _) => {
                tokio::task::spawn_blocking(move || encode_file(*decoder, &tx));
                true
            }
            (Kind::Microphone, Some(pcm)) => {
                let wait = format!("no microphone connected within {} s", MIC_WAIT.as_secs());
                tokio::spawn(encode_pcm(pcm, tx, wait, || "the microphone disconnected".into()));
                false
            }
            (Kind::HostInput(capture), _) => {
                let Capture { pcm, end } = capture;
                let wait =
                    format!("the host input {:?} delivered nothing within {} s", end.device(), MIC_WAIT.as_secs());
                tokio::spawn(encode_pcm(pcm, tx, wait, move || end.reason()));
                false
            }
            (Kind::Microphone, None) => {
                let _ = tx.send(Err("no microphone channel".into())).await;
                false
            }
        };
        let reason = pace(&st, &session_id, rx, paced.then_some(lead), &stop, max).await;
        if let Some(reason) = reason {
            st.live.finish(&st, &session_id, &reason).await;
        }
    });
}

/// Packets from a producer: `Err` ends the source with its reason.
type Packets = mpsc::Receiver<Result<Vec<u8>, String>>;

/// Sends packets in real time from `lead` on (file sources) or as they
/// come (the microphone, `lead` none); returns why the source ended, or
/// `None` when stopped.
async fn pace(
    st: &AppState,
    session_id: &str,
    mut rx: Packets,
    lead: Option<Duration>,
    stop: &CancellationToken,
    max: Duration,
) -> Option<String> {
    let paced = lead.is_some();
    let lead = lead.unwrap_or_default();
    let start = Instant::now() + lead;
    let start_us = st.clock.now_ms().saturating_add(lead.as_millis() as i64).saturating_mul(1000);
    let deadline = Instant::now() + max;
    let mut n: u32 = 0;
    let burst_len = if paced { BURST as usize } else { 1 };
    let ended = loop {
        let mut burst = Vec::with_capacity(burst_len);
        let mut ended = None;
        while burst.len() < burst_len {
            let next = tokio::select! {
                _ = stop.cancelled() => return None,
                _ = sleep_until(deadline) => return Some("max duration".into()),
                next = rx.recv() => next,
            };
            match next {
                Some(Ok(packet)) => burst.push(packet),
                Some(Err(reason)) => ended = Some(reason),
                None => ended = Some("the source ended".into()),
            }
            if ended.is_some() {
                break;
            }
        }
        if !burst.is_empty() {
            if paced {
                tokio::select! {
                    _ = stop.cancelled() => return None,
                    _ = sleep_until(deadline) => return Some("max duration".into()),
                    _ = sleep_until(start + FRAME * n) => {}
                }
            }
            let now_us = st.clock.now_ms().saturating_mul(1000);
            let frames: Vec<(Vec<u8>, i64)> = (n..)
                .zip(burst)
                .map(|(k, packet)| {
                    let media_us = start_us.saturating_add(i64::from(k) * FRAME.as_micros() as i64);
                    (packet, if paced { media_us } else { now_us })
                })
                .collect();
            n = n.wrapping_add(frames.len() as u32);
            if !st.live.fan_out(st, session_id, frames) {
                return None;
            }
        }
        if let Some(reason) = ended {
            break reason;
        }
    };
    if paced {
        // Let the last packets play before the stop reaches the agents.
        tokio::select! {
            _ = stop.cancelled() => return None,
            _ = sleep_until((start + FRAME * n + TAIL).min(deadline)) => {}
        }
    }
    Some(ended)
}

/// Decodes and encodes a file into packets; runs on the blocking pool.
fn encode_file(mut decoder: StreamDecoder, tx: &mpsc::Sender<Result<Vec<u8>, String>>) {
    let mut encoder = match Encoder::new(&OPUS) {
        Ok(e) => e,
        Err(e) => {
            let _ = tx.blocking_send(Err(format!("cannot start the Opus encoder: {e}")));
            return;
        }
    };
    let mut frame = Vec::with_capacity(FRAME_SAMPLES);
    loop {
        let block = match decoder.next_block() {
            Ok(Some(block)) => block,
            Ok(None) => break,
            Err(e) => {
                let _ = tx.blocking_send(Err(format!("the audio stopped decoding: {e}")));
                return;
            }
        };
        for &sample in block {
            frame.push(sample);
            if frame.len() == FRAME_SAMPLES && !send_frame(&mut encoder, &mut frame, |p| tx.blocking_send(p).is_ok()) {
                return;
            }
        }
    }
    if !frame.is_empty() {
        frame.resize(FRAME_SAMPLES, 0.0);
        if !send_frame(&mut encoder, &mut frame, |p| tx.blocking_send(p).is_ok()) {
            return;
        }
    }
    let _ = tx.blocking_send(Err("played out".into()));
}

/// Encodes PCM (the microphone's, the host input's) as it arrives; `wait`
/// is the reason when nothing comes at first, `gone` says why the channel
/// closed.
async fn encode_pcm(
    mut pcm: mpsc::Receiver<Vec<f32>>,
    tx: mpsc::Sender<Result<Vec<u8>, String>>,
    wait: String,
    gone: impl FnOnce() -> String,
) {
    let mut encoder = match Encoder::low_delay(&OPUS) {
        Ok(e) => e,
        Err(e) => {
            let _ = tx.send(Err(format!("cannot start the Opus encoder: {e}"))).await;
            return;
        }
    };
    let first = match tokio::time::timeout(MIC_WAIT, pcm.recv()).await {
        Ok(Some(chunk)) => chunk,
        Ok(None) => {
            let _ = tx.send(Err(gone())).await;
            return;
        }
        Err(_) => {
            let _ = tx.send(Err(wait)).await;
            return;
        }
    };
    let mut frame = Vec::with_capacity(SHORT_FRAME_SAMPLES);
    let mut chunk = Some(first);
    while let Some(samples) = chunk {
        for sample in samples {
            frame.push(sample);
            if frame.len() == SHORT_FRAME_SAMPLES {
                let mut packet = None;
                if !send_frame(&mut encoder, &mut frame, |p| {
                    packet = Some(p);
                    true
                }) {
                    return;
                }
                if let Some(p) = packet
                    && tx.send(p).await.is_err()
                {
                    return;
                }
            }
        }
        chunk = pcm.recv().await;
    }
    let _ = tx.send(Err(gone())).await;
}

/// Encodes one full frame and hands the packet (or the error) to `send`;
/// false when the source must stop.
fn send_frame(
    encoder: &mut Encoder,
    frame: &mut Vec<f32>,
    mut send: impl FnMut(Result<Vec<u8>, String>) -> bool,
) -> bool {
    let packet = encoder.encode_frame(frame);
    frame.clear();
    match packet {
        Ok(p) => send(Ok(p)),
        Err(e) => {
            send(Err(format!("the Opus encoder failed: {e}")));
            false
        }
    }
}

/// Converts one microphone chunk (16-bit little-endian mono PCM) to
/// samples; `None` when its size is not 10–20 ms.
pub fn pcm_chunk(bytes: &[u8]) -> Option<Vec<f32>> {
    if !MIC_CHUNK_BYTES.contains(&bytes.len()) || !bytes.len().is_multiple_of(2) {
        return None;
    }
    Some(bytes.chunks_exact(2).map(|b| f32::from(i16::from_le_bytes([b[0], b[1]])) / 32768.0).collect())
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T, ApiError> + Send + 'static) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f).await.map_err(|e| ApiError::Internal(format!("audio task failed: {e}")))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn microphone_chunks_are_10_to_20_ms_of_16_bit_pcm() {
        assert_eq!(pcm_chunk(&[0; 958]), None);
        assert_eq!(pcm_chunk(&[0; 1922]), None);
        assert_eq!(pcm_chunk(&[0; 961]), None);
        let mut bytes = vec![0u8; 960];
        bytes[..2].copy_from_slice(&i16::MIN.to_le_bytes());
        bytes[2..4].copy_from_slice(&16384i16.to_le_bytes());
        let samples = pcm_chunk(&bytes).expect("10 ms");
        assert_eq!(samples.len(), 480);
        assert_eq!((samples[0], samples[1]), (-1.0, 0.5));
        assert_eq!(pcm_chunk(&[0; 1920]).map(|s| s.len()), Some(960));
    }
}
