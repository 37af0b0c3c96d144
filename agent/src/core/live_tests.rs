//! Unit tests of live sessions and signed commands, on virtual time.

use std::time::Duration;

use dalaba_protocol::enrol::SignatureAlgorithm;
use dalaba_protocol::link::{AgentMessage, ControllerMessage};
use dalaba_protocol::live::{
    Command, CommandAction, CommandRefusal, EMERGENCY_WARMUP_MS, LiveReport, LiveStart, LiveState, LiveStop,
    RefusalCode, SignedCommand,
};
use dalaba_protocol::state::{PlayOutcome, Priority};

use super::super::command::tests::{key_info, sign};
use super::super::testing::{Harness, WALL0_MS, events, logged, plan, restored, sent, starts, switches};
use super::super::{AmplifierCommand, CoreConfig, CoreEvent, LinkDown, Output, PersistRequest, PlaybackNews, Restore};
use super::*;

const SEC: Duration = Duration::from_secs(1);

/// Heartbeats every 5 min: the link stays up for the test without acks.
const LONG_HEARTBEAT: u64 = 300_000;

fn config() -> CoreConfig {
    let mut config = CoreConfig::new("ag-1", "0.1.0", Default::default());
    config.command_key = Some(key_info());
    config
}

fn harness() -> Harness {
    let mut h = Harness::with_config(config());
    h.connect(LONG_HEARTBEAT);
    h
}

fn start(h: &Harness, id: &str, session: &str, priority: Priority) -> Command {
    let now = h.now().wall_ms;
    Command {
        id: id.into(),
        agent_id: "ag-1".into(),
        issued_at_ms: now,
        expires_at_ms: now + 30_000,
        action: CommandAction::LiveStart(LiveStart {
            session_id: session.into(),
            stream_id: 7,
            priority,
            title: format!("{session} title"),
            volume: 90,
            gain_db: -1.0,
            warmup_ms: EMERGENCY_WARMUP_MS,
            max_duration_ms: 3_600_000,
        }),
    }
}

fn stop(h: &Harness, id: &str, session: &str) -> Command {
    Command {
        action: CommandAction::LiveStop(LiveStop { session_id: session.into(), reason: "by 张三".into() }),
        ..start(h, id, session, Priority::Emergency)
    }
}

fn send(h: &mut Harness, signed: SignedCommand) -> Vec<Output> {
    h.recv(ControllerMessage::Command(signed))
}

fn order(h: &mut Harness, command: &Command) -> Vec<Output> {
    send(h, sign(command))
}

fn order_start(h: &mut Harness, id: &str, session: &str, priority: Priority) -> Vec<Output> {
    let c = start(h, id, session, priority);
    order(h, &c)
}

fn order_stop(h: &mut Harness, id: &str, session: &str) -> Vec<Output> {
    let c = stop(h, id, session);
    order(h, &c)
}

fn reports(out: &[Output]) -> Vec<LiveReport> {
    sent(out).into_iter().filter_map(|m| if let AgentMessage::Live(r) = m { Some(r) } else { None }).collect()
}

fn refusals(out: &[Output]) -> Vec<CommandRefusal> {
    let refused =
        sent(out).into_iter().filter_map(|m| if let AgentMessage::CommandRefused(r) = m { Some(r) } else { None });
    refused.collect()
}

fn refused(out: &[Output]) -> RefusalCode {
    let r = refusals(out);
    assert_eq!(r.len(), 1, "{out:?}");
    assert!(events(out).iter().any(|e| matches!(e, CoreEvent::CommandRefused(_))), "{out:?}");
    r[0].reason
}

fn live_start_at(out: &[Output]) -> Option<i64> {
    out.iter().find_map(|o| if let Output::StartLive { at_ms, .. } = o { Some(*at_ms) } else { None })
}

fn ended(out: &[Output]) -> Option<(Option<i64>, u64, u64, String)> {
    reports(out).into_iter().find_map(|r| match r.state {
        LiveState::Ended { started_ms, frames_received, frames_lost, reason, .. } => {
            Some((started_ms, frames_received, frames_lost, reason))
        }
        _ => None,
    })
}

