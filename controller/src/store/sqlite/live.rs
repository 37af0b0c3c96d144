//! Live session reports: one `live_sessions` row per session and one
//! `live_session_agents` row per targeted agent. An agent's state is kept
//! as the JSON of [`AgentState`] (its name is `$.state`).

use rusqlite::{Connection, OptionalExtension, Row, TransactionBehavior, params};

use crate::live::{AgentCounts, AgentReport, AgentState, LivePriority, SessionReport};
use crate::store::StoreError;

pub(super) fn save_session(conn: &mut Connection, r: &SessionReport) -> Result<(), StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    tx.execute(
        "INSERT INTO live_sessions (id, title, priority, source, started_by, targets, villages, volume,
                                    started_at_ms, ended_at_ms, end_reason, frames_sent)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)
         ON CONFLICT (id) DO UPDATE SET
             ended_at_ms = COALESCE(live_sessions.ended_at_ms, excluded.ended_at_ms),
             end_reason  = COALESCE(live_sessions.end_reason, excluded.end_reason),
             frames_sent = MAX(live_sessions.frames_sent, excluded.frames_sent)",
        params![
            r.session_id,
            r.title,
            r.priority.as_str(),
            r.source,
            r.started_by,
            r.targets.to_string(),
            serde_json::to_string(&r.villages).unwrap_or_default(),
            r.volume,
            r.started_at_ms,
            r.ended_at_ms,
            r.end_reason,
            i64::try_from(r.frames_sent).unwrap_or(i64::MAX),
        ],
    )?;
    for a in &r.agents {
        save_agent(&tx, &r.session_id, a)?;
    }
    tx.commit()?;
    Ok(())
}

pub(super) fn save_agent(conn: &Connection, session_id: &str, a: &AgentReport) -> Result<(), StoreError> {
    let end_reason = match &a.state {
        AgentState::Ended { reason } => Some(reason.as_str()),
        _ => None,
    };
    conn.execute(
        "INSERT INTO live_session_agents (session_id, agent_id, village_id, state, playing_from_ms, playing_to_ms,
                                          frames_sent, frames_dropped, frames_received, frames_lost, refusal, end_reason)
         SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12
         WHERE EXISTS (SELECT 1 FROM live_sessions WHERE id = ?1)
         ON CONFLICT (session_id, agent_id) DO UPDATE SET
             state = excluded.state, playing_from_ms = excluded.playing_from_ms,
             playing_to_ms = excluded.playing_to_ms, frames_sent = excluded.frames_sent,
             frames_dropped = excluded.frames_dropped, frames_received = excluded.frames_received,
             frames_lost = excluded.frames_lost, refusal = excluded.refusal, end_reason = excluded.end_reason",
        params![
            session_id,
            a.agent_id,
            a.village_id,
            serde_json::to_string(&a.state).unwrap_or_default(),
            a.playing_from_ms,
            a.playing_to_ms,
            i64::try_from(a.frames_sent).unwrap_or(i64::MAX),
            i64::try_from(a.frames_dropped).unwrap_or(i64::MAX),
            a.frames_received.map(|n| i64::try_from(n).unwrap_or(i64::MAX)),
            a.frames_lost.map(|n| i64::try_from(n).unwrap_or(i64::MAX)),
            a.refusal,
            end_reason,
        ],
    )?;
    Ok(())
}

const SESSION_COLUMNS: &str = "id, title, priority, source, started_by, targets, villages, volume, started_at_ms,
    ended_at_ms, end_reason, frames_sent";

pub(super) fn session(conn: &Connection, id: &str) -> Result<Option<SessionReport>, StoreError> {
    let sql = format!("SELECT {SESSION_COLUMNS} FROM live_sessions WHERE id = ?1");
    let Some(mut report) = conn.query_row(&sql, [id], session_row).optional()? else { return Ok(None) };
    let mut stmt = conn.prepare(
        "SELECT agent_id, village_id, state, playing_from_ms, playing_to_ms, frames_sent, frames_dropped,
                frames_received, frames_lost, refusal
         FROM live_session_agents WHERE session_id = ?1 ORDER BY agent_id",
    )?;
    report.agents = stmt
        .query_map([id], |r| {
            let state: String = r.get(2)?;
            Ok(AgentReport {
                agent_id: r.get(0)?,
                village_id: r.get(1)?,
                // A row this store wrote always parses; a damaged one shows as ended.
                state: serde_json::from_str(&state)
                    .unwrap_or(AgentState::Ended { reason: format!("unreadable state {state}") }),
                playing_from_ms: r.get(3)?,
                playing_to_ms: r.get(4)?,
                frames_sent: count(r.get(5)?),
                frames_dropped: count(r.get(6)?),
                frames_received: r.get::<_, Option<i64>>(7)?.map(count),
                frames_lost: r.get::<_, Option<i64>>(8)?.map(count),
                refusal: r.get(9)?,
            })
        })?
        .collect::<Result<_, _>>()?;
    report.counts = AgentCounts::of(&report.agents);
    Ok(Some(report))
}

