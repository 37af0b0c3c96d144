//! The configuration on record. At every start the controller compares the
//! settings it runs with ([`effective`]: the parsed configuration file with
//! defaults filled in, secrets shown only as set or not) with those it ran
//! with the last time, keeps them, and writes one audit record
//! `config.change` naming each setting that changed, or that the first
//! configuration is on record. The audit log thereby covers the settings
//! changed outside the console, in the file.

use serde_json::{Map, Value};

use crate::accounts::audit::NewAuditRecord;
use crate::config::Config;
use crate::store::{Store, StoreError};

/// The audit log's actor for what the controller does by itself.
pub const ACTOR: &str = "controller";

/// The settings as kept: every field of the configuration, with any whose
/// name holds `secret` replaced by `"set"` or `"not set"` (a secret never
/// reaches the database or the audit log).
pub fn effective(config: &Config) -> Value {
    let mut value = serde_json::to_value(config).unwrap_or(Value::Null);
    redact(&mut value);
    value
}

fn redact(value: &mut Value) {
    if let Value::Object(map) = value {
        for (key, v) in map.iter_mut() {
            if key.contains("secret") {
                let set = v.as_str().is_some_and(|s| !s.is_empty());
                *v = Value::String(if set { "set" } else { "not set" }.into());
            } else {
                redact(v);
            }
        }
    }
}

/// What changed from `old` to `new`, one line per setting in dotted form
/// (`alarms.offline_after_minutes: 30 → 10`), sorted by name.
pub fn changes(old: &Value, new: &Value) -> Vec<String> {
    let (mut before, mut after) = (Map::new(), Map::new());
    flatten("", old, &mut before);
    flatten("", new, &mut after);
    let mut keys: Vec<&String> = before.keys().chain(after.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter_map(|k| match (before.get(k), after.get(k)) {
            (Some(a), Some(b)) if a == b => None,
            (Some(a), Some(b)) => Some(format!("{k}: {} → {}", shown(a), shown(b))),
            (None, Some(b)) => Some(format!("{k}: (new) {}", shown(b))),
            (Some(a), None) => Some(format!("{k}: {} (gone)", shown(a))),
            (None, None) => None,
        })
        .collect()
}

fn flatten(prefix: &str, value: &Value, into: &mut Map<String, Value>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                let key = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
                flatten(&key, v, into);
            }
        }
        other => {
            into.insert(prefix.to_owned(), other.clone());
        }
    }
}

fn shown(value: &Value) -> String {
    match value {
        Value::String(s) if s.is_empty() => "\"\"".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Compares `config` with the settings on record, keeps it, and appends
/// the audit record when something changed (or nothing was on record).
/// Returns the changes recorded; empty when the settings are the same.
pub fn record(store: &dyn Store, config: &Config, now_ms: i64) -> Result<Vec<String>, StoreError> {
    let current = effective(config);
    let text = current.to_string();
    let previous = store.last_config()?;
    let detail = match previous.as_deref().map(serde_json::from_str::<Value>) {
        Some(Ok(old)) if old == current => return Ok(Vec::new()),
        Some(Ok(old)) => changes(&old, &current),
        // Unreadable (hand-edited): the whole configuration is new.
        Some(Err(_)) | None => vec!["the first configuration on record".to_owned()],
    };
    store.save_config(&text, now_ms)?;
    let record = NewAuditRecord {
        at_ms: now_ms,
        actor: ACTOR.into(),
        actor_kind: "system".into(),
        ip: String::new(),
        action: "config.change".into(),
        method: String::new(),
        path: String::new(),
        status: 200,
        village_id: None,
        detail: detail.join("; "),
    };
    store.append_audit(&record.bounded())?;
    Ok(detail)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::accounts::audit::AuditFilter;
    use crate::store::sqlite::SqliteStore;

    /// The default configuration with each `key = value` line of `set`
    /// in place of the default's.
    fn config(set: &[&str]) -> Config {
        let mut text = crate::config::DEFAULT_CONFIG.to_owned();
        for line in set {
            let key = line.split(" = ").next().expect("key = value");
            let at = text.find(&format!("\n{key} = ")).expect("a default line") + 1;
            let end = text[at..].find('\n').map_or(text.len(), |e| at + e);
            text.replace_range(at..end, line);
        }
        Config::parse(&text, "test").expect("config")
    }

    #[test]
    fn secrets_are_kept_as_set_or_not() {
        let plain = effective(&config(&[]));
        assert_eq!(plain["alarms"]["webhook_secret"], "not set");
        let with = config(&["webhook_url = \"https://ops.example/hook\"", "webhook_secret = \"hunter2-very-secret\""]);
        let value = effective(&with);
        assert_eq!(value["alarms"]["webhook_secret"], "set");
        assert!(!value.to_string().contains("hunter2"), "{value}");
    }

    #[test]
    fn changes_name_each_setting_once_in_order() {
        let old = effective(&config(&[]));
        let new = effective(&config(&["offline_after_minutes = 10", "idle_minutes = 15"]));
        assert_eq!(changes(&old, &new), ["accounts.idle_minutes: 30 → 15", "alarms.offline_after_minutes: 30 → 10"]);
        assert!(changes(&new, &new).is_empty());
        let gone = serde_json::json!({"a": {"b": 1, "c": ""}});
        let came = serde_json::json!({"a": {"c": "x", "d": [1]}});
        assert_eq!(changes(&gone, &came), ["a.b: 1 (gone)", "a.c: \"\" → x", "a.d: (new) [1]"]);
    }

    #[test]
    fn each_start_records_what_changed_once() {
        let store = SqliteStore::open_in_memory().expect("store");
        let audit = |store: &SqliteStore| {
            let filter = AuditFilter { action: Some("config.change".into()), ..AuditFilter::default() };
            store.audit(&filter).expect("audit")
        };
        let first = record(&store, &config(&[]), 1).expect("first start");
        assert_eq!(first, ["the first configuration on record"]);
        assert!(record(&store, &config(&[]), 2).expect("same again").is_empty());
        let third = record(&store, &config(&["sync_failing_minutes = 5"]), 3).expect("changed");
        assert_eq!(third, ["alarms.sync_failing_minutes: 60 → 5"]);
        let records = audit(&store);
        assert_eq!(records.len(), 2, "one record per start that changed something: {records:?}");
        assert_eq!((records[0].actor.as_str(), records[0].detail.as_str()), (ACTOR, third[0].as_str()));
        assert_eq!(records[0].actor_kind, "system");
    }
}
