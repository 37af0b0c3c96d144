//! Agents, enrolment codes and enrolment.

use std::collections::HashMap;

use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use dalaba_protocol::enrol::{EnrolRequest, EnrolResponse};
use dalaba_protocol::link::AgentStatus;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{ApiError, AppState};
use crate::accounts::policy::Principal;
use crate::accounts::scope::Area;
use crate::clock::rfc3339;
use crate::directory::{Level, Region};
use crate::presence::LiveView;
use crate::store::{Agent, NewAgent, RedeemError};

/// An agent as the API shows it: directory facts plus live status.
#[derive(Debug, Clone, Serialize)]
pub struct AgentView {
    /// Agent id.
    pub id: String,
    /// Its village.
    pub village_id: i64,
    /// Village name.
    pub village_name: String,
    /// Village administrative code.
    pub village_code: String,
    /// The village's township, if the tree has one.
    pub township_id: Option<i64>,
    /// Township name.
    pub township_name: Option<String>,
    /// Host name given at enrolment.
    pub hostname: String,
    /// Software version (from the latest hello when online).
    pub agent_version: String,
    /// When enrolled.
    pub enrolled_at: String,
    /// Whether the agent holds a live link now.
    pub online: bool,
    /// When last heard from, if ever.
    pub last_seen: Option<String>,
    /// When the current link was accepted.
    pub connected_since: Option<String>,
    /// Remote address of the current link.
    pub peer: Option<String>,
    /// The board, as the agent describes it.
    pub hardware: serde_json::Value,
    /// Latest status report of the current link.
    pub status: Option<AgentStatus>,
    /// Latest sync report of the current link.
    pub sync: Option<dalaba_protocol::state::SyncReport>,
}

/// Builds the API view of agents from the store and the presence registry.
pub fn views(agents: Vec<Agent>, regions: &[Region], live: &HashMap<String, LiveView>) -> Vec<AgentView> {
    let by_id: HashMap<i64, &Region> = regions.iter().map(|r| (r.id, r)).collect();
    agents
        .into_iter()
        .map(|a| {
            let village = by_id.get(&a.village_id);
            let township = village.and_then(|v| v.parent_id).and_then(|p| by_id.get(&p));
            let live = live.get(&a.id);
            let last_seen = live.map(|l| l.last_seen_ms).or(a.last_seen_ms);
            AgentView {
                village_id: a.village_id,
                village_name: village.map(|v| v.name.clone()).unwrap_or_default(),
                village_code: village.map(|v| v.code.clone()).unwrap_or_default(),
                township_id: township.map(|t| t.id),
                township_name: township.map(|t| t.name.clone()),
                hostname: a.hostname,
                agent_version: live.map(|l| l.hello.agent_version.clone()).unwrap_or(a.agent_version),
                enrolled_at: rfc3339(a.enrolled_at_ms),
                online: live.is_some(),
                last_seen: last_seen.map(rfc3339),
                connected_since: live.map(|l| rfc3339(l.connected_since_ms)),
                peer: live.map(|l| l.peer.clone()),
                hardware: live
                    .and_then(|l| serde_json::to_value(&l.hello.hardware).ok())
                    .or_else(|| serde_json::from_str(&a.hardware_json).ok())
                    .unwrap_or(serde_json::Value::Null),
                status: live.and_then(|l| l.status.clone()),
                sync: live.and_then(|l| l.sync.clone()),
                id: a.id,
            }
        })
        .collect()
}

/// `GET /agents`: every agent with its village and live status.
/// An account limited to a township sees that township's agents.
pub async fn list(State(st): State<AppState>, caller: Principal) -> Result<Json<Vec<AgentView>>, ApiError> {
    let (agents, regions) = st.db(|s| Ok((s.agents()?, s.regions()?))).await?;
    let area = Area::of(&caller, &regions);
    let agents = agents.into_iter().filter(|a| area.covers_villages(&[a.village_id])).collect();
    Ok(Json(views(agents, &regions, &st.presence.views())))
}

/// `GET /agents/{id}`.
pub async fn one(
    State(st): State<AppState>,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<AgentView>, ApiError> {
    let Path(id) = id?;
    Ok(Json(view_of(&st, id).await?))
}

/// One agent's view, or 404.
pub async fn view_of(st: &AppState, id: String) -> Result<AgentView, ApiError> {
    let lookup = id.clone();
    let (agent, regions) = st.db(move |s| Ok((s.agent(&lookup)?, s.regions()?))).await?;
    let agent = agent.ok_or_else(|| ApiError::NotFound(format!("agent {id} does not exist")))?;
    let mut live = HashMap::new();
    if let Some(v) = st.presence.view(&id) {
        live.insert(id, v);
    }
    views(vec![agent], &regions, &live).pop().ok_or_else(|| ApiError::Internal("agent view vanished".into()))
}

/// `DELETE /agents/{id}`: forgets an agent (its secret stops working).
pub async fn remove(
    State(st): State<AppState>,
    id: Result<Path<String>, PathRejection>,
) -> Result<StatusCode, ApiError> {
    let Path(id) = id?;
    let lookup = id.clone();
    st.db(move |s| s.delete_agent(&lookup)).await?;
    let was_online = st.presence.kick(&id, crate::presence::Kick::Removed);
    tracing::info!(agent = %id, was_online, "agent removed");
    st.distribution.poke();
    Ok(StatusCode::NO_CONTENT)
}

/// Body of `POST /villages/{id}/enrolment-codes`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewCode {
    /// Lifetime in minutes; the configured default when absent.
    pub ttl_minutes: Option<u64>,
}

