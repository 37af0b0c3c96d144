//! Reports and the dashboard on a year of play logs: 212 villages in 14
//! townships (the demo county), one agent each, 20 scheduled items a day
//! for 365 days (1,547,600 play events) and two county-wide live sessions a
//! week, in a SQLite store on disk. Target: each figure under 200 ms.
//!
//! Run with `cargo bench -p dalaba-controller --bench reports`; it prints
//! the minimum, median and maximum of several runs of each and the query
//! plans. Timings are printed, never asserted. The figures are recorded in
//! `docs/benchmarks.md`, "Reports: a year of play logs".
//!
//! The play events are written in one transaction on a second connection
//! to the same file, in the order agents deliver them (day by day, every
//! village), with the store's own columns; directory, agents and live
//! sessions go through the store's methods.

use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::{NaiveDate, TimeZone};
use dalaba_controller::directory::Level;
use dalaba_controller::live::{AgentCounts, AgentReport, AgentState, LivePriority, SessionReport};
use dalaba_controller::reports::{Period, Report, Scope, Selection, csv, html};
use dalaba_controller::store::sqlite::SqliteStore;
use dalaba_controller::store::{NewAgent, Store};

/// The county's time zone (the API's `COUNTY_TZ`).
const TZ: chrono_tz::Tz = chrono_tz::Asia::Shanghai;
const DAYS: u64 = 365;
const PLAYS_PER_DAY: i64 = 20;
const RUNS: usize = 15;
/// The year ends with the month the bench reports on.
const MONTH: (i32, u32) = (2026, 11);

fn main() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("dalaba.db");
    let store = SqliteStore::open(&path)?;
    let loading = Instant::now();
    let agents = directory_and_agents(&store)?;
    let first_day = NaiveDate::from_ymd_opt(2025, 12, 1).context("first day")?;
    let events = load_play_events(&path, &agents, first_day)?;
    let sessions = live_sessions(&store, &agents, first_day)?;
    let bytes = std::fs::metadata(&path)?.len();
    println!(
        "loaded {events} play events and {sessions} live sessions for {} villages in {:.1?} ({} MiB on disk)",
        agents.len(),
        loading.elapsed(),
        bytes / (1 << 20)
    );

    let regions = store.regions()?;
    let township = regions.iter().find(|r| r.level == Level::Township).context("a township")?.id;
    let month = Period::month(MONTH.0, MONTH.1, TZ)?;
    let today = Period::new(month.last(), month.to(), TZ)?;

    explain(&path)?;
    let http = Http::new(&path)?;
    let county = run(&store, &Scope::County, &month)?;
    println!(
        "county month: {} events scheduled, compliance {:.2}%, {} live village-sessions reached",
        county.total.plays.scheduled(),
        county.total.plays.compliance_pct().unwrap_or(0.0),
        county.total.live.reached
    );
    let rows = [
        (
            "monthly report, county (212 villages): counts, page and CSV",
            measure(|| run(&store, &Scope::County, &month))?,
        ),
        (
            "monthly report, one township: counts, page and CSV",
            measure(|| run(&store, &Scope::Township(township), &month))?,
        ),
        ("store counts only, county month", measure(|| counts_only(&store, &Scope::County, &month))?),
        ("county today (one day), e.g. a dashboard tile", measure(|| run(&store, &Scope::County, &today))?),
        (
            "HTTP: GET /reports?month= (county), router + guard + JSON",
            measure(|| http.get(&format!("/api/v1/reports?month={}-{:02}", MONTH.0, MONTH.1)))?,
        ),
        (
            "HTTP: GET /reports/monthly.html, one township",
            measure(|| {
                http.get(&format!("/api/v1/reports/monthly.html?month={}-{:02}&township={township}", MONTH.0, MONTH.1))
            })?,
        ),
        ("HTTP: dashboard first render, the five requests in a row", measure(|| dashboard(&http))?),
    ];
    for path in DASHBOARD {
        let (min, median, max) = measure(|| http.get(path))?;
        println!("  {path}: min {} median {} max {}", ms(min), ms(median), ms(max));
    }
    println!("\n| what | min | median | max |\n|---|---:|---:|---:|");
    for (what, (min, median, max)) in rows {
        println!("| {what} | {} | {} | {} |", ms(min), ms(median), ms(max));
    }
    println!("({RUNS} runs each)");

    // For comparison only, not in the schema: a covering index spares the
    // per-day query its table lookups. The integrator's call if a county
    // ever outgrows the target.
    let conn = rusqlite::Connection::open(&path)?;
    let building = Instant::now();
    conn.execute_batch(COVERING_INDEX)?;
    println!("\nWITH A COVERING INDEX (comparison, not in the schema; built in {:.1?}):", building.elapsed());
    explain(&path)?;
    let (min, median, max) = measure(|| run(&store, &Scope::County, &month))?;
    println!("| monthly report, county, covering index | {} | {} | {} |", ms(min), ms(median), ms(max));
    Ok(())
}

