//! Which agents are online right now, and what they last reported.
//!
//! One registry for the whole controller, held in memory: presence changes on
//! every connect and heartbeat and is cheap to lose (agents reconnect and say
//! hello again). The last-seen time is also written to the store on connect
//! and disconnect so that offline villages show when they were last heard.
//!
//! Each live link registers with a connection id and a "kick" channel. A
//! second connection for the same agent replaces the first: the registry
//! hands back the older link's kick sender, and the caller tells the older
//! link to close ("the newer wins").

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use dalaba_protocol::link::{AgentStatus, Hello};
use dalaba_protocol::state::SyncReport;
use serde::Serialize;
use tokio::sync::{broadcast, oneshot};

/// What the registry knows about one online agent.
#[derive(Debug)]
struct Live {
    conn_id: u64,
    peer: SocketAddr,
    connected_since_ms: i64,
    last_seen_ms: i64,
    hello: Hello,
    status: Option<AgentStatus>,
    sync: Option<SyncReport>,
    kick: Option<oneshot::Sender<Kick>>,
}

/// Why the registry tells a live link to close.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kick {
    /// A newer link of the same agent replaced it.
    Superseded {
        /// The newer link's peer.
        by: SocketAddr,
    },
    /// The agent was removed from the directory.
    Removed,
}

impl std::fmt::Display for Kick {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Kick::Superseded { by } => write!(f, "superseded by a newer connection from {by}"),
            Kick::Removed => f.write_str("this agent was removed by an operator"),
        }
    }
}

/// A copy of one online agent's live state, for the API.
#[derive(Debug, Clone, Serialize)]
pub struct LiveView {
    /// Remote address of the link.
    pub peer: String,
    /// When this link was accepted (Unix ms).
    pub connected_since_ms: i64,
    /// When the agent last said anything (Unix ms).
    pub last_seen_ms: i64,
    /// The agent's hello.
    pub hello: Hello,
    /// The agent's latest status report.
    pub status: Option<AgentStatus>,
    /// The agent's latest sync report.
    pub sync: Option<SyncReport>,
}

/// A change of presence, broadcast to dashboards.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PresenceChange {
    /// The agent whose state changed.
    pub agent_id: String,
}

/// The registry. Cheap to share behind an `Arc`.
#[derive(Debug)]
pub struct Presence {
    live: Mutex<HashMap<String, Live>>,
    next_conn: AtomicU64,
    changes: broadcast::Sender<PresenceChange>,
}

/// The result of registering a link.
#[derive(Debug)]
pub struct Registered {
    /// This link's connection id.
    pub conn_id: u64,
    /// Resolves when this link must close: a newer link for the same agent
    /// replaced it, or the agent was removed.
    pub kicked: oneshot::Receiver<Kick>,
    /// The older link that this one replaced, if any: its peer address.
    pub replaced: Option<SocketAddr>,
}

impl Default for Presence {
    fn default() -> Self {
        Presence::new()
    }
}

impl Presence {
    /// An empty registry.
    pub fn new() -> Presence {
        let (changes, _) = broadcast::channel(1024);
        Presence { live: Mutex::new(HashMap::new()), next_conn: AtomicU64::new(1), changes }
    }

    /// Subscribes to presence changes.
    pub fn subscribe(&self) -> broadcast::Receiver<PresenceChange> {
        self.changes.subscribe()
    }

    /// Number of agents online.
    pub fn online_count(&self) -> usize {
        self.lock().len()
    }

    /// Registers a welcomed link. A previous link of the same agent is told
    /// to close.
    pub fn connect(&self, agent_id: &str, peer: SocketAddr, hello: Hello, now_ms: i64) -> Registered {
        let conn_id = self.next_conn.fetch_add(1, Ordering::Relaxed);
        let (kick_tx, kicked) = oneshot::channel();
        let live = Live {
            conn_id,
            peer,
            connected_since_ms: now_ms,
            last_seen_ms: now_ms,
            hello,
            status: None,
            sync: None,
            kick: Some(kick_tx),
        };
        let old = self.lock().insert(agent_id.to_string(), live);
        let replaced = old.map(|mut old| {
            if let Some(kick) = old.kick.take() {
                // The older link may already be gone; then nobody listens.
                let _ = kick.send(Kick::Superseded { by: peer });
            }
            old.peer
        });
        self.notify(agent_id);
        Registered { conn_id, kicked, replaced }
    }

    /// Records that the agent said something.
    pub fn seen(&self, agent_id: &str, conn_id: u64, now_ms: i64) {
        if let Some(live) = self.lock().get_mut(agent_id).filter(|l| l.conn_id == conn_id) {
            live.last_seen_ms = now_ms;
        }
    }

    /// Stores a status report; notifies dashboards when it changed.
    pub fn status(&self, agent_id: &str, conn_id: u64, status: AgentStatus, now_ms: i64) {
        self.report(agent_id, conn_id, now_ms, |l| replace(&mut l.status, status));
    }

