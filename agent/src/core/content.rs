//! What the content cache holds, what to fetch, and the sync report.
//!
//! The core never touches the cache: the shell tells it what is there (at
//! start in [`super::Restore::cached`], later with [`ContentNews`]) and the
//! core asks for what the applied plan needs with [`Output::Fetch`], once per
//! item; a failed fetch is asked for again after [`FETCH_RETRY`]. The
//! controller hears the progress as a [`SyncReport`] after every welcome,
//! every desired state, and every change.

use std::collections::BTreeSet;
use std::time::Duration;

use dalaba_protocol::link::AgentMessage;
use dalaba_protocol::state::{DesiredState, SyncReport, SyncState};

use super::timer::Timer;
use super::{Ctx, Effects, Output};

/// How long after a failed fetch the core asks for the content again.
pub const FETCH_RETRY: Duration = Duration::from_secs(60);

/// News from the shell about the content cache.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ContentNews {
    /// The content is in the cache and its SHA-256 verified.
    Cached {
        /// Its SHA-256 (lowercase hex).
        sha256: String,
    },
    /// The content is not (or no longer) in the cache.
    Missing {
        /// Its SHA-256 (lowercase hex).
        sha256: String,
    },
    /// Fetching it failed; the core asks again after [`FETCH_RETRY`].
    FetchFailed {
        /// Its SHA-256 (lowercase hex).
        sha256: String,
        /// Why, for the operator.
        reason: String,
    },
}

#[derive(Debug, Default)]
pub(super) struct Content {
    cached: BTreeSet<String>,
    /// Asked for with [`Output::Fetch`], no answer yet.
    requested: BTreeSet<String>,
    /// Failed, waiting for [`Timer::FetchRetry`].
    failed: BTreeSet<String>,
    /// The latest failure, until everything needed is cached.
    last_failure: Option<String>,
    /// The report the controller last received on this link.
    sync_sent: Option<SyncReport>,
}

impl Content {
    pub(super) fn restore(&mut self, cached: BTreeSet<String>) {
        self.cached = cached;
    }

    pub(super) fn is_cached(&self, sha256: &str) -> bool {
        self.cached.contains(sha256)
    }

    /// Asks for every needed item that is neither cached nor on its way.
    pub(super) fn request_missing(&mut self, desired: &DesiredState, fx: &mut Effects) {
        for c in &desired.content {
            let known = self.cached.contains(&c.sha256)
                || self.requested.contains(&c.sha256)
                || self.failed.contains(&c.sha256);
            if !known {
                self.requested.insert(c.sha256.clone());
                fx.out.push_back(Output::Fetch { sha256: c.sha256.clone(), size_bytes: c.size_bytes });
            }
        }
    }

    pub(super) fn handle(&mut self, ctx: Ctx<'_>, news: ContentNews, desired: Option<&DesiredState>, fx: &mut Effects) {
        match news {
            ContentNews::Cached { sha256 } => {
                self.requested.remove(&sha256);
                self.failed.remove(&sha256);
                self.cached.insert(sha256);
            }
            ContentNews::Missing { sha256 } => {
                self.cached.remove(&sha256);
                self.requested.remove(&sha256);
            }
            ContentNews::FetchFailed { sha256, reason } => {
                self.requested.remove(&sha256);
                self.failed.insert(sha256);
                self.last_failure = Some(reason);
                if fx.timers.get(Timer::FetchRetry).is_none() {
                    fx.timers.set(Timer::FetchRetry, ctx.now.mono + FETCH_RETRY);
                }
            }
        }
        if let Some(desired) = desired {
            self.request_missing(desired, fx);
        }
        self.send_sync(ctx, desired, fx);
    }

    /// [`Timer::FetchRetry`]: ask again for what failed.
    pub(super) fn retry(&mut self, ctx: Ctx<'_>, desired: Option<&DesiredState>, fx: &mut Effects) {
        self.failed.clear();
        if let Some(desired) = desired {
            self.request_missing(desired, fx);
        }
        self.send_sync(ctx, desired, fx);
    }

