// The microphone's AudioWorklet processor (loaded by mic.js with
// audioWorklet.addModule, never imported): mixes the input to mono,
// resamples it from the context's rate to 48 kHz by linear interpolation,
// and posts 10 ms chunks of 16-bit little-endian PCM (480 samples, 960
// bytes) with their peak and RMS level to the page, which sends them on
// the microphone WebSocket. Runs on the audio thread: no allocation per
// render quantum beyond the chunk handed over.
const OUT_RATE = 48000;
// 10 ms at 48 kHz: one chunk fills one of the controller's 10 ms Opus
// frames, so no sample waits for the next chunk.
const CHUNK = 480;

class MicChunker extends AudioWorkletProcessor {
  constructor() {
    super();
    // `sampleRate` is the context's rate, a global of the worklet scope.
    this.step = sampleRate / OUT_RATE; // input samples per output sample
    // The next output sample's position in the current quantum's input;
    // -1 is the previous quantum's last sample (`prev`), so interpolation
    // runs across quantum boundaries without a click.
    this.pos = 0;
    this.prev = 0;
    this.mono = new Float32Array(128);
    this.chunk = new Int16Array(CHUNK);
    this.fill = 0;
    this.peak = 0;
    this.sumSq = 0;
    this.stopped = false;
    this.port.onmessage = (ev) => {
      if (ev.data === 'stop') this.stopped = true;
    };
  }

  process(inputs) {
    if (this.stopped) return false;
    const input = inputs[0];
    if (!input || input.length === 0 || input[0].length === 0) return true;
    const n = input[0].length;
    if (this.mono.length !== n) this.mono = new Float32Array(n);
    const mono = this.mono;
    for (let i = 0; i < n; i++) {
      let s = 0;
      for (let c = 0; c < input.length; c++) s += input[c][i];
      mono[i] = s / input.length;
    }
    const x = (i) => (i < 0 ? this.prev : mono[i]);
    let pos = this.pos;
    while (pos <= n - 1) {
      const i = Math.floor(pos);
      const frac = pos - i;
      this.push(frac > 0 ? x(i) + (x(i + 1) - x(i)) * frac : x(i));
      pos += this.step;
    }
    this.pos = pos - n;
    this.prev = mono[n - 1];
    return true;
  }

  push(v) {
    const s = Math.max(-1, Math.min(1, v));
    const abs = Math.abs(s);
    if (abs > this.peak) this.peak = abs;
    this.sumSq += s * s;
    this.chunk[this.fill++] = s < 0 ? Math.round(s * 32768) : Math.round(s * 32767);
    if (this.fill === CHUNK) {
      const pcm = this.chunk.buffer;
      this.port.postMessage({ pcm, peak: this.peak, rms: Math.sqrt(this.sumSq / CHUNK) }, [pcm]);
      this.chunk = new Int16Array(CHUNK);
      this.fill = 0;
      this.peak = 0;
      this.sumSq = 0;
    }
  }
}

registerProcessor('dalaba-mic', MicChunker);
