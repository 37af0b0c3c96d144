// The operator's microphone for a live session: getUserMedia, an
// AudioWorklet (mic-worklet.js) that hands over 10 ms chunks of 48 kHz
// mono 16-bit PCM with their level, and the session's microphone
// WebSocket they are sent on. The send is bounded: when the socket has
// more than MAX_BUFFERED bytes queued (a slow uplink), chunks are dropped
// and counted rather than piling up into seconds of delay.
import { session } from './session.js';

const WORKLET_URL = '/assets/mic-worklet.js';
const RATE = 48000;
// About 300 ms of audio waiting in the socket.
const MAX_BUFFERED = 15 * 1920;

export class MicError extends Error {
  constructor(kind, detail) {
    super(detail || kind);
    this.kind = kind; // unsupported | denied | missing | failed
  }
}

// Opens the microphone and starts the worklet; `onLevel(peak, rms)` hears
// every chunk's level (linear, 0–1). Call it from a click so the audio
// context may start. Throws MicError.
export async function openMicrophone(onLevel) {
  const md = navigator.mediaDevices;
  const Ctx = window.AudioContext || window.webkitAudioContext;
  if (!md || !md.getUserMedia || !Ctx || typeof AudioWorkletNode === 'undefined') {
    throw new MicError('unsupported');
  }
  let stream;
  try {
    // The loudspeakers want the voice as spoken: the browser's call
    // processing (echo cancelling, noise suppression, automatic gain)
    // would pump the level and eat steady sounds such as a siren.
    stream = await md.getUserMedia({
      audio: { channelCount: 1, echoCancellation: false, noiseSuppression: false, autoGainControl: false },
      video: false,
    });
  } catch (e) {
    const name = e && e.name;
    if (name === 'NotAllowedError' || name === 'SecurityError') throw new MicError('denied', String(e.message || name));
    if (name === 'NotFoundError' || name === 'OverconstrainedError') throw new MicError('missing', String(e.message || name));
    throw new MicError('failed', String((e && e.message) || e));
  }
  let ctx;
  try {
    // 48 kHz when the browser allows it, so the worklet only copies;
    // otherwise it resamples.
    try {
      ctx = new Ctx({ sampleRate: RATE, latencyHint: 'interactive' });
    } catch (_) {
      ctx = new Ctx({ latencyHint: 'interactive' });
    }
    await ctx.audioWorklet.addModule(WORKLET_URL);
    if (ctx.state !== 'running') await ctx.resume();
  } catch (e) {
    for (const track of stream.getTracks()) track.stop();
    if (ctx) ctx.close().catch(() => {});
    throw new MicError('failed', String((e && e.message) || e));
  }
  return new Microphone(stream, ctx, onLevel);
}

// An open microphone; `connect(url)` starts sending, `close()` ends it all.
class Microphone {
  constructor(stream, ctx, onLevel) {
    this.stream = stream;
    this.ctx = ctx;
    this.ws = null;
    this.sent = 0;
    this.dropped = 0;
    this.closed = false;
    this.onClose = null;
    this.source = ctx.createMediaStreamSource(stream);
    this.node = new AudioWorkletNode(ctx, 'dalaba-mic', { numberOfInputs: 1, numberOfOutputs: 1, outputChannelCount: [1] });
    // The worklet runs only while the graph reaches the destination; a
    // muted gain keeps the operator from hearing themselves.
    this.mute = ctx.createGain();
    this.mute.gain.value = 0;
    this.source.connect(this.node);
    this.node.connect(this.mute);
    this.mute.connect(ctx.destination);
    this.node.port.onmessage = (ev) => {
      const m = ev.data;
      if (!m || !m.pcm) return;
      if (onLevel) onLevel(m.peak, m.rms);
      this.send(m.pcm);
    };
  }

  // Sends the chunks to the session's microphone WebSocket at `path`;
  // `onClose(code, reason)` hears when it closes.
  connect(path, onClose) {
    const url = new URL(path, location.href);
    url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
    // A WebSocket cannot carry headers: the CSRF token goes in the query.
    if (session.csrf) url.searchParams.set('csrf', session.csrf);
    const ws = new WebSocket(url.href);
    ws.binaryType = 'arraybuffer';
    this.onClose = onClose;
    ws.addEventListener('close', (ev) => {
      if (this.ws !== ws) return;
      this.ws = null;
      if (!this.closed && this.onClose) this.onClose(ev.code, ev.reason);
    });
    this.ws = ws;
  }

  send(pcm) {
    const ws = this.ws;
    if (!ws || ws.readyState !== WebSocket.OPEN) return;
    if (ws.bufferedAmount > MAX_BUFFERED) {
      this.dropped += 1;
      return;
    }
    ws.send(pcm);
    this.sent += 1;
  }

  // Stops the microphone and closes the socket (the controller ends a
  // microphone session when its socket closes).
  close() {
    if (this.closed) return;
    this.closed = true;
    this.node.port.postMessage('stop');
    this.node.port.onmessage = null;
    try {
      this.source.disconnect();
      this.node.disconnect();
      this.mute.disconnect();
    } catch (_) {
      /* already disconnected */
    }
    for (const track of this.stream.getTracks()) track.stop();
    this.ctx.close().catch(() => {});
    if (this.ws) {
      const ws = this.ws;
      this.ws = null;
      ws.close(1000, 'operator stopped');
    }
  }
}