/// An index with every column the per-day query reads.
const COVERING_INDEX: &str = "CREATE INDEX play_events_report
    ON play_events (village_id, scheduled_ms, outcome, started_ms, amplifier_confirmed)";

/// The demo county and one agent per village, enrolled with codes.
fn directory_and_agents(store: &SqliteStore) -> anyhow::Result<Vec<(String, i64)>> {
    for rows in dalaba_controller::directory::demo::demo_county().chunks(500) {
        store.import_regions(rows)?;
    }
    let villages: Vec<i64> = store.regions()?.into_iter().filter(|r| r.level == Level::Village).map(|r| r.id).collect();
    let mut agents = Vec::with_capacity(villages.len());
    for (i, village) in villages.into_iter().enumerate() {
        let code = format!("BNCH-{i:04}");
        store.create_enrolment_code(village, &code, i64::MAX, 0)?;
        let agent = NewAgent {
            id: format!("ag-{:016x}", 0x5eed_0000_u64 + i as u64),
            secret_hash: "0".repeat(64),
            hostname: format!("pi-{i}"),
            agent_version: "0.1.0".into(),
            hardware_json: r#"{"model":"Raspberry Pi 4","amplifier_driver":"modbus-rtu"}"#.into(),
            enrolled_at_ms: 1,
        };
        store.redeem_enrolment_code(&code, 1, &agent)?;
        agents.push((agent.id, village));
    }
    Ok(agents)
}

/// A year of play events: 20 items a day from 06:00, every 45 minutes,
/// mostly completed, with a deterministic sprinkle of the other outcomes.
fn load_play_events(path: &Path, agents: &[(String, i64)], first_day: NaiveDate) -> anyhow::Result<u64> {
    let mut conn = rusqlite::Connection::open(path)?;
    let tx = conn.transaction()?;
    let mut rng = XorShift(0x2545_f491_4f6c_dd1d);
    let contents: Vec<String> = (0..10).map(|i| format!("{i:02x}").repeat(32)).collect();
    let mut n = 0;
    {
        let mut insert = tx.prepare(
            "INSERT INTO play_events (agent_id, event_id, village_id, schedule_id, sha256, scheduled_ms,
                 started_ms, ended_ms, outcome, reason, amplifier_confirmed, received_at_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
        )?;
        for day in first_day.iter_days().take(DAYS as usize) {
            let midnight = TZ.from_local_datetime(&day.and_hms_opt(0, 0, 0).context("midnight")?).earliest();
            let midnight = midnight.context("local midnight")?.timestamp_millis();
            for (agent, village) in agents {
                for k in 0..PLAYS_PER_DAY {
                    let scheduled = midnight + (6 * 3600 + k * 45 * 60) * 1000;
                    let roll = rng.next() % 1000;
                    let (outcome, reason, started) = match roll {
                        0..=19 => ("missed", Some("agent was not running (3600 s late)"), false),
                        20..=34 => ("failed", Some("content is not in the cache"), false),
                        35..=49 => ("preempted", Some("preempted by live session; window passed"), true),
                        50..=54 => ("skipped", Some("removed from the plan"), false),
                        _ => ("completed", None, true),
                    };
                    let confirmed = started && !roll.is_multiple_of(97);
                    insert.execute(rusqlite::params![
                        agent,
                        format!("{}@{scheduled}", k + 1),
                        village,
                        k + 1,
                        contents[(k % 10) as usize],
                        scheduled,
                        started.then_some(scheduled + 40),
                        started.then_some(scheduled + 180_000),
                        outcome,
                        reason,
                        confirmed,
                        scheduled + 181_000,
                    ])?;
                    n += 1;
                }
            }
        }
    }
    tx.commit()?;
    // A long-running controller has checkpointed its WAL long ago.
    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
    Ok(n)
}

