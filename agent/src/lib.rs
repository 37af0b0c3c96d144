//! The Dalaba village agent.
//!
//! Runs on each village's board: holds one link to the county controller,
//! reports its state, and (with later work) keeps a cached schedule and plays
//! it on time through the village loudspeaker even when the network is down.
//!
//! # Layout
//! - [`core`]: the sans-IO state machine (DESIGN.md principle 1). It never
//!   reads a clock or touches a socket; the shell feeds it inputs and carries
//!   out its outputs.
//! - [`shell`]: the run loop that drives one core with real IO.
//! - [`cache`]: the content cache, its downloader and eviction.
//! - [`net`]: TLS with a pinned certificate, the WebSocket link, HTTPS POST.
//! - [`identity`]: enrolment and the stored credentials.
//! - [`devices`]: the amplifier trait, its trivial drivers, and disk figures.
//! - [`relay`]: the Modbus RTU, serial-frame and GPIO relay drivers.
//! - [`player`]: the audio player (cpal/ALSA, or simulated) and its pre-roll.
//! - [`simulate`]: many simulated villages in one process.
//! - [`config`], [`clock`]: configuration and the one window on time.

pub mod cache;
pub mod clock;
pub mod config;
pub mod core;
pub mod devices;
pub mod identity;
pub mod net;
pub mod player;
pub mod relay;
pub mod shell;
pub mod simulate;
