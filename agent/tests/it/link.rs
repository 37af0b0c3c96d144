//! The agent link under the network simulation.

use std::time::Duration;

use dalaba_agent::core::{AmplifierCommand, CoreEvent, LinkState, Output};
use dalaba_protocol::link::{AmplifierState, Heartbeat};

use crate::sim::controller::ControllerConfig;
use crate::sim::net::PathConditions;
use crate::sim::{Sim, SimAgent, SimConfig, device};

const SEC: Duration = Duration::from_secs(1);
const MS: Duration = Duration::from_millis(1);
const HEARTBEAT: Duration = Duration::from_secs(15);
const BACKOFF_MAX: Duration = Duration::from_secs(30);
const HOUR: Duration = Duration::from_secs(3600);

fn agents(n: usize) -> SimConfig {
    SimConfig { agents: n, ..SimConfig::default() }
}

fn lossy_path() -> PathConditions {
    PathConditions { delay: 200 * MS, jitter: 100 * MS, drop: 0.05, duplicate: 0.02 }
}

/// Starts `config` and waits until every agent is welcomed.
fn connected(config: SimConfig) -> Sim {
    let mut sim = Sim::new(config);
    sim.run_until(60 * SEC, Sim::all_connected).expect("every agent welcomed within a minute");
    sim
}

fn count(agent: &SimAgent, wanted: impl Fn(&CoreEvent) -> bool) -> usize {
    agent.events().iter().filter(|(_, e)| wanted(e)).count()
}

fn first_event_after(agent: &SimAgent, after: Duration, wanted: impl Fn(&CoreEvent) -> bool) -> Option<Duration> {
    agent.events().into_iter().find(|(t, e)| *t > after && wanted(e)).map(|(t, _)| t)
}

/// Heartbeats as the controller received them, without network duplicates.
fn distinct_heartbeats(sim: &Sim, agent: usize) -> Vec<(Duration, Heartbeat)> {
    let mut beats = sim.controller.record(agent).heartbeats.clone();
    beats.dedup_by_key(|(_, hb)| *hb);
    beats
}

fn gaps(times: &[Duration]) -> Vec<Duration> {
    times.windows(2).map(|w| w[1] - w[0]).collect()
}

#[test]
fn amplifier_off_is_the_first_output() {
    let sim = Sim::new(agents(3));
    for agent in &sim.agents {
        assert_eq!(agent.outputs[0], (Duration::ZERO, Output::SwitchAmplifier(AmplifierCommand::Off)));
        assert_eq!(agent.outputs[1], (Duration::ZERO, Output::Connect));
    }
}

#[test]
fn agent_is_welcomed_and_heartbeats_at_the_interval_for_an_hour() {
    let mut sim = connected(agents(1));
    let welcomed = sim.now();
    assert!(welcomed < SEC, "{welcomed:?}");
    sim.drive_until(HOUR);

    let agent = sim.agent(0);
    assert_eq!(agent.core.link_state(), LinkState::Connected);
    assert_eq!(count(agent, |e| matches!(e, CoreEvent::Connected { .. })), 1);
    assert_eq!(count(agent, |e| matches!(e, CoreEvent::LinkLost { .. })), 0);
    assert!(sim.controller.is_present(0));

    let beats = distinct_heartbeats(&sim, 0);
    assert_eq!(beats.len() as u32, (HOUR - welcomed).as_secs() as u32 / 15);
    let times: Vec<Duration> = beats.iter().map(|(t, _)| *t).collect();
    assert!(gaps(&times).iter().all(|g| *g == HEARTBEAT), "{:?}", gaps(&times));
    let seqs: Vec<u64> = beats.iter().map(|(_, hb)| hb.seq).collect();
    assert_eq!(seqs, (1..=seqs.len() as u64).collect::<Vec<_>>());
}

#[test]
fn status_is_sent_after_welcome_and_on_device_change() {
    let mut sim = connected(agents(1));
    sim.drive_for(SEC);
    let statuses = &sim.controller.record(0).statuses;
    assert_eq!(statuses.len(), 1, "right after the welcome: {statuses:?}");
    assert!(statuses[0].0 >= sim.controller.record(0).welcomes[0]);
    assert_eq!(statuses[0].1.amplifier, AmplifierState::Off);
    assert_eq!(statuses[0].1.clock_offset_ms, None, "no heartbeat answered yet");

    sim.set_device(0, device(AmplifierState::On, 1 << 30));
    sim.drive_for(SEC);
    sim.set_device(0, device(AmplifierState::On, 1 << 30));
    sim.drive_for(SEC);
    let statuses = &sim.controller.record(0).statuses;
    assert_eq!(statuses.len(), 2, "one change, one status: {statuses:?}");
    assert_eq!(statuses[1].1.amplifier, AmplifierState::On);

    // The first acknowledged heartbeat makes the clock offset known (a
    // change), and a status follows at least every minute from then on.
    sim.drive_for(5 * 60 * SEC);
    let statuses = &sim.controller.record(0).statuses;
    assert_eq!(statuses[2].1.clock_offset_ms, Some(0), "{statuses:?}");
    let times: Vec<Duration> = statuses.iter().map(|(t, _)| *t).collect();
    assert!(statuses.len() >= 7, "{statuses:?}");
    assert!(gaps(&times).iter().all(|g| *g <= 60 * SEC), "{times:?}");
}