/// Two county-wide live sessions a week, each reaching most agents.
fn live_sessions(store: &SqliteStore, agents: &[(String, i64)], first_day: NaiveDate) -> anyhow::Result<u64> {
    let mut n = 0;
    for day in first_day.iter_days().take(DAYS as usize).step_by(3) {
        let start = TZ.from_local_datetime(&day.and_hms_opt(9, 0, 0).context("nine")?).earliest();
        let start = start.context("local time")?.timestamp_millis();
        let mut reports: Vec<AgentReport> = agents
            .iter()
            .enumerate()
            .map(|(i, (agent, village))| {
                let reached = !(i + n as usize).is_multiple_of(23);
                AgentReport {
                    agent_id: agent.clone(),
                    village_id: *village,
                    state: if reached {
                        AgentState::Ended { reason: "session ended".into() }
                    } else {
                        AgentState::Offline
                    },
                    playing_from_ms: reached.then_some(start + 800),
                    playing_to_ms: reached.then_some(start + 120_000),
                    frames_sent: 6_000,
                    frames_dropped: 0,
                    frames_received: reached.then_some(6_000),
                    frames_lost: reached.then_some(0),
                    refusal: None,
                }
            })
            .collect();
        reports.sort_by(|a, b| a.agent_id.cmp(&b.agent_id));
        let report = SessionReport {
            session_id: format!("live-{n:04}"),
            title: "村务通知".into(),
            priority: LivePriority::Paging,
            source: "microphone".into(),
            started_by: "operator".into(),
            targets: serde_json::json!({"county": true}),
            villages: agents.iter().map(|(_, v)| *v).collect(),
            volume: 80,
            started_at_ms: start,
            ended_at_ms: Some(start + 120_000),
            end_reason: Some("stopped by operator".into()),
            frames_sent: 6_000,
            counts: AgentCounts::of(&reports),
            agents: reports,
        };
        store.save_live_session(&report)?;
        n += 1;
    }
    Ok(n)
}

/// What a report route does: the directory, the store's sums, the report,
/// then the printable page and the CSV.
fn run(store: &SqliteStore, scope: &Scope, period: &Period) -> anyhow::Result<Report> {
    let selection = Selection::new(&store.regions()?, scope)?;
    let counts = store.report_counts(&selection.village_ids(), &period.spans()?)?;
    let report = Report::build(&selection, period, &counts);
    black_box(html::monthly(&report, 0));
    black_box(csv::villages(&report));
    Ok(report)
}

fn counts_only(store: &SqliteStore, scope: &Scope, period: &Period) -> anyhow::Result<usize> {
    let selection = Selection::new(&store.regions()?, scope)?;
    Ok(store.report_counts(&selection.village_ids(), &period.spans()?)?.plays.len())
}

/// The dashboard's first render through the real HTTP application — the
/// router, the guard with a logged-in county admin's session cookie, the
/// handlers and their JSON — for every request the page makes before it
/// shows the county: `/session`, `/regions`, `/agents`, `/dashboard` and
/// the open alarms. Timed one after the other (the browser sends them
/// together), so the sum is an upper bound.
struct Http {
    app: axum::Router,
    cookie: axum::http::HeaderValue,
    runtime: tokio::runtime::Runtime,
    _dir: tempfile::TempDir,
}