#[test]
fn bad_commands_are_refused_and_reported_with_their_codes() {
    let mut h = harness();
    let good = start(&h, "c1", "L1", Priority::Emergency);

    let mut tampered = sign(&good);
    tampered.payload = tampered.payload.replace("L1 title", "L2 title");
    assert_eq!(refused(&send(&mut h, tampered)), RefusalCode::BadSignature);

    let mut other_key = sign(&good);
    other_key.key_id = "k0".into();
    let out = send(&mut h, other_key);
    assert_eq!(refused(&out), RefusalCode::UnknownKey);
    assert!(refusals(&out)[0].message.contains("\"k1\""), "{out:?}");

    let mut malformed = sign(&good);
    malformed.payload = "{\"id\":\"c1\"}".into();
    malformed.signature = sign_raw(&malformed.payload);
    assert_eq!(refused(&send(&mut h, malformed)), RefusalCode::Invalid);

    let mut elsewhere = good.clone();
    elsewhere.agent_id = "ag-2".into();
    let out = order(&mut h, &elsewhere);
    assert_eq!(refused(&out), RefusalCode::WrongAgent);
    assert_eq!(refusals(&out)[0].command_id.as_deref(), Some("c1"));

    let mut stale = good.clone();
    stale.issued_at_ms -= 60_000;
    stale.expires_at_ms -= 60_000;
    assert_eq!(refused(&order(&mut h, &stale)), RefusalCode::Expired);

    let mut paging_as_scheduled = start(&h, "c5", "L5", Priority::Scheduled);
    paging_as_scheduled.id = "c5".into();
    let out = order(&mut h, &paging_as_scheduled);
    assert_eq!(refused(&out), RefusalCode::Invalid);
    assert_eq!(refusals(&out)[0].session_id.as_deref(), Some("L5"));

    // None of these touched the loudspeaker; the good one does, once.
    assert!(h.core.live_on_air().is_none());
    let out = order(&mut h, &good);
    assert!(refusals(&out).is_empty(), "{out:?}");
    assert_eq!(h.core.live_on_air(), Some(("L1", 7)));
    assert!(
        out.iter().any(|o| matches!(o, Output::Persist(PersistRequest::Commands(s)) if s.ids.contains_key("c1"))),
        "the id is persisted: {out:?}"
    );
    assert_eq!(refused(&order(&mut h, &good)), RefusalCode::Replayed);
}

fn sign_raw(payload: &str) -> String {
    use ed25519_dalek::Signer;
    hex::encode(super::super::command::tests::signing_key().sign(payload.as_bytes()).to_bytes())
}

#[test]
fn only_the_pinned_algorithm_and_key_are_trusted() {
    // SM2 is not on the wire yet; the algorithm check is the key's own.
    let key = PinnedKey::from_info(Some(&key_info()));
    assert!(matches!(key, PinnedKey::Ed25519 { .. }));
    let mut h = Harness::with_config(CoreConfig::new("ag-1", "0.1.0", Default::default()));
    h.connect(LONG_HEARTBEAT);
    let c = start(&h, "c1", "L1", Priority::Emergency);
    let out = order(&mut h, &c);
    assert_eq!(refused(&out), RefusalCode::UnknownKey, "no pinned key: nothing is trusted");
    assert_eq!(sign(&c).algorithm, SignatureAlgorithm::Ed25519);
}

#[test]
fn expiry_is_judged_on_the_clock_corrected_by_the_measured_offset() {
    // The controller is 60 s ahead. A command that expired 20 s ago on its
    // clock still looks valid on the agent's raw clock.
    let mut h = harness();
    let hb = h.fire_next().into_iter().find_map(|o| match o {
        Output::Send(m @ AgentMessage::Heartbeat(_)) => Some(m),
        _ => None,
    });
    h.ack(&hb.expect("a heartbeat"), 60_000, 100);
    assert_eq!(h.core.clock_offset_ms(), Some(60_000));
    let mut c = start(&h, "c1", "L1", Priority::Emergency);
    c.issued_at_ms += 10_000;
    c.expires_at_ms += 10_000;
    assert_eq!(refused(&order(&mut h, &c)), RefusalCode::Expired);

    // The controller is 60 s behind: a fresh command looks expired on the
    // raw clock, and is not.
    let mut h = harness();
    let hb = h.fire_next().into_iter().find_map(|o| match o {
        Output::Send(m @ AgentMessage::Heartbeat(_)) => Some(m),
        _ => None,
    });
    h.ack(&hb.expect("a heartbeat"), -60_000, 100);
    let mut c = start(&h, "c1", "L1", Priority::Emergency);
    c.issued_at_ms -= 60_000;
    c.expires_at_ms -= 60_000;
    assert!(refusals(&order(&mut h, &c)).is_empty());
}