#[test]
fn link_cut_reconnects_with_growing_capped_backoff() {
    let mut sim = connected(agents(1));
    let (cut_at, cut_for) = (100 * SEC, 600 * SEC);
    sim.cut(0, cut_at, cut_for);
    sim.drive_until(cut_at + cut_for);

    let agent = sim.agent(0);
    let silent = first_event_after(agent, cut_at, |e| *e == CoreEvent::LinkSilent).expect("silence noticed");
    assert!(silent <= cut_at + 3 * HEARTBEAT, "declared dead at {silent:?}");

    let delays: Vec<_> = agent.reconnect_delays().into_iter().filter(|(t, ..)| *t > cut_at).collect();
    assert!(delays.len() >= 10, "{delays:?}");
    for (n, (_, after, attempt)) in delays.iter().enumerate() {
        assert_eq!(*attempt as usize, n + 1, "{delays:?}");
        let base = (SEC * 2u32.pow(n.min(10) as u32)).min(BACKOFF_MAX);
        assert!(
            *after >= base / 2 && *after <= base,
            "attempt {attempt}: {after:?} outside [{:?}, {base:?}]",
            base / 2
        );
    }

    // The last attempt into the cut times out after 10 s; the next waits at
    // most backoff_max.
    let back = sim.run_until(cut_at + cut_for + 10 * SEC + BACKOFF_MAX + SEC, Sim::all_connected);
    assert!(back.is_some(), "still not back at {:?}", sim.now());
}

#[test]
fn a_cut_shorter_than_the_silence_limit_keeps_the_link() {
    let mut sim = connected(agents(1));
    sim.cut(0, 100 * SEC, 20 * SEC);
    sim.drive_until(200 * SEC);
    let agent = sim.agent(0);
    assert_eq!(count(agent, |e| matches!(e, CoreEvent::LinkLost { .. })), 0);
    assert_eq!(agent.core.link_state(), LinkState::Connected);
}

#[test]
fn reconnects_of_many_agents_are_spread_by_jitter() {
    let mut sim = connected(agents(10));
    sim.drive_until(60 * SEC);
    // A controller restart resets every link at once.
    sim.controller_down();
    sim.controller_up();
    let welcomed_twice = |s: &Sim| s.agents.iter().all(|a| count(a, |e| matches!(e, CoreEvent::Connected { .. })) == 2);
    sim.run_until(70 * SEC, welcomed_twice).expect("all back");

    let mut first: Vec<Duration> = sim.agents.iter().map(|a| a.connects()[1]).collect();
    first.sort();
    first.dedup();
    assert_eq!(first.len(), 10, "simultaneous reconnects: {first:?}");
    let spread = first[9] - first[0];
    assert!(spread >= 200 * MS, "reconnects bunched within {spread:?}: {first:?}");
    assert!(first.iter().all(|t| *t >= 60 * SEC + 500 * MS && *t <= 61 * SEC + 100 * MS), "{first:?}");
}

#[test]
fn controller_down_ten_minutes_every_agent_back_within_backoff_max() {
    let mut sim = connected(agents(10));
    sim.drive_until(60 * SEC);
    sim.controller_down();
    sim.drive_until(660 * SEC);
    assert!(sim.agents.iter().all(|a| a.core.link_state() != LinkState::Connected));

    sim.controller_up();
    let back = sim.run_until(660 * SEC + BACKOFF_MAX + SEC, Sim::all_connected);
    assert!(back.is_some(), "not all back by {:?}", sim.now());
    assert!((0..10).all(|i| sim.controller.is_present(i)));

    for agent in &sim.agents {
        assert!(agent.reconnect_delays().iter().all(|(_, after, _)| *after <= BACKOFF_MAX));
    }
    let mut returns: Vec<Duration> = sim
        .agents
        .iter()
        .map(|a| first_event_after(a, 660 * SEC, |e| matches!(e, CoreEvent::Connected { .. })).expect("back"))
        .collect();
    returns.sort();
    assert!(returns[9] - returns[0] >= 5 * SEC, "agents returned in a herd: {returns:?}");
}

