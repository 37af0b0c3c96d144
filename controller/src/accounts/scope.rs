//! The part of the region tree a caller may see and act on: the county, or
//! one township and its villages ([`Area`]). The guard checks every route
//! that names a region, village, agent, schedule or live session by id
//! ([`check_route`]); handlers that take targets ([`check_targets`]) or list
//! things ([`Area::covers_region`], [`Area::covers_villages`]) ask the same
//! `Area`. A county-wide caller never costs a query here.

use std::collections::BTreeSet;

use axum::http::StatusCode;
use dalaba_schedules::Targets;

use super::policy::Principal;
use crate::api::{ApiError, AppState};
use crate::directory::{Level, Region};

/// What a caller may see: everything, or one township and its villages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Area {
    township: Option<(i64, String)>,
    villages: BTreeSet<i64>,
}

impl Area {
    /// The whole county.
    pub fn county() -> Area {
        Area { township: None, villages: BTreeSet::new() }
    }

    /// The area of `principal` in the directory `regions`.
    pub fn of(principal: &Principal, regions: &[Region]) -> Area {
        let Some(t) = principal.region_id() else { return Area::county() };
        let name = regions.iter().find(|r| r.id == t).map_or_else(|| format!("township {t}"), |r| r.name.clone());
        let villages =
            regions.iter().filter(|r| r.level == Level::Village && r.parent_id == Some(t)).map(|r| r.id).collect();
        Area { township: Some((t, name)), villages }
    }

    /// Whether it is the whole county.
    pub fn is_county(&self) -> bool {
        self.township.is_none()
    }

    /// Whether `region` is in the area (its township itself, or one of
    /// its villages).
    pub fn covers_region(&self, region: &Region) -> bool {
        match &self.township {
            None => true,
            Some((t, _)) => region.id == *t || self.villages.contains(&region.id),
        }
    }

    /// Whether every one of `villages` is in the area (and there is one).
    pub fn covers_villages(&self, villages: &[i64]) -> bool {
        self.is_county() || (!villages.is_empty() && villages.iter().all(|v| self.villages.contains(v)))
    }

    /// The 403 for something outside the area.
    pub fn refusal(&self, what: &str) -> ApiError {
        let name = self.township.as_ref().map_or("the county", |(_, n)| n.as_str());
        ApiError::Coded {
            status: StatusCode::FORBIDDEN,
            code: "outside_area",
            message: format!("your account is limited to {name}; {what} is outside it"),
        }
    }

    /// The villages `targets` reach in `regions`.
    fn reached(regions: &[Region], targets: &Targets) -> Vec<i64> {
        let timetable = crate::schedules::Timetable { regions: regions.to_vec(), ..Default::default() };
        targets.select(&timetable.villages()).map(|v| v.id).collect()
    }
}

/// The caller's area (no query for a county-wide caller).
pub async fn area(st: &AppState, principal: &Principal) -> Result<Area, ApiError> {
    if principal.region_id().is_none() {
        return Ok(Area::county());
    }
    let regions = st.db(|s| s.regions()).await?;
    Ok(Area::of(principal, &regions))
}

/// Targets of a schedule or a live session must stay inside the caller's
/// area: not the county, no tag or village reaching another township.
pub async fn check_targets(st: &AppState, principal: &Principal, targets: &Targets) -> Result<(), ApiError> {
    if principal.region_id().is_none() {
        return Ok(());
    }
    let regions = st.db(|s| s.regions()).await?;
    let area = Area::of(principal, &regions);
    if targets.county {
        return Err(area.refusal("the whole county"));
    }
    let reached = Area::reached(&regions, targets);
    if let Some(outside) = reached.iter().find(|v| !area.villages.contains(v)) {
        let name = regions.iter().find(|r| r.id == *outside).map_or_else(|| outside.to_string(), |r| r.name.clone());
        return Err(area.refusal(&format!("village {name}")));
    }
    Ok(())
}

/// A route naming a region, village, agent, schedule or live session by
/// id: that thing must be in the caller's area. Things that do not exist
/// are left to the handler (its 404).
pub async fn check_route(st: &AppState, principal: &Principal, route: &str, path: &str) -> Result<(), ApiError> {
    if principal.region_id().is_none() {
        return Ok(());
    }
    let route = route.strip_prefix("/api/v1").unwrap_or(route);
    let path = path.strip_prefix("/api/v1").unwrap_or(path);
    // `/KIND/{id}…` in the route, the id itself in the path.
    let mut parts = route.split('/').skip(1);
    let (Some(kind), Some("{id}")) = (parts.next(), parts.next()) else { return Ok(()) };
    let Some(id) = path.split('/').nth(2).map(str::to_owned) else { return Ok(()) };
    let regions = st.db(|s| s.regions()).await?;
    let area = Area::of(principal, &regions);
    let inside = match kind {
        "regions" | "villages" => {
            let Ok(id) = id.parse::<i64>() else { return Ok(()) };
            match regions.iter().find(|r| r.id == id) {
                Some(r) => area.covers_region(r),
                None => return Ok(()),
            }
        }
        "agents" => match st.db(move |s| s.agent(&id)).await? {
            Some(agent) => area.covers_villages(&[agent.village_id]),
            None => return Ok(()),
        },
        "schedules" => {
            let Ok(id) = id.parse::<i64>() else { return Ok(()) };
            match st.db(move |s| s.schedule(id)).await? {
                Some(s) => !s.spec.targets.county && area.covers_villages(&Area::reached(&regions, &s.spec.targets)),
                None => return Ok(()),
            }
        }
        "live" => match st.db(move |s| s.live_session(&id)).await? {
            Some(session) => area.covers_villages(&session.villages),
            None => return Ok(()),
        },
        _ => return Ok(()),
    };
    let shown = path.split('/').nth(2).unwrap_or_default();
    if inside { Ok(()) } else { Err(area.refusal(&format!("{kind} {shown}"))) }
}