#[test]
fn a_replay_after_a_restart_is_refused() {
    let mut h = harness();
    let c = start(&h, "c1", "L1", Priority::Emergency);
    let out = order(&mut h, &c);
    let seen = out
        .iter()
        .find_map(|o| if let Output::Persist(PersistRequest::Commands(s)) = o { Some(s.clone()) } else { None })
        .expect("persisted");
    let mut h2 = Harness::with_config(config());
    h2.elapsed = h.elapsed;
    h2.restore(Restore { commands: seen, ..Restore::default() });
    h2.connect(LONG_HEARTBEAT);
    assert_eq!(refused(&order(&mut h2, &c)), RefusalCode::Replayed);
}

#[test]
fn an_emergency_stops_the_scheduled_item_at_once_and_the_item_resumes_where_it_stopped() {
    let mut h = Harness::with_config(config());
    h.restore(restored(plan(1, &[("a", 10, 60), ("b", 200, 10)])));
    h.connect(LONG_HEARTBEAT);
    h.advance_to(10 * SEC);
    h.playback(PlaybackNews::Started { entry_id: "a".into(), part: 0, at_ms: WALL0_MS + 10_000 });
    h.advance_to(25 * SEC);

    let out = order_start(&mut h, "c1", "L1", Priority::Emergency);
    let stop_at = out.iter().position(|o| matches!(o, Output::StopPlayback { entry_id, .. } if entry_id == "a"));
    let live_at = out.iter().position(|o| matches!(o, Output::StartLive { .. }));
    assert!(stop_at.is_some_and(|s| live_at.is_some_and(|l| s < l)), "stopped in the same step, first: {out:?}");
    assert!(switches(&out).is_empty(), "the amplifier is on already");
    assert_eq!(live_start_at(&out), Some(h.now().wall_ms), "on for long enough: no extra wait");
    assert_eq!(reports(&out)[0].state, LiveState::Receiving { amplifier_on: false });

    let out = h.live(LiveNews::Started { session_id: "L1".into(), at_ms: h.now().wall_ms });
    assert_eq!(reports(&out)[0].state, LiveState::Playing { since_ms: h.now().wall_ms, amplifier_on: false });
    let mut out = Vec::new();
    for seq in 0..30 {
        out.extend(h.advance(SEC));
        out.extend(h.live_frame(7, seq));
    }
    assert!(starts(&out).is_empty() && switches(&out).is_empty(), "nothing scheduled meanwhile: {out:?}");
    // Stop at 57 s: inside a's window (10 + 60 + 60 s grace).
    let out = order_stop(&mut h, "c2", "L1");
    assert!(out.iter().any(|o| matches!(o, Output::StopLive { session_id, .. } if session_id == "L1")));
    let (started, received, lost, reason) = ended(&out).expect("a session report");
    assert_eq!((started, received, lost), (Some(WALL0_MS + 25_000), 30, 0));
    assert_eq!(reason, "stopped: by 张三");
    let resumed = out.iter().find_map(|o| match o {
        Output::StartPlayback { entry_id, offset_ms, duration_ms, .. } if entry_id == "a" => {
            Some((*offset_ms, *duration_ms))
        }
        _ => None,
    });
    assert_eq!(resumed, Some((15_000, 45_000)), "from where it stopped: {out:?}");
    h.playback(PlaybackNews::Started { entry_id: "a".into(), part: 0, at_ms: h.now().wall_ms });
    h.advance(45 * SEC);
    let out = h.playback(PlaybackNews::Finished { entry_id: "a".into(), part: 0 });
    let events = logged(&out);
    assert_eq!(events[0].outcome, PlayOutcome::Completed);
    assert_eq!(events[0].started_ms, Some(WALL0_MS + 10_000), "its first start");
    assert!(events[0].reason.as_deref().is_some_and(|r| r.contains("resumed") && r.contains("L1")), "{events:?}");
}