    /// Stores a sync report; notifies dashboards when it changed.
    pub fn sync(&self, agent_id: &str, conn_id: u64, report: SyncReport, now_ms: i64) {
        self.report(agent_id, conn_id, now_ms, |l| replace(&mut l.sync, report));
    }

    /// Applies a report to the agent's live entry if `conn_id` is still its
    /// link, counts it as a sign of life, and notifies dashboards when
    /// `apply` says something changed.
    fn report(&self, agent_id: &str, conn_id: u64, now_ms: i64, apply: impl FnOnce(&mut Live) -> bool) {
        let changed = {
            let mut live = self.lock();
            match live.get_mut(agent_id).filter(|l| l.conn_id == conn_id) {
                Some(l) => {
                    l.last_seen_ms = now_ms;
                    apply(l)
                }
                None => false,
            }
        };
        if changed {
            self.notify(agent_id);
        }
    }

    /// Removes a link, unless a newer link of the same agent has already
    /// replaced it. Returns whether the agent went offline.
    pub fn disconnect(&self, agent_id: &str, conn_id: u64) -> bool {
        let removed = {
            let mut live = self.lock();
            if live.get(agent_id).is_some_and(|l| l.conn_id == conn_id) {
                live.remove(agent_id);
                true
            } else {
                false
            }
        };
        if removed {
            self.notify(agent_id);
        }
        removed
    }

    /// Tells an agent's live link, if any, to close. Returns whether there
    /// was one.
    pub fn kick(&self, agent_id: &str, why: Kick) -> bool {
        let kick = self.lock().get_mut(agent_id).and_then(|l| l.kick.take());
        match kick {
            Some(k) => k.send(why).is_ok(),
            None => false,
        }
    }

    /// A copy of one agent's live state, if it is online.
    pub fn view(&self, agent_id: &str) -> Option<LiveView> {
        self.lock().get(agent_id).map(view)
    }

    /// Copies of every online agent's live state.
    pub fn views(&self) -> HashMap<String, LiveView> {
        self.lock().iter().map(|(id, l)| (id.clone(), view(l))).collect()
    }

    fn notify(&self, agent_id: &str) {
        // No subscriber is fine: nobody is watching the dashboard.
        let _ = self.changes.send(PresenceChange { agent_id: agent_id.to_string() });
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Live>> {
        // Critical sections only move plain data; a panic inside one cannot
        // leave the map half-updated, so a poisoned lock is still usable.
        self.live.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Stores `new` in `slot`; returns whether it differs from what was there.
fn replace<T: PartialEq>(slot: &mut Option<T>, new: T) -> bool {
    let changed = slot.as_ref() != Some(&new);
    *slot = Some(new);
    changed
}

fn view(l: &Live) -> LiveView {
    LiveView {
        peer: l.peer.to_string(),
        connected_since_ms: l.connected_since_ms,
        last_seen_ms: l.last_seen_ms,
        hello: l.hello.clone(),
        status: l.status.clone(),
        sync: l.sync.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dalaba_protocol::link::Hardware;

    fn hello() -> Hello {
        Hello { protocol_version: 1, agent_version: "t".into(), hardware: Hardware::default() }
    }

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    #[test]
    fn newer_connection_wins() {
        let p = Presence::new();
        let mut first = p.connect("a", addr(1), hello(), 10);
        let second = p.connect("a", addr(2), hello(), 20);
        assert_eq!(second.replaced, Some(addr(1)));
        let why = first.kicked.try_recv().expect("older link told to close");
        assert_eq!(why, Kick::Superseded { by: addr(2) });
        assert!(why.to_string().contains("127.0.0.1:2"), "{why}");
        // The older link's disconnect must not take the newer one offline.
        assert!(!p.disconnect("a", first.conn_id));
        assert_eq!(p.online_count(), 1);
        assert!(p.disconnect("a", second.conn_id));
        assert_eq!(p.online_count(), 0);
    }

    #[test]
    fn kick_closes_the_live_link() {
        let p = Presence::new();
        let mut r = p.connect("a", addr(1), hello(), 10);
        assert!(p.kick("a", Kick::Removed));
        assert_eq!(r.kicked.try_recv().expect("told"), Kick::Removed);
        assert!(!p.kick("b", Kick::Removed));
    }

    #[test]
    fn status_change_notifies_once() {
        let p = Presence::new();
        let r = p.connect("a", addr(1), hello(), 10);
        let mut rx = p.subscribe();
        let s = AgentStatus { disk_free_bytes: 5, ..Default::default() };
        p.status("a", r.conn_id, s.clone(), 11);
        p.status("a", r.conn_id, s, 12);
        assert!(rx.try_recv().is_ok());
        assert!(rx.try_recv().is_err(), "an unchanged status is not news");
        assert_eq!(p.view("a").expect("online").last_seen_ms, 12);
    }
}
