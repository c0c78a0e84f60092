//! The identities as a checkpoint saves them (`identities-<g>.json`): declarations, merge
//! rules, each type's values, the observation log, the rows observations started and each
//! merged member id's own data. The profiles are not saved: open replays the log, which
//! gives the same profiles (the rules are deterministic).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::graph::TypeId;
use super::log::{Item, ObsKind};
use super::records::OwnRecord;
use super::{IdentifierDef, IdentityStore, MergeRule};
use crate::members::RowId;

/// An item of an observation: a member row with the top bit set, or `type << 32 | code`.
const MEMBER_BIT: u64 = 1 << 63;

#[derive(Serialize, Deserialize)]
struct SavedObservation {
    kind: ObsKind,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    undone: bool,
    at: i64,
    items: Vec<u64>,
}

#[derive(Serialize, Deserialize)]
struct SavedIdentities {
    defs: Vec<IdentifierDef>,
    #[serde(default)]
    merge_rules: BTreeMap<String, MergeRule>,
    /// Each type's values by code; `null` for a value erased with its member.
    values: Vec<Vec<Option<String>>>,
    observations: Vec<SavedObservation>,
    #[serde(default)]
    created: Vec<(u32, RowId)>,
    #[serde(default)]
    retired: Vec<RowId>,
    #[serde(default)]
    records: Vec<(RowId, OwnRecord)>,
}

/// The store as JSON bytes.
pub(crate) fn encode(store: &IdentityStore) -> Vec<u8> {
    let saved = SavedIdentities {
        defs: store.defs.clone(),
        merge_rules: store.merge_rules.clone(),
        values: store
            .values
            .iter()
            .map(|d| {
                (0..d.len() as u32)
                    .map(|c| (!d.is_blank(c)).then(|| d.get(c).to_string()))
                    .collect()
            })
            .collect(),
        observations: store
            .log
            .iter()
            .map(|o| SavedObservation {
                kind: o.kind,
                undone: o.undone,
                at: o.at,
                items: o
                    .items
                    .iter()
                    .map(|i| match *i {
                        Item::Member(r) => MEMBER_BIT | u64::from(r),
                        Item::Id((t, c)) => u64::from(t) << 32 | u64::from(c),
                    })
                    .collect(),
            })
            .collect(),
        created: {
            let mut c: Vec<(u32, RowId)> = store.created.iter().map(|(o, r)| (*o, *r)).collect();
            c.sort_unstable();
            c
        },
        retired: store.retired.iter().copied().collect(),
        records: {
            let mut r: Vec<(RowId, OwnRecord)> = store
                .records
                .iter()
                .map(|(row, rec)| (row, rec.clone()))
                .collect();
            r.sort_unstable_by_key(|(row, _)| *row);
            r
        },
    };
    serde_json::to_vec(&saved).expect("identities serialize")
}

/// The store [`encode`] wrote, checked against `member_count` rows, its profiles replayed.
pub(crate) fn decode(bytes: &[u8], member_count: usize) -> Result<IdentityStore, String> {
    let saved: SavedIdentities =
        serde_json::from_slice(bytes).map_err(|e| format!("not readable: {e}"))?;
    let row_ok = |r: RowId| (r as usize) < member_count;
    let mut store = IdentityStore::default();
    for def in saved.defs {
        store.declare(def).map_err(|e| e.to_string())?;
    }
    store.merge_rules = saved.merge_rules;
    if saved.values.len() != store.defs.len() {
        return Err("values of a type that is not declared".into());
    }
    for (t, values) in saved.values.iter().enumerate() {
        for v in values {
            let Some(v) = v else {
                store.values[t].push_blank();
                continue;
            };
            if store.values[t].intern(v).1 {
                continue;
            }
            return Err(format!(
                "a repeated value of identifier '{}'",
                store.defs[t].name
            ));
        }
    }
    for o in saved.observations {
        let mut items = Vec::with_capacity(o.items.len());
        for i in o.items {
            let item = if i & MEMBER_BIT != 0 {
                let r = (i & !MEMBER_BIT) as RowId;
                if !row_ok(r) || i & !MEMBER_BIT > u64::from(u32::MAX) {
                    return Err("an observation names a member row out of range".into());
                }
                Item::Member(r)
            } else {
                let t = (i >> 32) as usize;
                let c = i as u32;
                if t >= store.defs.len() || c as usize >= store.values[t].len() {
                    return Err("an observation names an unknown identifier".into());
                }
                Item::Id((t as TypeId, c))
            };
            items.push(item);
        }
        let id = store.log.push(o.kind, o.at, &items);
        if o.undone {
            store.log.undo(id);
        }
    }
    for (o, r) in saved.created {
        if o as usize > store.log.len() || o == 0 || !row_ok(r) {
            return Err("a started profile out of range".into());
        }
        store.created.insert(o, r);
    }
    for r in saved.retired {
        if !row_ok(r) {
            return Err("a retired row out of range".into());
        }
        store.retired.insert(r);
    }
    for (r, rec) in saved.records {
        if !row_ok(r) {
            return Err("a record of a member row out of range".into());
        }
        store.records.insert(r, rec);
    }
    store.replay_all().map_err(|e| e.to_string())?;
    Ok(store)
}