pub(super) fn sessions(conn: &Connection, limit: usize) -> Result<Vec<SessionReport>, StoreError> {
    let sql = format!(
        "SELECT {SESSION_COLUMNS},
            (SELECT COUNT(*) FROM live_session_agents a WHERE a.session_id = s.id),
            (SELECT COUNT(*) FROM live_session_agents a WHERE a.session_id = s.id AND a.playing_from_ms IS NOT NULL),
            (SELECT COUNT(*) FROM live_session_agents a WHERE a.session_id = s.id
                AND json_extract(a.state, '$.state') = 'refused'),
            (SELECT COUNT(*) FROM live_session_agents a WHERE a.session_id = s.id
                AND json_extract(a.state, '$.state') = 'preempted')
         FROM live_sessions s ORDER BY started_at_ms DESC, id DESC LIMIT ?1"
    );
    let mut stmt = conn.prepare(&sql)?;
    let rows = stmt.query_map([i64::try_from(limit).unwrap_or(i64::MAX)], |r| {
        let mut report = session_row(r)?;
        report.counts = AgentCounts {
            total: count(r.get(12)?),
            played: count(r.get(13)?),
            refused: count(r.get(14)?),
            preempted: count(r.get(15)?),
            ..AgentCounts::default()
        };
        Ok(report)
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

fn session_row(r: &Row<'_>) -> rusqlite::Result<SessionReport> {
    let priority: String = r.get(2)?;
    let targets: String = r.get(5)?;
    let villages: String = r.get(6)?;
    Ok(SessionReport {
        session_id: r.get(0)?,
        title: r.get(1)?,
        priority: LivePriority::parse(&priority).unwrap_or(LivePriority::Paging),
        source: r.get(3)?,
        started_by: r.get(4)?,
        targets: serde_json::from_str(&targets).unwrap_or_default(),
        villages: serde_json::from_str(&villages).unwrap_or_default(),
        volume: r.get(7)?,
        started_at_ms: r.get(8)?,
        ended_at_ms: r.get(9)?,
        end_reason: r.get(10)?,
        frames_sent: count(r.get(11)?),
        counts: AgentCounts::default(),
        agents: Vec::new(),
    })
}

fn count(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;
    use crate::store::sqlite::SqliteStore;
    use dalaba_protocol::live::RefusalCode;

    fn report() -> SessionReport {
        let agent = |id: &str, village: i64, state: AgentState| AgentReport {
            agent_id: id.into(),
            village_id: village,
            state,
            playing_from_ms: None,
            playing_to_ms: None,
            frames_sent: 10,
            frames_dropped: 1,
            frames_received: None,
            frames_lost: None,
            refusal: None,
        };
        SessionReport {
            session_id: "L1".into(),
            title: "防汛紧急通知".into(),
            priority: LivePriority::Emergency,
            source: "text".into(),
            started_by: "alert:X1".into(),
            targets: serde_json::json!({"county": true}),
            villages: vec![3, 4],
            volume: 90,
            started_at_ms: 1_000,
            ended_at_ms: None,
            end_reason: None,
            frames_sent: 10,
            counts: AgentCounts::default(),
            agents: vec![
                agent("a", 3, AgentState::Sent),
                agent(
                    "b",
                    4,
                    AgentState::Refused { reason: RefusalCode::Busy, message: "busy with an emergency".into() },
                ),
            ],
        }
    }

    #[test]
    fn a_report_round_trips_and_an_ended_session_stays_ended() {
        let store = SqliteStore::open_in_memory().expect("store");
        let mut r = report();
        store.save_live_session(&r).expect("save");
        r.ended_at_ms = Some(9_000);
        r.end_reason = Some("played out".into());
        r.frames_sent = 400;
        r.agents[0].state = AgentState::Ended { reason: "stopped".into() };
        r.agents[0].playing_from_ms = Some(2_000);
        r.agents[0].playing_to_ms = Some(8_900);
        r.agents[0].frames_received = Some(398);
        r.agents[0].frames_lost = Some(2);
        store.save_live_session(&r).expect("save the end");
        // A late save of the start (a race between tasks) does not revive it.
        store.save_live_session(&report()).expect("late save");
        store.save_live_agent("L1", &r.agents[0]).expect("agent row");
        let back = store.live_session("L1").expect("read").expect("exists");
        assert_eq!(back.ended_at_ms, Some(9_000));
        assert_eq!(back.end_reason.as_deref(), Some("played out"));
        assert_eq!(back.frames_sent, 400);
        assert_eq!(back.agents[0], r.agents[0]);
        assert_eq!(back.agents[1], r.agents[1]);
        assert_eq!(back.counts.refused, 1);
        let list = store.live_sessions(10).expect("list");
        assert_eq!(list.len(), 1);
        assert!(list[0].agents.is_empty());
        assert_eq!((list[0].counts.total, list[0].counts.played, list[0].counts.refused), (2, 1, 1));
        assert!(store.live_session("nope").expect("read").is_none());
        // An agent row for a session never stored is not kept.
        store.save_live_agent("L2", &r.agents[0]).expect("no error");
        assert!(store.live_session("L2").expect("read").is_none());
    }
}
