//! Integration tests of the agent, in one binary to keep link time down.
//!
//! # Layout
//! - [`sim`]: a deterministic network simulation of agent cores, a fake
//!   controller and lossy links, on a virtual clock.
//! - [`link`]: the agent link under that simulation: welcome, heartbeats,
//!   cuts, outages, refusals, loss and clock skew.
//! - [`playback`]: scheduled playback under that simulation: a week, outages,
//!   restarts, clock jumps, the amplifier, proof of play.
//! - [`audio_out`]: the real agent binary playing through cpal into ALSA
//!   (the `file` plugin, PulseAudio's null sink), and its failures.
//! - [`live`]: live and emergency sessions under that simulation:
//!   preemption and resumption, signed-command refusals, reconnects.
//! - [`live_out`]: the real agent binary playing a signed live stream from
//!   a test controller into ALSA.
//! - [`content`]: the content downloader against a real HTTP server that
//!   cuts, stalls, lies and refuses.

mod audio_out;
mod content;
mod link;
mod live;
mod live_out;
mod playback;
mod sim;