impl Http {
    fn new(path: &Path) -> anyhow::Result<Http> {
        use dalaba_controller::accounts::guard::Accounts;
        use dalaba_controller::accounts::session::{self, SessionSettings};
        use dalaba_controller::accounts::{NewUser, Role};
        use dalaba_controller::alarms::{AlarmSettings, Alarms};
        use dalaba_controller::api::{AppState, Settings, router};
        use dalaba_controller::clock::Clock;
        use dalaba_controller::distribution::Distribution;
        use dalaba_controller::library::{Library, LibrarySettings};
        use dalaba_controller::metrics::Metrics;
        use dalaba_controller::presence::Presence;
        use dalaba_controller::signing::CommandSigner;
        use std::sync::Arc;

        let dir = tempfile::tempdir()?;
        let signer = CommandSigner::load_or_generate(dir.path())?;
        let now = TZ.with_ymd_and_hms(MONTH.0, MONTH.1, 28, 12, 0, 0).single().context("noon")?.timestamp_millis();
        let settings = Settings {
            heartbeat_interval: Duration::from_secs(30),
            heartbeat_timeout: Duration::from_secs(90),
            max_connections: 10_000,
            code_ttl: Duration::from_secs(3600),
            cert_fingerprint: String::new(),
            signing_key: signer.public_info(),
            alerts: dalaba_controller::alerts::AlertSettings::default(),
        };
        let lifetimes = SessionSettings::default();
        let state = AppState {
            store: Arc::new(SqliteStore::open(path)?),
            presence: Arc::new(Presence::new()),
            metrics: Arc::new(Metrics::new()),
            clock: Clock::manual(now),
            settings: Arc::new(settings),
            library: Arc::new(Library::open(dir.path(), LibrarySettings::default())?),
            distribution: Arc::new(Distribution::new(dalaba_protocol::state::PlaybackSettings::default())),
            live: Arc::new(dalaba_controller::live::Live::new(signer)),
            accounts: Arc::new(Accounts::new(lifetimes)),
            alarms: Arc::new(Alarms::new(AlarmSettings::default(), now)),
        };
        let admin = NewUser {
            name: "admin".into(),
            display_name: "县管理员".into(),
            role: Role::Admin,
            region_id: None,
            emergency: true,
            password_hash: "-".into(),
            created_at_ms: now,
            password_change_required: false,
        };
        let user = state.store.create_user(&admin)?;
        let (value, stored) =
            session::new_session(user.id, now, "127.0.0.1", &lifetimes).map_err(anyhow::Error::msg)?;
        state.store.create_session(&stored)?;
        let cookie = axum::http::HeaderValue::from_str(&format!("{}={value}", session::COOKIE_NAME))?;
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
        Ok(Http { app: router(state), cookie, runtime, _dir: dir })
    }

    /// `GET path` as the admin: the body's length (an error unless 200).
    fn get(&self, path: &str) -> anyhow::Result<usize> {
        use http_body_util::BodyExt;
        use tower::ServiceExt;
        let mut req = axum::http::Request::get(path).body(axum::body::Body::empty())?;
        req.headers_mut().insert(axum::http::header::COOKIE, self.cookie.clone());
        req.extensions_mut().insert(axum::extract::ConnectInfo(std::net::SocketAddr::from(([127, 0, 0, 1], 50_000))));
        self.runtime.block_on(async {
            let response = self.app.clone().oneshot(req).await?;
            let status = response.status();
            let body = response.into_body().collect().await?.to_bytes();
            anyhow::ensure!(status == 200, "{path}: {status} {}", String::from_utf8_lossy(&body));
            Ok(body.len())
        })
    }
}

/// The requests of the dashboard's first render.
const DASHBOARD: [&str; 5] = [
    "/api/v1/session",
    "/api/v1/regions",
    "/api/v1/agents",
    "/api/v1/dashboard",
    "/api/v1/alarms?state=open&limit=200",
];

fn dashboard(http: &Http) -> anyhow::Result<usize> {
    DASHBOARD.iter().map(|p| http.get(p)).sum()
}

/// Prints how SQLite runs the report's queries.
fn explain(path: &Path) -> anyhow::Result<()> {
    let conn = rusqlite::Connection::open(path)?;
    for (what, sql) in [
        (
            "per day",
            "EXPLAIN QUERY PLAN SELECT village_id, SUM(outcome = 'completed')
             FROM play_events
             WHERE village_id IN (SELECT value FROM json_each('[1,2]')) AND scheduled_ms >= 0 AND scheduled_ms < 1
             GROUP BY village_id",
        ),
        (
            "live",
            "EXPLAIN QUERY PLAN SELECT a.village_id, COUNT(DISTINCT a.session_id)
             FROM live_sessions s JOIN live_session_agents a ON a.session_id = s.id
             WHERE s.started_at_ms >= 0 AND s.started_at_ms < 1 AND a.village_id IN (SELECT value FROM json_each('[1]'))
             GROUP BY a.village_id",
        ),
    ] {
        let mut stmt = conn.prepare(sql)?;
        let plan: Vec<String> = stmt.query_map([], |r| r.get::<_, String>(3))?.collect::<Result<_, _>>()?;
        println!("query plan ({what}): {}", plan.join(" / "));
    }
    Ok(())
}

/// Runs `f` [`RUNS`] times; minimum, median and maximum.
fn measure<T>(mut f: impl FnMut() -> anyhow::Result<T>) -> anyhow::Result<(Duration, Duration, Duration)> {
    let mut times = Vec::with_capacity(RUNS);
    for _ in 0..RUNS {
        let start = Instant::now();
        black_box(f()?);
        times.push(start.elapsed());
    }
    times.sort();
    Ok((times[0], times[RUNS / 2], times[RUNS - 1]))
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

/// A small deterministic generator, so every run loads the same year.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}
