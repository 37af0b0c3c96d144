//! Integration and property tests of `dalaba-schedules`, in one binary.
//!
//! # Layout
//! - `common`: schedule builders, local-time helpers, a plan renderer.
//! - `recurrence`: occurrences of rules and cron (month ends, leap years,
//!   midnight, DST), validity windows, JSON.
//! - `validation`: every error an operator can meet, word for word.
//! - `conflicts`: resolution by priority, cascades, targeting, the conflict list.
//! - `quiet_hours`: across midnight, per township, emergencies exempt.
//! - `properties`: proptest over random schedules and windows.

// Helpers outside `#[test]` functions are test code too: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

mod common;
mod conflicts;
mod properties;
mod quiet_hours;
mod recurrence;
mod validation;
