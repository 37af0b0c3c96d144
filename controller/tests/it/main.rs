//! Integration tests of the controller's HTTP application, driven in process
//! through `router(state).oneshot(request)`: no port, no TLS, a manual clock
//! and an in-memory store, so every test is fast and deterministic.
//!
//! # Layout
//! - `harness`: building an application, `call` and the shared fixtures.
//! - `alerts`: CAP alerts and API tokens; `alert_cli`: the token and alert
//!   commands of the real binary.
//! - `directory`: region CRUD and the table of refused inputs.
//! - `csv`: directory export and import.
//! - `enrolment`: enrolment codes, enrolment and the agent list.
//! - `library`: the audio library, text to speech and content downloads.
//! - `passwords`: an account changing its own password.
//! - `presence`: live presence as the API and the dashboard show it.
//! - `routes`: the OpenAPI document against the router, metrics, pages, the
//!   JSON fallback and the agent link's authentication.

mod access;
mod alarms;
mod alert_cli;
mod alert_sessions;
mod alerts;
mod audit_records;
mod csv;
mod directory;
mod enrolment;
mod harness;
mod hostile;
mod library;
mod live;
mod passwords;
mod presence;
mod reports;
mod routes;
mod schedules;
mod township_views;
