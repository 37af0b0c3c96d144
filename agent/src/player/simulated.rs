//! The simulated player: timing without audio, for `dalaba-agent simulate`.

use tokio::task::AbortHandle;

use super::{LiveRequest, StartRequest};
use crate::clock;
use crate::core::{LiveNews, PlaybackNews};
use crate::shell::{News, NewsSender};

/// Reports `Started` at the planned instant (or at once when that has
/// passed) and `Finished` after the planned duration; opens no device and
/// reads no file. One tokio task per item; needs a tokio runtime.
#[derive(Debug, Default)]
pub struct SimulatedPlayer {
    current: Option<(String, AbortHandle)>,
    live: Option<(String, AbortHandle)>,
}

impl SimulatedPlayer {
    /// A player with nothing to play.
    pub fn new() -> Self {
        SimulatedPlayer::default()
    }

    pub(super) fn start(&mut self, request: StartRequest, news: &NewsSender) {
        if let Some((_, task)) = self.current.take() {
            task.abort();
        }
        let news = news.clone();
        let entry_id = request.entry_id.clone();
        let task = tokio::spawn(async move {
            let StartRequest { entry_id, part, at_ms, duration_ms, .. } = request;
            tokio::time::sleep_until(clock::mono_at(at_ms).into()).await;
            let at_ms = at_ms.max(clock::now().wall_ms);
            let _ = news.send(News::Playback(PlaybackNews::Started { entry_id: entry_id.clone(), part, at_ms }));
            tokio::time::sleep(std::time::Duration::from_millis(duration_ms)).await;
            let _ = news.send(News::Playback(PlaybackNews::Finished { entry_id, part }));
        });
        self.current = Some((entry_id, task.abort_handle()));
    }

    /// A live session: `Started` at its instant; nothing more (the core
    /// counts the frames and ends the session).
    pub(super) fn start_live(&mut self, request: LiveRequest, news: &NewsSender) {
        if let Some((_, task)) = self.live.take() {
            task.abort();
        }
        let news = news.clone();
        let session_id = request.session_id.clone();
        let task = tokio::spawn(async move {
            let LiveRequest { session_id, at_ms, .. } = request;
            tokio::time::sleep_until(clock::mono_at(at_ms).into()).await;
            let at_ms = at_ms.max(clock::now().wall_ms);
            let _ = news.send(News::Live(LiveNews::Started { session_id, at_ms }));
        });
        self.live = Some((session_id, task.abort_handle()));
    }

    pub(super) fn stop_live(&mut self, session_id: &str) {
        if let Some((_, task)) = self.live.take_if(|(id, _)| id == session_id) {
            task.abort();
        }
    }

    pub(super) fn stop(&mut self, entry_id: &str) {
        if self.current.as_ref().is_some_and(|(id, _)| id == entry_id)
            && let Some((_, task)) = self.current.take()
        {
            task.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(at_ms: i64, duration_ms: u64) -> StartRequest {
        StartRequest {
            entry_id: "e".into(),
            part: 0,
            path: "/nonexistent".into(),
            gain_db: 0.0,
            volume: 70,
            at_ms,
            offset_ms: 0,
            duration_ms,
        }
    }

    #[tokio::test]
    async fn started_then_finished_and_stop_silences_it() {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let mut player = SimulatedPlayer::new();
        let at_ms = clock::now().wall_ms - 1;
        player.start(request(at_ms, 1), &tx);
        let Some(News::Playback(PlaybackNews::Started { entry_id, part: 0, .. })) = rx.recv().await else {
            panic!("expected Started")
        };
        assert_eq!(entry_id, "e");
        let Some(News::Playback(news)) = rx.recv().await else { panic!("expected news") };
        assert_eq!(news, PlaybackNews::Finished { entry_id: "e".into(), part: 0 });

        player.start(request(at_ms, 3_600_000), &tx);
        assert!(matches!(rx.recv().await, Some(News::Playback(PlaybackNews::Started { .. }))));
        player.stop("e");
        drop(tx);
        // The aborted task drops its sender: the channel ends with no
        // Finished.
        assert!(rx.recv().await.is_none(), "nothing after a stop");
    }
}
