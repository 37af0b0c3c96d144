//! Scheduled playback under the simulation: a week on the agent's clock,
//! outages, restarts, clock jumps, the amplifier's hold and safety nets, and
//! proof of play stored exactly once by the controller.

use std::collections::BTreeMap;
use std::time::Duration;

use dalaba_agent::core::{AmplifierCommand, CoreEvent, Output};
use dalaba_protocol::state::{DesiredState, PlayEvent, PlayOutcome, SyncReport, SyncState};

use crate::sim::net::PathConditions;
use crate::sim::plan::{DAY_MS, HOUR_MS, MIN_MS, Plan, SEC_MS, duration_ms, sim_time, wall};
use crate::sim::{Sim, SimConfig};

const SEC: Duration = Duration::from_secs(1);
const MS: Duration = Duration::from_millis(1);
const WARMUP: Duration = Duration::from_secs(2);
const HOLD: Duration = Duration::from_secs(5);

/// One agent with `state` published, driven until it reports it up to date.
fn synced(config: SimConfig, state: DesiredState) -> Sim {
    let version = state.version;
    let mut sim = Sim::new(config);
    sim.publish(0, state);
    let up_to_date = SyncReport { version, state: SyncState::UpToDate };
    sim.run_until(60 * SEC, |s| s.controller.record(0).last_sync() == Some(&up_to_date)).expect("plan synced");
    sim
}

/// The events the controller stored, by entry id.
fn stored(sim: &Sim) -> BTreeMap<String, PlayEvent> {
    sim.controller.record(0).events.iter().map(|(id, (_, e))| (id.clone(), e.clone())).collect()
}

/// How many times each entry was started (first piece).
fn start_counts(sim: &Sim) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for (_, id, part) in sim.agent(0).starts() {
        if part == 0 {
            *counts.entry(id).or_insert(0) += 1;
        }
    }
    counts
}

fn jumps(sim: &Sim) -> Vec<i64> {
    let jumps = sim.agent(0).events().into_iter().filter_map(|(_, e)| match e {
        CoreEvent::ClockJumped { by_ms } => Some(by_ms),
        _ => None,
    });
    jumps.collect()
}

/// Drives until the controller holds every event the agent logged.
fn until_uploaded(sim: &mut Sim) {
    let deadline = sim.now() + 10 * 60 * SEC;
    sim.run_until(deadline, |s| s.agent(0).core.play_log().pending.is_empty()).expect("every event acknowledged");
}

#[test]
fn a_week_plays_every_item_once_on_time_and_a_controller_outage_changes_nothing() {
    let mut plan = Plan::new(1);
    for day in 0..7 {
        plan = plan.item(wall(day, 8, 0), 1).item(wall(day, 12, 30), 2).item(wall(day, 18, 15), 3);
    }
    let plan = plan.build();
    let path = PathConditions { delay: 50 * MS, jitter: Duration::ZERO, drop: 0.0, duplicate: 0.05 };
    let mut sim = synced(SimConfig { seed: 11, path, ..SimConfig::default() }, plan.clone());

    // Day 1: the acknowledgement of the 12:30 item's event is lost in a cut
    // (the event reaches the controller 50 ms after the item ends, the
    // acknowledgement would be back after 100 ms), so it is sent again.
    let end_of_item = sim_time(wall(1, 12, 30)) + Duration::from_millis(duration_ms(2));
    sim.cut(0, end_of_item + 75 * MS, 120 * SEC);
    // Day 5: the link is down while an item plays and ends.
    sim.cut(0, sim_time(wall(5, 18, 15)) + 10 * SEC, 600 * SEC);
    // Days 3 and 4: the controller is down.
    sim.drive_until(sim_time(wall(3, 0, 0)));
    sim.controller_down();
    sim.drive_until(sim_time(wall(5, 0, 0)));
    assert!(sim.controller.record(0).events.len() <= 9, "nothing reached a dead controller");
    sim.controller_up();
    sim.drive_until(sim_time(wall(7, 0, 0)));
    until_uploaded(&mut sim);

    // Every item started once, at its time to the millisecond.
    let starts = sim.agent(0).starts();
    assert_eq!(starts.len(), 21, "{starts:?}");
    for (entry, (t, id, _)) in plan.entries.iter().zip(&starts) {
        assert_eq!((id, *t), (&entry.id, sim_time(entry.start_ms)));
    }
    // The amplifier: off at start, then on a warm-up before each item and
    // off a hold after it, nothing else.
    let mut expected = vec![(Duration::ZERO, AmplifierCommand::Off)];
    for e in &plan.entries {
        let start = sim_time(e.start_ms);
        expected.push((start - WARMUP, AmplifierCommand::On));
        expected.push((start + Duration::from_millis(e.plays[0].duration_ms) + HOLD, AmplifierCommand::Off));
    }
    assert_eq!(sim.agent(0).switches(), expected);

    // The controller holds every event exactly once, whatever the link did.
    let stored = stored(&sim);
    assert_eq!(stored.len(), 21);
    for e in &plan.entries {
        let event = &stored[&e.id];
        assert_eq!(event.outcome, PlayOutcome::Completed, "{event:?}");
        assert_eq!(event.started_ms, Some(e.start_ms));
        assert_eq!(event.ended_ms, Some(e.start_ms + e.plays[0].duration_ms as i64));
        assert!(event.amplifier_confirmed, "{event:?}");
    }
    let record = sim.controller.record(0);
    assert!(record.duplicate_events >= 1, "the lost acknowledgement caused a resend");
    let outage_events: Vec<_> = record.events.values().filter(|(t, _)| *t >= sim_time(wall(5, 0, 0))).collect();
    assert!(outage_events.len() >= 6, "events of the outage uploaded after it: {}", outage_events.len());
    assert!(jumps(&sim).is_empty());
}