    /// Sends the sync report for `desired` unless the controller has it.
    pub(super) fn send_sync(&mut self, ctx: Ctx<'_>, desired: Option<&DesiredState>, fx: &mut Effects) {
        let Some(desired) = desired else { return };
        if !ctx.connected {
            return;
        }
        let report = self.report(desired);
        if self.sync_sent.as_ref() != Some(&report) {
            self.sync_sent = Some(report.clone());
            fx.send(AgentMessage::Sync(report));
        }
    }

    /// The controller must hear the report again (a new link, or it sent a
    /// desired state and waits for the answer).
    pub(super) fn forget_sent(&mut self) {
        self.sync_sent = None;
    }

    fn report(&mut self, desired: &DesiredState) -> SyncReport {
        let total = desired.content.len();
        let done = desired.content.iter().filter(|c| self.cached.contains(&c.sha256)).count();
        let state = if done == total {
            self.last_failure = None;
            SyncState::UpToDate
        } else if let Some(reason) = &self.last_failure {
            SyncState::Failed { reason: reason.clone() }
        } else {
            let count = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
            SyncState::Downloading { done: count(done), total: count(total) }
        };
        SyncReport { version: desired.version, state }
    }
}

#[cfg(test)]
mod tests {
    use dalaba_protocol::state::{ContentInfo, PlaybackSettings};

    use super::super::testing::{Harness, sent};
    use super::super::timebase::Timebase;
    use super::*;

    fn desired(hashes: &[&str]) -> DesiredState {
        DesiredState {
            version: 4,
            generated_at_ms: 0,
            from_ms: 0,
            to_ms: 1,
            entries: vec![],
            content: hashes
                .iter()
                .map(|h| ContentInfo {
                    sha256: h.to_string(),
                    size_bytes: 10,
                    duration_ms: 1000,
                    gain_db: 0.0,
                    title: "t".into(),
                })
                .collect(),
            playback: PlaybackSettings::default(),
        }
    }

    fn fetches(out: &[Output]) -> Vec<String> {
        out.iter()
            .filter_map(|o| if let Output::Fetch { sha256, .. } = o { Some(sha256.clone()) } else { None })
            .collect()
    }

    fn syncs(out: &[Output]) -> Vec<SyncState> {
        sent(out).into_iter().filter_map(|m| if let AgentMessage::Sync(r) = m { Some(r.state) } else { None }).collect()
    }

    #[test]
    fn missing_content_is_fetched_once_and_progress_reported() {
        let h = Harness::new();
        let tb = Timebase::new(h.now());
        let ctx = Ctx { now: h.now(), clock: &tb, connected: true };
        let d = desired(&["a", "b", "c"]);
        let mut fx = Effects::default();
        let mut content = Content::default();
        content.restore(["a".to_string()].into());
        content.request_missing(&d, &mut fx);
        content.request_missing(&d, &mut fx);
        content.send_sync(ctx, Some(&d), &mut fx);
        let out: Vec<Output> = fx.out.drain(..).collect();
        assert_eq!(fetches(&out), vec!["b", "c"]);
        assert_eq!(syncs(&out), vec![SyncState::Downloading { done: 1, total: 3 }]);

        let news = |s: &str| ContentNews::Cached { sha256: s.into() };
        content.handle(ctx, news("b"), Some(&d), &mut fx);
        content.handle(
            ctx,
            ContentNews::FetchFailed { sha256: "c".into(), reason: "HTTP 404".into() },
            Some(&d),
            &mut fx,
        );
        let out: Vec<Output> = fx.out.drain(..).collect();
        assert_eq!(
            syncs(&out),
            vec![SyncState::Downloading { done: 2, total: 3 }, SyncState::Failed { reason: "HTTP 404".into() }]
        );
        assert!(fetches(&out).is_empty(), "no retry before the timer");
        assert!(fx.timers.get(Timer::FetchRetry).is_some());

        content.retry(ctx, Some(&d), &mut fx);
        let out: Vec<Output> = fx.out.drain(..).collect();
        assert_eq!(fetches(&out), vec!["c"]);
        content.handle(ctx, news("c"), Some(&d), &mut fx);
        let out: Vec<Output> = fx.out.drain(..).collect();
        assert_eq!(syncs(&out), vec![SyncState::UpToDate]);
        assert!(content.is_cached("c"));
    }
}
