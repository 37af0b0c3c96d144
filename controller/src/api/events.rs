//! `GET /api/v1/events`: server-sent events for live dashboards.
//!
//! Each presence change is sent as an `agent` event carrying the agent's full
//! view; each live session change as a `live` event (`crate::live::LiveEvent`:
//! a session started or ended, or one agent's state in a session). A
//! client that falls behind gets a `resync` event and should reload the
//! list; the stream never blocks the link handlers.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::Stream;
use tokio::sync::broadcast::error::RecvError;

use super::AppState;
use super::agents::view_of;

/// The event stream.
pub async fn stream(State(st): State<AppState>) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let mut changes = st.presence.subscribe();
    let mut live = st.live.subscribe();
    let events = async_stream(move |tx| async move {
        loop {
            let event = tokio::select! {
                change = changes.recv() => match change {
                    Ok(change) => match view_of(&st, change.agent_id).await {
                        Ok(view) => Event::default().event("agent").json_data(&view).unwrap_or_default(),
                        // The agent was deleted meanwhile: the client reloads.
                        Err(_) => Event::default().event("resync").data("{}"),
                    },
                    Err(RecvError::Lagged(_)) => Event::default().event("resync").data("{}"),
                    Err(RecvError::Closed) => break,
                },
                // Live sessions and each agent's state in them.
                event = live.recv() => match event {
                    Ok(e) => Event::default().event("live").json_data(&e).unwrap_or_default(),
                    Err(RecvError::Lagged(_)) => Event::default().event("resync").data("{}"),
                    Err(RecvError::Closed) => break,
                },
            };
            if tx.send(Ok(event)).await.is_err() {
                break;
            }
        }
    });
    Sse::new(events).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}

/// A stream fed by a task through a small channel; the task stops when the
/// client goes away.
fn async_stream<F, Fut>(f: F) -> impl Stream<Item = Result<Event, Infallible>>
where
    F: FnOnce(tokio::sync::mpsc::Sender<Result<Event, Infallible>>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    tokio::spawn(f(tx));
    tokio_stream_from(rx)
}

fn tokio_stream_from(
    mut rx: tokio::sync::mpsc::Receiver<Result<Event, Infallible>>,
) -> impl Stream<Item = Result<Event, Infallible>> {
    futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx))
}