#[test]
fn a_restart_replays_nothing_and_logs_items_too_late_as_missed() {
    let plan = Plan::new(1)
        .item(wall(0, 8, 0), 1)
        .item(wall(0, 12, 0), 2)
        .item(wall(0, 12, 10), 1)
        .item(wall(0, 18, 0), 3)
        .build();
    let mut sim = synced(SimConfig::default(), plan);
    // Killed while the 12:00 item plays, back at 12:05: that item is more
    // than the grace period (60 s) late.
    sim.drive_until(sim_time(wall(0, 12, 0)) + 20 * SEC);
    sim.kill(0);
    sim.drive_until(sim_time(wall(0, 12, 5)));
    let fetches_before = sim.agent(0).outputs.iter().filter(|(_, o)| matches!(o, Output::Fetch { .. })).count();
    sim.restart(0);
    // Killed before 18:00, back 30 s after it: within grace, it plays late.
    sim.drive_until(sim_time(wall(0, 17, 59)));
    sim.kill(0);
    sim.drive_until(sim_time(wall(0, 18, 0)) + 30 * SEC);
    sim.restart(0);
    sim.drive_until(sim_time(wall(0, 19, 0)));
    until_uploaded(&mut sim);

    let counts = start_counts(&sim);
    assert!(counts.values().all(|n| *n == 1), "{counts:?}");
    let starts = sim.agent(0).starts();
    assert_eq!(starts.last().map(|s| s.0), Some(sim_time(wall(0, 18, 0)) + 30 * SEC));
    let fetches = sim.agent(0).outputs.iter().filter(|(_, o)| matches!(o, Output::Fetch { .. })).count();
    assert_eq!(fetches, fetches_before, "the cache survived the restarts");

    let stored = stored(&sim);
    let outcome = |id: &str| (stored[id].outcome, stored[id].reason.clone().unwrap_or_default());
    assert_eq!(outcome(&format!("1@{}", wall(0, 8, 0))).0, PlayOutcome::Completed);
    let (missed, reason) = outcome(&format!("2@{}", wall(0, 12, 0)));
    assert_eq!(missed, PlayOutcome::Missed);
    assert!(reason.contains("agent was not running"), "{reason}");
    assert_eq!(outcome(&format!("1@{}", wall(0, 12, 10))).0, PlayOutcome::Completed);
    let late = &stored[&format!("3@{}", wall(0, 18, 0))];
    assert_eq!(late.outcome, PlayOutcome::Completed);
    assert_eq!(late.started_ms, Some(wall(0, 18, 0) + 30 * SEC_MS));
    assert_eq!(sim.controller.record(0).duplicate_events, 0);
}