/// The resume offset a start of `entry` in `out` asks for.
fn resume_offset(out: &[Output], entry: &str) -> Option<u64> {
    out.iter().find_map(|o| match o {
        Output::StartPlayback { entry_id, offset_ms, .. } if entry_id == entry => Some(*offset_ms),
        _ => None,
    })
}

/// An output that stalled plays behind the wall clock: the player's count
/// of what went out, not the time since the start, says where to resume,
/// and counts add up over two interruptions. News too late, or about
/// another piece, changes nothing.
#[test]
fn a_preempted_item_resumes_from_what_the_player_counted_out() {
    let mut h = Harness::with_config(config());
    h.restore(restored(plan(1, &[("a", 10, 60)])));
    h.connect(LONG_HEARTBEAT);
    h.advance_to(10 * SEC);
    h.playback(PlaybackNews::Started { entry_id: "a".into(), part: 0, at_ms: WALL0_MS + 10_000 });
    h.advance_to(25 * SEC);
    order_start(&mut h, "c1", "L1", Priority::Emergency);
    // 15 s by the clock, 14.2 s by the player: it stalled 0.8 s.
    h.playback(PlaybackNews::Stopped { entry_id: "a".into(), part: 0, played_ms: 14_200 });
    h.playback(PlaybackNews::Stopped { entry_id: "a".into(), part: 1, played_ms: 1 });
    h.playback(PlaybackNews::Stopped { entry_id: "b".into(), part: 0, played_ms: 1 });
    h.advance(5 * SEC);
    let out = order_stop(&mut h, "c2", "L1");
    assert_eq!(resume_offset(&out, "a"), Some(14_200), "{out:?}");
    // News of the first stop that comes after the resumption is stale.
    h.playback(PlaybackNews::Stopped { entry_id: "a".into(), part: 0, played_ms: 2_000 });
    h.playback(PlaybackNews::Started { entry_id: "a".into(), part: 0, at_ms: h.now().wall_ms });
    h.advance(10 * SEC);
    order_start(&mut h, "c3", "L2", Priority::Emergency);
    h.playback(PlaybackNews::Stopped { entry_id: "a".into(), part: 0, played_ms: 9_500 });
    h.advance(5 * SEC);
    let out = order_stop(&mut h, "c4", "L2");
    assert_eq!(resume_offset(&out, "a"), Some(23_700), "14.2 s and then 9.5 s: {out:?}");

    // Without the player's count, the wall clock: 10 s more.
    h.playback(PlaybackNews::Started { entry_id: "a".into(), part: 0, at_ms: h.now().wall_ms });
    h.advance(10 * SEC);
    order_start(&mut h, "c5", "L3", Priority::Emergency);
    h.advance(5 * SEC);
    let out = order_stop(&mut h, "c6", "L3");
    assert_eq!(resume_offset(&out, "a"), Some(33_700), "{out:?}");
}

#[test]
fn an_item_whose_window_passed_is_logged_as_preempted() {
    let mut h = Harness::with_config(config());
    h.restore(restored(plan(1, &[("a", 10, 30), ("b", 60, 30)])));
    h.connect(LONG_HEARTBEAT);
    h.advance_to(10 * SEC);
    h.playback(PlaybackNews::Started { entry_id: "a".into(), part: 0, at_ms: WALL0_MS + 10_000 });
    h.advance_to(15 * SEC);
    order_start(&mut h, "c1", "L1", Priority::Emergency);
    let mut out = Vec::new();
    for seq in 0..150 {
        out.extend(h.advance(SEC));
        out.extend(h.live_frame(7, seq));
    }
    // b's grace ran out during the session: missed, naming it.
    let missed = logged(&out);
    assert_eq!(missed.len(), 1, "{missed:?}");
    assert_eq!((missed[0].id.as_str(), missed[0].outcome), ("b", PlayOutcome::Missed));
    assert!(missed[0].reason.as_deref().is_some_and(|r| r.contains("emergency “L1 title”")), "{missed:?}");
    let out = order_stop(&mut h, "c2", "L1");
    let events = logged(&out);
    assert_eq!(events.len(), 1, "{out:?}");
    assert_eq!(events[0].outcome, PlayOutcome::Preempted);
    assert_eq!((events[0].started_ms, events[0].ended_ms), (Some(WALL0_MS + 10_000), Some(WALL0_MS + 15_000)));
    assert!(events[0].reason.as_deref().is_some_and(|r| r.contains("preempted by emergency")), "{events:?}");
    assert!(starts(&out).is_empty());
    // The amplifier goes off after the hold.
    assert_eq!(switches(&h.advance(6 * SEC)), vec![AmplifierCommand::Off]);
}

