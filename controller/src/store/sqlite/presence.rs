//! Presence history: one row per agent link that was up, written on
//! connect and disconnect (never per heartbeat), checkpointed every few
//! minutes, and closed at the next start after a crash.

use rusqlite::{Connection, params};

use crate::reports::VillagePresence;
use crate::store::StoreError;

/// Opens a row for an agent's link, unless one is open already (a second
/// link of the same agent replaced the first: the agent never went away).
pub(super) fn connected(conn: &Connection, agent_id: &str, at_ms: i64) -> Result<(), StoreError> {
    let open = conn.execute(
        "UPDATE agent_presence SET seen_ms = MAX(seen_ms, ?2) WHERE agent_id = ?1 AND disconnected_ms IS NULL",
        params![agent_id, at_ms],
    )?;
    if open == 0 {
        conn.execute(
            "INSERT INTO agent_presence (agent_id, village_id, connected_ms, seen_ms)
             SELECT id, village_id, ?2, ?2 FROM agents WHERE id = ?1",
            params![agent_id, at_ms],
        )?;
    }
    Ok(())
}

/// Closes the agent's open row.
pub(super) fn disconnected(conn: &Connection, agent_id: &str, at_ms: i64) -> Result<(), StoreError> {
    conn.execute(
        "UPDATE agent_presence SET disconnected_ms = MAX(connected_ms, ?2), seen_ms = MAX(seen_ms, ?2)
         WHERE agent_id = ?1 AND disconnected_ms IS NULL",
        params![agent_id, at_ms],
    )?;
    Ok(())
}

/// Moves the last sign of life of every open row to `at_ms`: one statement
/// for every online agent.
pub(super) fn checkpoint(conn: &Connection, at_ms: i64) -> Result<usize, StoreError> {
    Ok(conn.execute("UPDATE agent_presence SET seen_ms = MAX(seen_ms, ?1) WHERE disconnected_ms IS NULL", [at_ms])?)
}

/// Closes rows a crashed controller left open, at the last sign of life the
/// store knows: the row's checkpoint or the agent's last-seen time.
pub(super) fn close_open(conn: &Connection) -> Result<usize, StoreError> {
    Ok(conn.execute(
        "UPDATE agent_presence SET disconnected_ms = MAX(connected_ms, seen_ms,
             COALESCE((SELECT last_seen_ms FROM agents WHERE agents.id = agent_presence.agent_id), 0))
         WHERE disconnected_ms IS NULL",
        [],
    )?)
}

/// For every one of `villages` with an enrolled agent: its first enrolment
/// and the online intervals of its agents overlapping `[from_ms, to_ms)`.
pub(super) fn history(
    conn: &Connection,
    villages: &[i64],
    from_ms: i64,
    to_ms: i64,
) -> Result<Vec<VillagePresence>, StoreError> {
    let ids = serde_json::to_string(villages).unwrap_or_else(|_| "[]".to_owned());
    let mut enrolled = conn.prepare_cached(
        "SELECT village_id, MIN(enrolled_at_ms) FROM agents
         WHERE village_id IN (SELECT value FROM json_each(?1)) GROUP BY village_id ORDER BY village_id",
    )?;
    let mut out: Vec<VillagePresence> = enrolled
        .query_map([&ids], |r| {
            Ok(VillagePresence { village_id: r.get(0)?, enrolled_at_ms: r.get(1)?, online: Vec::new() })
        })?
        .collect::<Result<_, _>>()?;
    let mut rows = conn.prepare_cached(
        "SELECT village_id, connected_ms, disconnected_ms FROM agent_presence
         WHERE village_id IN (SELECT value FROM json_each(?1))
           AND connected_ms < ?3 AND (disconnected_ms IS NULL OR disconnected_ms > ?2)",
    )?;
    let intervals = rows.query_map(params![ids, from_ms, to_ms], |r| {
        Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?, r.get::<_, Option<i64>>(2)?))
    })?;
    for row in intervals {
        let (village, from, to) = row?;
        if let Ok(i) = out.binary_search_by_key(&village, |v| v.village_id) {
            out[i].online.push((from, to));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use crate::directory::Level;
    use crate::directory::demo::load_demo;
    use crate::store::sqlite::SqliteStore;
    use crate::store::{NewAgent, Store};

    fn store_with_agent() -> (SqliteStore, i64) {
        let store = SqliteStore::open_in_memory().expect("open");
        load_demo(&store).expect("demo");
        let village = store.regions().expect("regions").into_iter().find(|r| r.level == Level::Village);
        let village = village.expect("a village").id;
        store.create_enrolment_code(village, "A", 5_000, 0).expect("code");
        let agent = NewAgent {
            id: "a1".into(),
            secret_hash: "h".into(),
            hostname: "pi".into(),
            agent_version: "0".into(),
            hardware_json: "{}".into(),
            enrolled_at_ms: 100,
        };
        store.redeem_enrolment_code("A", 1, &agent).expect("redeem");
        (store, village)
    }

    #[test]
    fn intervals_open_close_and_survive_a_crash() {
        let (store, village) = store_with_agent();
        store.record_presence_connected("a1", 1_000).expect("connect");
        // A second link replacing the first keeps the interval open.
        store.record_presence_connected("a1", 1_500).expect("second link");
        store.record_presence_disconnected("a1", 2_000).expect("disconnect");
        store.record_presence_connected("a1", 3_000).expect("reconnect");
        store.checkpoint_presence(3_600).expect("checkpoint");
        let history = store.presence_history(&[village, -1], 0, 10_000).expect("history");
        assert_eq!(history.len(), 1, "only villages with an agent");
        let mut online = history[0].online.clone();
        online.sort_unstable();
        assert_eq!(online, [(1_000, Some(2_000)), (3_000, None)]);
        assert_eq!(history[0].enrolled_at_ms, 100);
        // The controller crashed; at its next start the open interval ends
        // at the checkpoint.
        assert_eq!(store.close_open_presence().expect("close"), 1);
        assert_eq!(store.close_open_presence().expect("close"), 0);
        let history = store.presence_history(&[village], 2_500, 10_000).expect("history");
        assert_eq!(history[0].online, [(3_000, Some(3_600))], "the first interval ended before the window");
        assert_eq!(history[0].offline_ms(2_500, 10_000, 20_000), 7_500 - 600);
        // An unknown agent records nothing.
        store.record_presence_connected("ghost", 1).expect("nothing to do");
    }
}