#[test]
fn mute_controller_is_declared_silent_and_agent_reconnects() {
    let mut sim = connected(agents(1));
    sim.drive_until(100 * SEC);
    sim.controller.go_mute();
    let muted_at = sim.now();

    let silent_at = sim
        .run_until(muted_at + 60 * SEC, |s| count(s.agent(0), |e| *e == CoreEvent::LinkSilent) > 0)
        .expect("silence noticed");
    assert!(silent_at <= muted_at + 3 * HEARTBEAT, "{silent_at:?}");
    sim.drive_for(2 * SEC);
    let reconnect = *sim.agent(0).connects().last().expect("connects");
    assert!(reconnect > silent_at && reconnect <= silent_at + SEC, "{reconnect:?}");

    // Still mute: the new link gets no welcome and is dropped after 10 s.
    sim.drive_for(30 * SEC);
    assert!(count(sim.agent(0), |e| matches!(e, CoreEvent::LinkLost { reason } if reason.contains("welcome"))) >= 1);

    sim.controller.unmute();
    let unmuted_at = sim.now();
    // At worst a welcome wait on a link opened while mute, then a full backoff.
    let back = sim.run_until(unmuted_at + 10 * SEC + BACKOFF_MAX + SEC, Sim::all_connected);
    assert!(back.is_some(), "not back by {:?}", sim.now());
}

#[test]
fn version_refusal_waits_about_backoff_max_between_attempts() {
    let controller = ControllerConfig { accepts: 2..=2, ..ControllerConfig::default() };
    let mut sim = Sim::new(SimConfig { agents: 3, controller, ..SimConfig::default() });
    sim.drive_until(600 * SEC);

    for (i, agent) in sim.agents.iter().enumerate() {
        assert_eq!(count(agent, |e| matches!(e, CoreEvent::Connected { .. })), 0);
        let refusals = count(agent, |e| matches!(e, CoreEvent::Refused { .. }));
        assert!(refusals >= 18 && refusals == sim.controller.record(i).refusals.len(), "{refusals}");
        for gap in gaps(&agent.connects()) {
            assert!(gap >= BACKOFF_MAX * 3 / 4 && gap <= BACKOFF_MAX + SEC / 2, "{gap:?}");
        }
    }
}

#[test]
fn lossy_link_keeps_agents_mostly_connected_with_regular_heartbeats() {
    let mut sim = connected(SimConfig { agents: 10, seed: 7, path: lossy_path(), ..SimConfig::default() });
    let start = sim.now();
    let mut connected_secs = [0u32; 10];
    for _ in 0..HOUR.as_secs() {
        sim.drive_for(SEC);
        for (i, agent) in sim.agents.iter().enumerate() {
            connected_secs[i] += u32::from(agent.core.link_state() == LinkState::Connected);
        }
    }
    for (i, secs) in connected_secs.iter().enumerate() {
        assert!(*secs >= 3500, "agent {i} connected only {secs} s of 3600");

        let beats = distinct_heartbeats(&sim, i);
        let times: Vec<Duration> = beats.iter().map(|(t, _)| *t).filter(|t| *t > start).collect();
        assert!(times.len() >= 200, "agent {i}: {} heartbeats", times.len());
        let gaps = gaps(&times);
        let regular = gaps.iter().filter(|g| **g >= 14_600 * MS && **g <= 15_400 * MS).count();
        assert!(regular * 100 >= gaps.len() * 85, "agent {i}: {regular} regular gaps of {}", gaps.len());
        // At worst: silence declared after 3 intervals, a reconnect within a
        // second, and the first heartbeat one interval after the welcome.
        assert!(gaps.iter().all(|g| *g <= 4 * HEARTBEAT + 2 * SEC), "agent {i}: {gaps:?}");
    }
}

#[test]
fn clock_skew_is_reported_as_offset() {
    let mut sim = Sim::new(SimConfig { agents: 2, path: lossy_path(), ..SimConfig::default() });
    sim.agents[0].skew_ms = 3000;
    sim.drive_until(300 * SEC);
    // The estimate assumes a symmetric path; 200 ± 100 ms each way can skew
    // it by half the difference, at most 100 ms.
    let within = |offset: Option<i64>, expected: i64| offset.is_some_and(|o| (o - expected).abs() <= 101);
    let skewed = sim.agent(0).core.clock_offset_ms();
    assert!(within(skewed, -3000), "{skewed:?}");
    let straight = sim.agent(1).core.clock_offset_ms();
    assert!(within(straight, 0), "{straight:?}");
    let reported = sim.controller.record(0).statuses.last().and_then(|(_, s)| s.clock_offset_ms);
    assert!(within(reported, -3000), "status carries {reported:?}");
}

#[test]
fn same_seed_same_run() {
    let run = |seed| {
        let mut sim = Sim::new(SimConfig { agents: 4, seed, path: lossy_path(), ..SimConfig::default() });
        sim.drive_until(600 * SEC);
        sim.agents.into_iter().map(|a| a.outputs).collect::<Vec<_>>()
    };
    assert_eq!(run(3), run(3));
    assert_ne!(run(3), run(4));
}