#[test]
fn with_the_amplifier_off_an_emergency_warms_it_up_for_a_second() {
    let mut h = harness();
    let out = order_start(&mut h, "c1", "L1", Priority::Emergency);
    assert_eq!(switches(&out), vec![AmplifierCommand::On]);
    assert_eq!(live_start_at(&out), Some(h.now().wall_ms + 1_000));
    let out = h.confirm(AmplifierCommand::On);
    assert_eq!(reports(&out)[0].state, LiveState::Receiving { amplifier_on: true }, "the confirmation is reported");
    // Quiet hours are not the agent's concern: a plan never blocks a session.
}

#[test]
fn equal_priority_is_refused_naming_the_holder_and_an_emergency_preempts_paging() {
    let mut h = harness();
    order_start(&mut h, "c1", "P1", Priority::Paging);
    h.advance(5 * SEC);
    let out = order_start(&mut h, "c2", "P2", Priority::Paging);
    assert_eq!(refused(&out), RefusalCode::Busy);
    let message = &refusals(&out)[0].message;
    assert!(message.contains("paging “P1 title” (session P1)"), "{message}");
    assert_eq!(h.core.live_on_air(), Some(("P1", 7)));

    let out = order_start(&mut h, "c3", "E1", Priority::Emergency);
    let (_, _, _, reason) = ended(&out).expect("the page ends");
    assert_eq!(reason, "preempted by emergency “E1 title” (session E1)");
    assert_eq!(live_start_at(&out), Some(h.now().wall_ms), "the amplifier is warm");
    assert!(switches(&out).is_empty() && starts(&out).is_empty(), "{out:?}");
    assert_eq!(h.core.live_on_air(), Some(("E1", 7)));

    let out = order_start(&mut h, "c4", "P3", Priority::Paging);
    assert_eq!(refused(&out), RefusalCode::Busy, "paging waits for no emergency");
    assert!(refusals(&out)[0].message.contains("emergency “E1 title”"));
}

#[test]
fn a_paging_session_does_not_interrupt_a_scheduled_emergency_item() {
    let mut state = plan(1, &[("a", 10, 60)]);
    state.entries[0].priority = Priority::Emergency;
    let mut h = Harness::with_config(config());
    h.restore(restored(state));
    h.connect(LONG_HEARTBEAT);
    h.advance_to(11 * SEC);
    let out = order_start(&mut h, "c1", "P1", Priority::Paging);
    assert_eq!(refused(&out), RefusalCode::Busy);
    assert!(refusals(&out)[0].message.contains("scheduled item “a” (a)"), "{out:?}");
}

#[test]
fn silence_and_max_duration_end_a_session() {
    let mut h = harness();
    order_start(&mut h, "c1", "L1", Priority::Emergency);
    for seq in [0, 1, 2, 4, 5] {
        h.advance(Duration::from_millis(20));
        h.live_frame(7, seq);
    }
    h.live_frame(8, 3); // another stream's frame keeps nothing alive
    let out = h.advance(Duration::from_millis(9_999));
    assert!(ended(&out).is_none());
    let out = h.advance(Duration::from_millis(1));
    assert_eq!(ended(&out), Some((None, 5, 1, "silence".to_string())));
    assert!(events(&out).iter().any(|e| matches!(e, CoreEvent::LiveEnded { .. })));

    let mut h = harness();
    let mut c = start(&h, "c1", "L1", Priority::Emergency);
    if let CommandAction::LiveStart(s) = &mut c.action {
        s.max_duration_ms = 5_000;
    }
    order(&mut h, &c);
    let mut out = Vec::new();
    for seq in 0..300 {
        out.extend(h.advance(Duration::from_millis(20)));
        out.extend(h.live_frame(7, seq));
    }
    let (_, received, _, reason) = ended(&out).expect("ended");
    assert_eq!((received, reason.as_str()), (249, "max duration"));
}

