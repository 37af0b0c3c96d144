//! Test fixtures shared by the store's unit tests.

use super::{NewAgent, Store};
use crate::directory::Level;

/// Loads the demo county into `store` and enrols agent `ag-1` in its first
/// village; returns that village's id.
pub(crate) fn demo_with_agent(store: &dyn Store) -> i64 {
    for rows in crate::directory::demo::demo_county().chunks(500) {
        store.import_regions(rows).expect("demo county imports");
    }
    let village = store.regions().expect("regions").into_iter().find(|r| r.level == Level::Village);
    let village = village.expect("a village").id;
    store.create_enrolment_code(village, "ABCD-EFGH", 10_000, 0).expect("code");
    let agent = NewAgent {
        id: "ag-1".into(),
        secret_hash: "h".into(),
        hostname: "pi".into(),
        agent_version: "t".into(),
        hardware_json: "{}".into(),
        enrolled_at_ms: 1,
    };
    store.redeem_enrolment_code("ABCD-EFGH", 1, &agent).expect("redeem");
    village
}
