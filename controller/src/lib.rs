//! The Dalaba county controller.
//!
//! Holds the region directory (county → townships → villages), enrols village
//! agents, keeps one WebSocket link per agent, shows who is online, and
//! serves the operators' pages and the JSON API, all on one HTTPS port.
//!
//! # Layout
//! - [`config`]: typed, validated configuration.
//! - [`store`]: the storage boundary and its SQLite implementation.
//! - [`directory`]: regions, CSV import/export, the demo county.
//! - [`library`]: the audio library (uploads, text to speech, content files).
//! - [`api`]: the JSON API under `/api/v1`; [`link`]: the agent WebSocket;
//!   [`web`]: the embedded pages; [`metrics`]: Prometheus text.
//! - [`presence`]: who is online now; [`live`]: live and emergency
//!   sessions, their audio fan-out and signed commands.
//! - [`schedules`]: the timetable as operators write it;
//!   [`distribution`]: each agent's desired state, rebuilt on change.
//! - [`server`]: the TCP/TLS/HTTP accept loop; [`tls`], [`signing`]: keys.
//! - [`app`]: builds and starts a controller from a configuration.
//! - [`demo`]: the demo county with simulated villages; [`demo_broadcasts`]:
//!   its notices and timetable.
//! - [`alarms`]: operator alarms (offline, amplifier, clock, disk, sync,
//!   emergency refused), their rules, store and webhook.
//! - [`alerts`]: CAP 1.2 alerts from upstream systems, as live sessions;
//!   [`tokens`]: the API tokens they authenticate with.
//! - [`clock`]: the only place that reads wall time.

pub mod accounts;
pub mod alarms;
pub mod alerts;
pub mod api;
pub mod app;
pub mod clock;
pub mod config;
pub mod config_history;
pub mod demo;
pub mod demo_broadcasts;
pub mod directory;
pub mod distribution;
pub mod library;
pub mod link;
pub mod live;
pub mod metrics;
pub mod presence;
pub mod reports;
pub mod schedules;
pub mod server;
pub mod signing;
pub mod store;
pub mod tls;
pub mod tokens;
pub mod web;