#[test]
fn a_fresh_start_for_the_session_on_the_air_changes_nothing() {
    let mut h = harness();
    order_start(&mut h, "c1", "L1", Priority::Emergency);
    h.advance(2 * SEC);
    h.live(LiveNews::Started { session_id: "L1".into(), at_ms: WALL0_MS + 1_000 });
    h.down(LinkDown::Closed("cut".into()));
    h.advance(2 * SEC);
    let out = h.connect(LONG_HEARTBEAT);
    assert!(reports(&out).iter().any(|r| matches!(r.state, LiveState::Playing { .. })), "state after the welcome");
    let out = order_start(&mut h, "c2", "L1", Priority::Emergency);
    let interrupting = out
        .iter()
        .any(|o| matches!(o, Output::StartLive { .. } | Output::StopLive { .. } | Output::SwitchAmplifier(_)));
    assert!(!interrupting, "{out:?}");
    assert_eq!(reports(&out)[0].state, LiveState::Playing { since_ms: WALL0_MS + 1_000, amplifier_on: false });
    assert!(events(&out).contains(&CoreEvent::LiveRejoined { session_id: "L1".into() }));
}

#[test]
fn a_report_made_while_the_link_is_down_goes_out_after_the_welcome() {
    let mut h = harness();
    order_start(&mut h, "c1", "L1", Priority::Emergency);
    h.down(LinkDown::Closed("cut".into()));
    let out = h.advance(11 * SEC);
    assert!(ended(&out).is_none(), "not sent without a link: {out:?}");
    assert!(out.iter().any(|o| matches!(o, Output::StopLive { .. })), "{out:?}");
    let out = h.connect(LONG_HEARTBEAT);
    assert_eq!(ended(&out).map(|e| e.3), Some("silence".to_string()));
}

#[test]
fn the_amplifier_max_on_time_ends_a_session() {
    let mut h = harness();
    let mut c = start(&h, "c1", "L1", Priority::Emergency);
    if let CommandAction::LiveStart(s) = &mut c.action {
        s.max_duration_ms = 24 * 3_600_000;
    }
    c.expires_at_ms = c.issued_at_ms + 30_000;
    order(&mut h, &c);
    let mut out = Vec::new();
    let mut seq = 0;
    while h.core.live_on_air().is_some() && h.elapsed < 3 * 3600 * SEC {
        out = h.advance(5 * SEC);
        out.extend(h.live_frame(7, seq));
        seq += 1;
    }
    let reasons: Vec<String> = events(&out)
        .into_iter()
        .filter_map(|e| if let CoreEvent::LiveEnded { reason, .. } = e { Some(reason) } else { None })
        .collect();
    assert_eq!(reasons, vec!["the amplifier reached its max on-time".to_string()]);
    assert!(h.elapsed <= 2 * 3600 * SEC + 5 * SEC, "{:?}", h.elapsed);
    assert!(switches(&out).contains(&AmplifierCommand::Off));
}

#[test]
fn frames_are_counted_by_sequence_number() {
    let check = |seqs: &[u32], received: u64, lost: u64| {
        let mut c = FrameCount::default();
        for &s in seqs {
            c.note(s);
        }
        assert_eq!((c.received, c.lost), (received, lost), "{seqs:?}");
    };
    check(&[0, 1, 2], 3, 0);
    check(&[0, 2, 1], 3, 0);
    check(&[0, 1, 1, 0, 3], 3, 1);
    check(&[u32::MAX, 0, 2], 3, 1);
    check(&[0, 10], 2, 9);
    check(&[0, 1_000_000], 2, 0);
    check(&[100, 10], 1, 0);
}
