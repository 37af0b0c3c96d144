//! Pure schedule logic shared by the controller and the agents, so both
//! agree on what plays where and when.
//!
//! This crate never reads a clock, touches a socket or a file, or spawns a
//! task: "now" is always an argument.
//!
//! # Layout
//! - [`priority`]: who may interrupt whom (DESIGN.md principle 6).
//!
//! Recurrence, time zones, targets, quiet hours and conflict resolution join
//! with the scheduled-broadcast work.

pub mod priority;