/// Answer of `POST /villages/{id}/enrolment-codes`.
#[derive(Debug, Serialize)]
pub struct CodeView {
    /// The one-time code to type on the village board.
    pub code: String,
    /// The village.
    pub village_id: i64,
    /// When it stops working.
    pub expires_at: String,
    /// What the technician runs.
    pub command: String,
}

/// `POST /villages/{id}/enrolment-codes`.
pub async fn create_code(
    State(st): State<AppState>,
    id: Result<Path<i64>, PathRejection>,
    headers: axum::http::HeaderMap,
    body: Result<Option<Json<NewCode>>, JsonRejection>,
) -> Result<(StatusCode, Json<CodeView>), ApiError> {
    let Path(village_id) = id?;
    let ttl_minutes = body?.and_then(|Json(b)| b.ttl_minutes).unwrap_or(st.settings.code_ttl.as_secs() / 60);
    if !(1..=43_200).contains(&ttl_minutes) {
        return Err(ApiError::BadRequest("ttl_minutes must be between 1 and 43200 (30 days)".into()));
    }
    let now = st.clock.now_ms();
    let expires = now + (ttl_minutes as i64) * 60_000;
    let code = new_enrolment_code()?;
    let stored = st.db(move |s| s.create_enrolment_code(village_id, &code, expires, now)).await?;
    tracing::info!(village_id, expires_at = %rfc3339(stored.expires_at_ms), "enrolment code created");
    Ok((
        StatusCode::CREATED,
        Json(CodeView {
            command: enrol_command(&st, &headers, &stored.code),
            code: stored.code,
            village_id,
            expires_at: rfc3339(stored.expires_at_ms),
        }),
    ))
}

/// The command a technician runs, addressed to the controller as the
/// operator reached it (the `Host` header) and pinned to its certificate.
fn enrol_command(st: &AppState, headers: &axum::http::HeaderMap, code: &str) -> String {
    let host = headers
        .get(axum::http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| h.parse::<axum::http::uri::Authority>().is_ok())
        .unwrap_or("<controller address>");
    let fingerprint = &st.settings.cert_fingerprint;
    if fingerprint.is_empty() {
        format!("dalaba-agent enrol --controller http://{host} --code {code}")
    } else {
        format!("dalaba-agent enrol --controller https://{host} --code {code} --fingerprint {fingerprint}")
    }
}

/// `POST /enrol`: redeems a one-time code for a per-agent secret.
pub async fn enrol(
    State(st): State<AppState>,
    body: Result<Json<EnrolRequest>, JsonRejection>,
) -> Result<Json<EnrolResponse>, ApiError> {
    let Json(req) = body?;
    if req.code.len() > 64 || req.hostname.chars().count() > 100 || req.agent_version.len() > 64 {
        return Err(ApiError::BadRequest("code, hostname or agent_version is too long".into()));
    }
    let now = st.clock.now_ms();
    let secret = hex::encode(random::<32>()?);
    let new = NewAgent {
        id: format!("ag-{}", hex::encode(random::<8>()?)),
        secret_hash: secret_hash(&secret),
        hostname: req.hostname.clone(),
        agent_version: req.agent_version.clone(),
        hardware_json: serde_json::to_string(&req.hardware).unwrap_or_default(),
        enrolled_at_ms: now,
    };
    let code = req.code.trim().to_ascii_uppercase();
    let outcome = st.db(move |s| Ok(s.redeem_enrolment_code(&code, now, &new))).await?;
    let agent = outcome.map_err(|e| {
        tracing::warn!(code = %req.code, hostname = %req.hostname, error = %e, "enrolment refused");
        st.metrics.error("enrolment");
        match e {
            RedeemError::Unknown => ApiError::Coded {
                status: StatusCode::NOT_FOUND,
                code: "enrolment_code_unknown",
                message: "this enrolment code does not exist; check it or ask the county for a new one".into(),
            },
            RedeemError::Expired { expired_at_ms } => ApiError::Coded {
                status: StatusCode::GONE,
                code: "enrolment_code_expired",
                message: format!(
                    "this enrolment code expired at {}; ask the county for a new one",
                    rfc3339(expired_at_ms)
                ),
            },
            RedeemError::AlreadyUsed { used_at_ms } => ApiError::Coded {
                status: StatusCode::CONFLICT,
                code: "enrolment_code_used",
                message: format!(
                    "this enrolment code was already used at {}; each code works once",
                    rfc3339(used_at_ms)
                ),
            },
            RedeemError::Store(e) => ApiError::from(e),
        }
    })?;
    let village = st
        .db({
            let v = agent.village_id;
            move |s| s.region(v)
        })
        .await?;
    tracing::info!(agent = %agent.id, village_id = agent.village_id, hostname = %agent.hostname, "agent enrolled");
    st.distribution.poke();
    Ok(Json(EnrolResponse {
        agent_id: agent.id,
        secret,
        village_id: agent.village_id,
        village_name: village.map(|v| v.name).unwrap_or_default(),
        controller_cert_sha256: st.settings.cert_fingerprint.clone(),
        signing_key: st.settings.signing_key.clone(),
    }))
}