#[test]
fn a_clock_jump_forward_misses_the_skipped_hour_one_event_each() {
    let mut plan = Plan::new(1);
    for k in 0..19 {
        plan = plan.item(wall(0, 10, 0) + k * 10 * MIN_MS, 1);
    }
    let mut sim = synced(SimConfig::default(), plan.build());
    sim.drive_until(sim_time(wall(0, 10, 45)));
    sim.jump_clock(0, HOUR_MS);
    // The agent's clock now reads 11:45: 10:50 to 11:40 are gone.
    sim.drive_until(sim_time(wall(0, 12, 30)));
    until_uploaded(&mut sim);

    assert_eq!(jumps(&sim), vec![HOUR_MS]);
    let stored = stored(&sim);
    assert_eq!(stored.len(), 19);
    let missed: Vec<i64> =
        stored.values().filter(|e| e.outcome == PlayOutcome::Missed).map(|e| e.scheduled_ms).collect();
    let skipped: Vec<i64> = (0..6).map(|k| wall(0, 10, 50) + k * 10 * MIN_MS).collect();
    assert_eq!(missed, skipped);
    for e in stored.values().filter(|e| e.outcome == PlayOutcome::Missed) {
        assert!(e.reason.as_deref().is_some_and(|r| r.contains("clock jumped by +3600 s")), "{e:?}");
    }
    // Nothing fired at once: every start is at its time on the agent's clock.
    for (t, id, _) in sim.agent(0).starts() {
        let start_ms: i64 = id.split('@').nth(1).and_then(|s| s.parse().ok()).expect("id has a start");
        let skew = if start_ms < wall(0, 10, 45) { 0 } else { HOUR_MS };
        assert_eq!(sim_time(start_ms - skew), t, "{id}");
    }
    assert_eq!(start_counts(&sim).len(), 13);
}

#[test]
fn a_clock_jump_backward_fires_nothing_twice() {
    let mut plan = Plan::new(1);
    for k in 0..13 {
        plan = plan.item(wall(0, 10, 0) + k * 10 * MIN_MS, 1);
    }
    let mut sim = synced(SimConfig::default(), plan.build());
    sim.drive_until(sim_time(wall(0, 11, 5)));
    sim.jump_clock(0, -HOUR_MS);
    // The agent's clock reads 10:05 again; 10:10 to 11:00 already played.
    sim.drive_until(sim_time(wall(0, 13, 10)));
    until_uploaded(&mut sim);

    assert_eq!(jumps(&sim), vec![-HOUR_MS]);
    let counts = start_counts(&sim);
    assert_eq!(counts.len(), 13);
    assert!(counts.values().all(|n| *n == 1), "{counts:?}");
    let stored = stored(&sim);
    assert_eq!(stored.len(), 13);
    assert!(stored.values().all(|e| e.outcome == PlayOutcome::Completed));
    // 11:10 on the agent's clock came an hour later in real time.
    let eleven_ten = sim.agent(0).starts().into_iter().find(|(_, id, _)| *id == format!("1@{}", wall(0, 11, 10)));
    assert_eq!(eleven_ten.map(|s| s.0), Some(sim_time(wall(0, 12, 10))));
}

#[test]
fn back_to_back_items_within_the_hold_keep_the_amplifier_on() {
    // 30 s of audio from 09:00:00; the hold ends at 09:00:35, the next item
    // starts after it at 09:00:36, but its warm-up begins within it.
    let a = wall(0, 9, 0);
    let b = a + 36 * SEC_MS;
    let c = wall(0, 9, 10);
    let mut sim = synced(SimConfig::default(), Plan::new(1).item(a, 1).item(b, 2).item(c, 1).build());
    sim.drive_until(sim_time(wall(0, 10, 0)));

    let b_end = sim_time(b) + Duration::from_millis(duration_ms(2));
    let c_end = sim_time(c) + Duration::from_millis(duration_ms(1));
    use AmplifierCommand::{Off, On};
    assert_eq!(
        sim.agent(0).switches(),
        vec![
            (Duration::ZERO, Off),
            (sim_time(a) - WARMUP, On),
            (b_end + HOLD, Off),
            (sim_time(c) - WARMUP, On),
            (c_end + HOLD, Off)
        ]
    );
    assert_eq!(stored(&sim).values().filter(|e| e.outcome == PlayOutcome::Completed).count(), 3);
}

