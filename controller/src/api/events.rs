//! `GET /api/v1/events`: server-sent events for live dashboards.
//!
//! Each presence change is sent as an `agent` event carrying the agent's full
//! view; each live session change as a `live` event (`crate::live::LiveEvent`:
//! a session started or ended, or one agent's state in a session); each
//! alarm raised, cleared or acknowledged as an `alarm` event (the object
//! `GET /alarms` lists). A client that falls behind gets a `resync` event
//! and should reload the list; the stream never blocks the link handlers.
//!
//! An account limited to a township hears only of its own: agents of its
//! villages, sessions that reach any of its villages (and its agents'
//! states in them), its villages' alarms. Its area is read again every
//! [`AREA_TTL`], so a village added meanwhile is soon included.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::Stream;
use tokio::sync::broadcast::error::RecvError;
use tokio::time::Instant;

use super::AppState;
use super::agents::view_of;
use crate::accounts::policy::Principal;
use crate::accounts::scope::{self, Area};
use crate::live::LiveEvent;

/// How long a township caller's area is used before it is read again.
pub const AREA_TTL: Duration = Duration::from_secs(30);

/// The event stream.
pub async fn stream(
    State(st): State<AppState>,
    caller: Principal,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let mut changes = st.presence.subscribe();
    let mut live = st.live.subscribe();
    let mut alarms = st.alarms.subscribe();
    let events = async_stream(move |tx| async move {
        let mut area = Scoped::new(caller);
        loop {
            let event = tokio::select! {
                change = changes.recv() => match change {
                    Ok(change) => match view_of(&st, change.agent_id).await {
                        Ok(view) if area.covers(&st, &[view.village_id]).await => {
                            Event::default().event("agent").json_data(&view).unwrap_or_default()
                        }
                        Ok(_) => continue,
                        // The agent was deleted meanwhile: the client reloads.
                        Err(_) => Event::default().event("resync").data("{}"),
                    },
                    Err(RecvError::Lagged(_)) => Event::default().event("resync").data("{}"),
                    Err(RecvError::Closed) => break,
                },
                // Live sessions and each agent's state in them.
                event = live.recv() => match event {
                    Ok(e) => {
                        let villages = match &e {
                            LiveEvent::Session { session } => session.villages.clone(),
                            LiveEvent::Agent { agent, .. } => vec![agent.village_id],
                        };
                        if !area.touches(&st, &villages).await {
                            continue;
                        }
                        Event::default().event("live").json_data(&e).unwrap_or_default()
                    }
                    Err(RecvError::Lagged(_)) => Event::default().event("resync").data("{}"),
                    Err(RecvError::Closed) => break,
                },
                alarm = alarms.recv() => match alarm {
                    Ok(a) if area.covers(&st, &[a.village_id]).await => {
                        Event::default().event("alarm").json_data(&a).unwrap_or_default()
                    }
                    Ok(_) => continue,
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

/// The caller's area, read when first needed and again after [`AREA_TTL`].
struct Scoped {
    caller: Principal,
    area: Option<(Area, Instant)>,
}

impl Scoped {
    fn new(caller: Principal) -> Scoped {
        Scoped { caller, area: None }
    }

    /// Whether every one of `villages` is the caller's.
    async fn covers(&mut self, st: &AppState, villages: &[i64]) -> bool {
        match self.area(st).await {
            Some(area) => area.covers_villages(villages),
            None => true,
        }
    }

    /// Whether any of `villages` is the caller's.
    async fn touches(&mut self, st: &AppState, villages: &[i64]) -> bool {
        match self.area(st).await {
            Some(area) => villages.iter().any(|v| area.covers_villages(&[*v])),
            None => true,
        }
    }

    /// `None` for a county-wide caller. Should the store fail, the stream
    /// shows nothing rather than too much.
    async fn area(&mut self, st: &AppState) -> Option<&Area> {
        self.caller.region_id()?;
        let fresh = self.area.as_ref().is_some_and(|(_, at)| at.elapsed() < AREA_TTL);
        if !fresh {
            let area = match scope::area(st, &self.caller).await {
                Ok(area) => area,
                Err(e) => {
                    tracing::error!(error = %e, "cannot read the event stream caller's area");
                    Area::of(&self.caller, &[])
                }
            };
            self.area = Some((area, Instant::now()));
        }
        self.area.as_ref().map(|(a, _)| a)
    }
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
