//! End-to-end tests: real controller and agent processes on loopback, over
//! TLS. One test binary; each test starts its own controller in its own
//! temporary data directory on its own port.

mod accounts;
mod admin_pages;
mod broadcast;
mod cluster;
mod console;
mod dashboard;
mod demo;
mod faults;
mod guide;
mod lifecycle;
mod live;
mod live_agents;
mod main_flow;
mod pages;
mod password;
mod plays;
mod relay;