#[test]
fn an_entry_of_several_pieces_plays_them_in_order_and_logs_once() {
    let start = wall(0, 9, 0);
    let mut sim = synced(SimConfig::default(), Plan::new(1).pieces(start, &[1, 2]).build());
    sim.drive_until(sim_time(wall(0, 9, 5)));
    let starts = sim.agent(0).starts();
    let id = format!("1@{start}");
    assert_eq!(starts, vec![(sim_time(start), id.clone(), 0), (sim_time(start + 30 * SEC_MS), id.clone(), 1)]);
    let event = &stored(&sim)[&id];
    assert_eq!(event.outcome, PlayOutcome::Completed);
    assert_eq!((event.started_ms, event.ended_ms), (Some(start), Some(start + 75 * SEC_MS)));
    assert_eq!(sim.agent(0).switches().len(), 3, "one on, one off");
}

#[test]
fn the_amplifier_is_never_on_longer_than_max_on_time() {
    // One minute at most; the item lasts a minute, plus the warm-up.
    let start = wall(0, 9, 0);
    let plan = Plan::new(1).settings(|s| s.max_on_ms = 60_000).item(start, 3).build();
    let mut sim = synced(SimConfig::default(), plan);
    sim.drive_until(sim_time(wall(0, 9, 5)));

    let on_at = sim_time(start) - WARMUP;
    use AmplifierCommand::{Off, On};
    assert_eq!(sim.agent(0).switches(), vec![(Duration::ZERO, Off), (on_at, On), (on_at + 60 * SEC, Off)]);
    let stops: Vec<_> = sim
        .agent(0)
        .outputs
        .iter()
        .filter(|(_, o)| matches!(o, Output::StopPlayback { .. }))
        .map(|(t, _)| *t)
        .collect();
    assert_eq!(stops, vec![on_at + 60 * SEC]);
    let event = &stored(&sim)[&format!("3@{start}")];
    assert_eq!(event.outcome, PlayOutcome::Failed);
    assert!(event.reason.as_deref().is_some_and(|r| r.contains("longer than allowed")), "{event:?}");
    let limit = sim.agent(0).events().into_iter().any(|(_, e)| matches!(e, CoreEvent::AmplifierMaxOnTime { .. }));
    assert!(limit);
}

#[test]
fn a_hung_player_is_given_up_and_the_amplifier_goes_off() {
    let start = wall(0, 9, 0);
    let mut sim = synced(SimConfig::default(), Plan::new(1).item(start, 1).item(start + HOUR_MS, 1).build());
    sim.agents[0].player_hangs = true;
    sim.drive_until(sim_time(wall(0, 9, 5)));
    // 30 s of audio, a tenth more, and 30 s of slack.
    let given_up = sim_time(start) + 63 * SEC;
    let switches = sim.agent(0).switches();
    assert_eq!(switches.last(), Some(&(given_up + HOLD, AmplifierCommand::Off)), "{switches:?}");
    let event = &stored(&sim)[&format!("1@{start}")];
    assert_eq!(event.outcome, PlayOutcome::Failed);
    assert!(event.reason.as_deref().is_some_and(|r| r.contains("did not finish")), "{event:?}");
}

#[test]
fn a_failing_amplifier_does_not_stop_the_audio() {
    let start = wall(0, 9, 0);
    let mut sim = synced(SimConfig::default(), Plan::new(1).item(start, 1).build());
    sim.agents[0].amplifier_fails = true;
    sim.drive_until(sim_time(wall(0, 9, 5)));
    let event = &stored(&sim)[&format!("1@{start}")];
    assert_eq!(event.outcome, PlayOutcome::Completed);
    assert!(!event.amplifier_confirmed);
    let failures =
        sim.agent(0).events().into_iter().filter(|(_, e)| matches!(e, CoreEvent::AmplifierFailed { .. })).count();
    assert_eq!(failures, 2, "the switch on and the switch off");
}

#[test]
fn content_not_yet_cached_fails_its_item_and_sync_says_downloading() {
    let start = wall(0, 0, 1);
    let config = SimConfig { download_delay: Duration::from_millis(2 * DAY_MS as u64), ..SimConfig::default() };
    let mut sim = Sim::new(config);
    sim.publish(0, Plan::new(1).item(start, 1).build());
    sim.drive_until(sim_time(wall(0, 0, 5)));
    let downloading = SyncState::Downloading { done: 0, total: 3 };
    assert_eq!(sim.controller.record(0).last_sync().map(|r| &r.state), Some(&downloading));
    let event = &stored(&sim)[&format!("1@{start}")];
    assert_eq!(event.outcome, PlayOutcome::Failed);
    assert!(event.reason.as_deref().is_some_and(|r| r.contains("not in the cache")), "{event:?}");
    assert!(sim.agent(0).starts().is_empty());
}
