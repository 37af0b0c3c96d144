//! Live and emergency sessions under the simulation: an emergency in the
//! middle of a broadcast week stops the scheduled item at once, plays, and
//! hands the loudspeaker back to the schedule, which resumes the item or
//! logs it as preempted; signed commands are refused and reported; a
//! reconnect mid-session rejoins it without a break.

use std::time::Duration;

use dalaba_agent::core::{AmplifierCommand, Output};
use dalaba_protocol::enrol::{SignatureAlgorithm, SigningKeyInfo};
use dalaba_protocol::link::ControllerMessage;
use dalaba_protocol::live::{
    Command, CommandAction, EMERGENCY_WARMUP_MS, LiveStart, LiveState, LiveStop, RefusalCode, SignedCommand,
};
use dalaba_protocol::state::{PlayOutcome, Priority, SyncReport, SyncState};
use ed25519_dalek::{Signer, SigningKey};

use crate::sim::plan::{Plan, sim_time, wall};
use crate::sim::{Sim, SimConfig};

const SEC: Duration = Duration::from_secs(1);
const FRAME: Duration = Duration::from_millis(20);
const STREAM: u32 = 7;

fn key() -> SigningKey {
    SigningKey::from_bytes(&[42u8; 32])
}

fn key_info() -> SigningKeyInfo {
    SigningKeyInfo {
        algorithm: SignatureAlgorithm::Ed25519,
        key_id: "county-1".into(),
        public_key: hex::encode(key().verifying_key().to_bytes()),
    }
}

fn signed(command: &Command) -> SignedCommand {
    let payload = serde_json::to_string(command).expect("json");
    let signature = hex::encode(key().sign(payload.as_bytes()).to_bytes());
    SignedCommand { payload, algorithm: SignatureAlgorithm::Ed25519, key_id: "county-1".into(), signature }
}

fn command(sim: &Sim, id: &str, action: CommandAction) -> Command {
    let now = sim.clock.wall_ms(0);
    Command { id: id.into(), agent_id: sim.agent(0).id.clone(), issued_at_ms: now, expires_at_ms: now + 30_000, action }
}

fn emergency(session: &str) -> CommandAction {
    CommandAction::LiveStart(LiveStart {
        session_id: session.into(),
        stream_id: STREAM,
        priority: Priority::Emergency,
        title: "防汛紧急通知".into(),
        volume: 100,
        gain_db: -2.0,
        warmup_ms: EMERGENCY_WARMUP_MS,
        max_duration_ms: 3_600_000,
    })
}

fn stop(session: &str) -> CommandAction {
    CommandAction::LiveStop(LiveStop { session_id: session.into(), reason: "alert over".into() })
}

fn order(sim: &mut Sim, command: &Command) {
    sim.send_to_agent(0, ControllerMessage::Command(signed(command)));
}

/// The controller streams live audio for `secs` seconds, a second at a
/// time (the path keeps order, so one second's frames go out at once).
fn stream_for(sim: &mut Sim, seq: &mut u32, secs: u32) {
    for _ in 0..secs {
        sim.stream(0, STREAM, *seq, 50, FRAME);
        *seq += 50;
        sim.drive_for(SEC);
    }
}

/// A week of two notices a day, synced, with the command key pinned.
fn week() -> Sim {
    let mut plan = Plan::new(1);
    for day in 0..7 {
        plan = plan.item(wall(day, 8, 0), 3).item(wall(day, 12, 0), 1);
    }
    let state = plan.build();
    let mut sim = Sim::with_agents(SimConfig::default(), |_, c| c.command_key = Some(key_info()));
    sim.publish(0, state);
    let up_to_date = SyncReport { version: 1, state: SyncState::UpToDate };
    sim.run_until(60 * SEC, |s| s.controller.record(0).last_sync() == Some(&up_to_date)).expect("plan synced");
    sim
}

fn live_states(sim: &Sim) -> Vec<(Duration, LiveState)> {
    sim.controller.record(0).live.iter().map(|(t, r)| (*t, r.state.clone())).collect()
}

#[test]
fn an_emergency_in_the_middle_of_a_week_interrupts_an_item_which_then_resumes() {
    let mut sim = week();
    let item = format!("3@{}", wall(3, 8, 0));
    sim.drive_until(sim_time(wall(3, 8, 0)) + 20 * SEC);
    let sent = sim.now();
    let c = command(&sim, "cmd-1", emergency("E1"));
    order(&mut sim, &c);
    let mut seq = 0;
    stream_for(&mut sim, &mut seq, 30);
    let c = command(&sim, "cmd-2", stop("E1"));
    let stop_sent = sim.now();
    order(&mut sim, &c);
    sim.drive_until(sim_time(wall(7, 0, 0)));

    let agent = sim.agent(0);
    let stopped = agent.outputs.iter().find_map(|(t, o)| match o {
        Output::StopPlayback { entry_id, .. } if *entry_id == item => Some(*t),
        _ => None,
    });
    let stopped = stopped.expect("the item was stopped");
    assert!(stopped - sent < Duration::from_millis(200), "stopped {:?} after the command", stopped - sent);
    let offs: Vec<_> = agent
        .switches()
        .into_iter()
        .filter(|(t, c)| *t > sent && *t < stop_sent + 5 * SEC && *c == AmplifierCommand::Off)
        .collect();
    assert!(offs.is_empty(), "the amplifier stayed on through the switch-over: {offs:?}");
    let resumed = agent.outputs.iter().find_map(|(t, o)| match o {
        Output::StartPlayback { entry_id, offset_ms, .. } if *entry_id == item && *offset_ms > 0 => {
            Some((*t, *offset_ms))
        }
        _ => None,
    });
    let (at, offset_ms) = resumed.expect("the item resumed");
    assert!(at - stop_sent < 3 * SEC, "back on schedule {:?} after the stop", at - stop_sent);
    assert!((19_500..=20_500).contains(&offset_ms), "from where it stopped: {offset_ms} ms");

    let states = live_states(&sim);
    assert!(matches!(states[0].1, LiveState::Receiving { .. }), "{states:?}");
    assert!(matches!(states[1].1, LiveState::Playing { .. }), "{states:?}");
    let Some((_, LiveState::Ended { started_ms, ended_ms, frames_received, frames_lost, reason })) = states.last()
    else {
        panic!("no session report: {states:?}")
    };
    assert_eq!((*frames_received, *frames_lost), (1500, 0));
    assert_eq!(reason, "stopped: alert over");
    assert!(started_ms.is_some_and(|s| ended_ms - s >= 29_000), "{states:?}");

    // Proof of play: every occurrence once, all completed; the interrupted
    // one says so.
    let events = &sim.controller.record(0).events;
    assert_eq!(events.len(), 14, "{:?}", events.keys());
    assert!(events.values().all(|(_, e)| e.outcome == PlayOutcome::Completed), "{events:?}");
    let reason = events[&item].1.reason.clone().unwrap_or_default();
    assert!(reason.contains("resumed") && reason.contains("防汛紧急通知"), "{reason}");
    assert_eq!(events[&item].1.started_ms, Some(wall(3, 8, 0)));
}

