//! Member erasure (`MEMBER.ERASE`, DESIGN section 12), applied through the one apply path:
//! a profile's attributes, tags, events, identifiers, observations, own records and member
//! ids leave every store, and values only it held leave the dictionaries, so the next
//! checkpoint writes none of them. The rows stay, never live again, their member ids NULL.

use std::collections::BTreeSet;
use std::sync::Arc;

use roaring::RoaringBitmap;

use crate::error::{Error, Result};
use crate::members::RowId;
use crate::state::{State, Touched};
use crate::wal::change::Outcome;

/// Erases the profile whose canonical row is `row` and its aliases; answers how many member
/// ids (rows) were erased.
pub(crate) fn erase(state: &mut State, row: RowId, touched: &mut Touched) -> Result<Outcome> {
    if !state.members.live().contains(row) {
        return Err(Error::InvalidSegment(format!(
            "member row {row} is not a live member; nothing was erased"
        )));
    }
    let mut rows: BTreeSet<RowId> = BTreeSet::from([row]);
    rows.extend(state.members.aliases_of(row));
    rows.extend(state.identity.aliases_of(row));
    let list: Vec<RowId> = rows.iter().copied().collect();
    let bitmap: RoaringBitmap = rows.iter().copied().collect();

    state.attrs.erase_rows(&list);
    state.tags.remove_rows(&bitmap);
    for (name, partition) in state.events.types.iter_mut() {
        if let Some(kept) = partition.without_members(&bitmap) {
            *partition = Arc::new(kept);
            touched.events.insert(name.clone());
        }
    }
    let identity_holds = !state.identity.is_empty()
        || rows
            .iter()
            .any(|&r| state.identity.records.get(r).is_some());
    if identity_holds {
        state.identity_mut().erase(&rows)?;
        touched.identities = true;
    }
    for &r in &list {
        state.members.erase(r);
    }
    touched.members(&list, false);
    touched.erased |= &bitmap;
    touched.identity_only = true;
    Ok(Outcome::Count(list.len() as u64))
}

/// Sets the erased rows' trait values to NULL and erases values only they held, once the
/// traits were refreshed for them.
pub(crate) fn erase_trait_values(state: &mut State, erased: &RoaringBitmap) {
    let rows: Vec<RowId> = erased.iter().collect();
    for t in &mut state.traits.traits {
        let column = &t.values.column;
        if column.dict().is_some()
            || rows
                .iter()
                .any(|&r| (r as usize) < column.len() && column.is_valid(r as usize))
        {
            Arc::make_mut(&mut t.values).erase_rows(&rows);
        }
    }
}