/// `GET /controller`: what a technician needs to enrol a board safely.
pub async fn controller_info(State(st): State<AppState>) -> Json<serde_json::Value> {
    Json(serde_json::json!({
        "version": env!("CARGO_PKG_VERSION"),
        "protocol_version": dalaba_protocol::PROTOCOL_VERSION,
        "cert_sha256": st.settings.cert_fingerprint,
        "signing_key": st.settings.signing_key,
        "heartbeat_interval_secs": st.settings.heartbeat_interval.as_secs(),
        "heartbeat_timeout_secs": st.settings.heartbeat_timeout.as_secs(),
    }))
}

/// Per-township counts for the dashboard header.
#[derive(Debug, Serialize)]
pub struct TownshipCount {
    /// Township id.
    pub id: i64,
    /// Township name.
    pub name: String,
    /// Villages in it.
    pub villages: usize,
    /// Villages with at least one online agent.
    pub online: usize,
    /// Villages with agents, none online.
    pub offline: usize,
    /// Villages without any agent.
    pub no_agent: usize,
}

/// `GET /dashboard`: counts per township.
pub async fn dashboard(State(st): State<AppState>, caller: Principal) -> Result<Json<serde_json::Value>, ApiError> {
    let (mut agents, mut regions) = st.db(|s| Ok((s.agents()?, s.regions()?))).await?;
    // A township account counts its own township only.
    let area = Area::of(&caller, &regions);
    if !area.is_county() {
        agents.retain(|a| area.covers_villages(&[a.village_id]));
        regions.retain(|r| r.level == Level::County || area.covers_region(r));
    }
    let mut live = st.presence.views();
    if !area.is_county() {
        let ours: std::collections::HashSet<&str> = agents.iter().map(|a| a.id.as_str()).collect();
        live.retain(|id, _| ours.contains(id.as_str()));
    }
    let mut village_state: HashMap<i64, bool> = HashMap::new();
    for a in &agents {
        let online = live.contains_key(&a.id);
        let e = village_state.entry(a.village_id).or_insert(false);
        *e |= online;
    }
    let mut townships: Vec<TownshipCount> = regions
        .iter()
        .filter(|r| r.level == Level::Township)
        .map(|t| TownshipCount { id: t.id, name: t.name.clone(), villages: 0, online: 0, offline: 0, no_agent: 0 })
        .collect();
    for v in regions.iter().filter(|r| r.level == Level::Village) {
        if let Some(t) = townships.iter_mut().find(|t| Some(t.id) == v.parent_id) {
            t.villages += 1;
            match village_state.get(&v.id) {
                Some(true) => t.online += 1,
                Some(false) => t.offline += 1,
                None => t.no_agent += 1,
            }
        }
    }
    let total = |f: fn(&TownshipCount) -> usize| townships.iter().map(f).sum::<usize>();
    Ok(Json(serde_json::json!({
        "villages": total(|t| t.villages),
        "online": total(|t| t.online),
        "offline": total(|t| t.offline),
        "no_agent": total(|t| t.no_agent),
        "agents": agents.len(),
        "agents_online": live.len(),
        "townships": townships,
    })))
}

/// SHA-256 of an agent secret, hex. Secrets are 256 random bits, so a fast
/// hash is enough; a slow password hash would only cost CPU at every
/// reconnect storm.
pub fn secret_hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

fn random<const N: usize>() -> Result<[u8; N], ApiError> {
    let mut b = [0u8; N];
    getrandom::getrandom(&mut b).map_err(|e| ApiError::Internal(format!("no system randomness: {e}")))?;
    Ok(b)
}

/// A new enrolment code: 8 characters from an alphabet without look-alikes
/// (no 0/O, 1/I/L), shown as `XXXX-XXXX`: about 40 bits.
pub fn new_enrolment_code() -> Result<String, ApiError> {
    const ALPHABET: &[u8] = b"23456789ABCDEFGHJKMNPQRSTUVWXYZ";
    let bytes = random::<8>()?;
    let chars: String = bytes.iter().map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char).collect();
    Ok(format!("{}-{}", &chars[..4], &chars[4..]))
}