#[test]
fn an_item_whose_window_passes_during_an_emergency_is_logged_as_preempted() {
    let mut sim = week();
    let item = format!("1@{}", wall(1, 12, 0));
    sim.drive_until(sim_time(wall(1, 12, 0)) + 10 * SEC);
    let c = command(&sim, "cmd-1", emergency("E1"));
    order(&mut sim, &c);
    let mut seq = 0;
    // Longer than the item's end (12:00:30) plus the grace of 60 s.
    stream_for(&mut sim, &mut seq, 120);
    let c = command(&sim, "cmd-2", stop("E1"));
    order(&mut sim, &c);
    sim.drive_until(sim_time(wall(2, 13, 0)));
    let events = &sim.controller.record(0).events;
    let e = &events[&item].1;
    assert_eq!(e.outcome, PlayOutcome::Preempted, "{e:?}");
    assert_eq!(e.started_ms, Some(wall(1, 12, 0)));
    assert!(e.reason.as_deref().is_some_and(|r| r.contains("preempted by emergency")), "{e:?}");
    assert_eq!(
        events.values().filter(|(_, e)| e.outcome == PlayOutcome::Completed).count(),
        5,
        "the others of days 0 to 2"
    );
}

#[test]
fn bad_commands_are_refused_and_reported_and_a_replay_survives_a_restart() {
    let mut sim = week();
    sim.drive_for(10 * SEC);
    let good = command(&sim, "cmd-1", emergency("E1"));
    let mut forged = signed(&good);
    forged.payload = forged.payload.replace("防汛", "演习");
    sim.send_to_agent(0, ControllerMessage::Command(forged));
    sim.drive_for(SEC);
    order(&mut sim, &good);
    let mut seq = 0;
    stream_for(&mut sim, &mut seq, 2);
    let c = command(&sim, "cmd-2", stop("E1"));
    order(&mut sim, &c);
    sim.drive_for(10 * SEC);
    sim.kill(0);
    sim.drive_for(SEC);
    sim.restart(0);
    sim.run_until(sim.now() + 60 * SEC, |s| s.controller.is_present(0)).expect("back");
    order(&mut sim, &good);
    sim.drive_for(5 * SEC);
    let refused: Vec<RefusalCode> = sim.controller.record(0).refused.iter().map(|(_, r)| r.reason).collect();
    assert_eq!(refused, vec![RefusalCode::BadSignature, RefusalCode::Replayed]);
    let starts = sim.agent(0).outputs.iter().filter(|(_, o)| matches!(o, Output::StartLive { .. })).count();
    assert_eq!(starts, 1);
}

#[test]
fn a_reconnect_mid_session_rejoins_without_a_break() {
    let mut sim = week();
    sim.drive_for(10 * SEC);
    let c = command(&sim, "cmd-1", emergency("E1"));
    order(&mut sim, &c);
    let mut seq = 0;
    stream_for(&mut sim, &mut seq, 5);
    // The link is cut for 3 s; the agent notices when the controller
    // closes it and reconnects; the controller starts the session again.
    let cut_at = sim.now();
    sim.cut(0, cut_at, 3 * SEC);
    sim.drive_for(3 * SEC);
    seq += 150;
    sim.controller_down();
    sim.controller_up();
    sim.run_until(sim.now() + 30 * SEC, |s| s.controller.is_present(0)).expect("reconnected");
    let c = command(&sim, "cmd-2", emergency("E1"));
    order(&mut sim, &c);
    stream_for(&mut sim, &mut seq, 5);
    let c = command(&sim, "cmd-3", stop("E1"));
    order(&mut sim, &c);
    sim.drive_for(5 * SEC);
    let agent = sim.agent(0);
    let lives: Vec<_> =
        agent.outputs.iter().filter(|(_, o)| matches!(o, Output::StartLive { .. } | Output::StopLive { .. })).collect();
    assert_eq!(lives.len(), 2, "one start, one stop: {lives:?}");
    let states = live_states(&sim);
    let Some((_, LiveState::Ended { frames_received, frames_lost, reason, .. })) = states.last() else {
        panic!("{states:?}")
    };
    assert_eq!(reason, "stopped: alert over");
    assert_eq!((*frames_received, *frames_lost), (500, 150), "{states:?}");
}
