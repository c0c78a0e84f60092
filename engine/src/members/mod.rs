//! The member dictionary: external `member_id` strings to dense `u32` row ids and back, and
//! the bitmap of live members that `NOT` and `ALL` range over.

use crate::bitmap::Bitmap;
use crate::error::{Error, Result};
use crate::util::dict::StrDict;

/// How an erased member's id reads in a stream entry or an audit record.
pub const ERASED: &str = "(erased)";

/// Dense row id of a member.
pub type RowId = u32;

/// `member_id` <-> row id, assigned on first sight and never reused. Shared copy-on-write
/// like the rest of the state.
#[derive(Clone, Debug, Default)]
pub(crate) struct MemberDict {
    ids: StrDict,
    live: Bitmap,
    /// Member ids merged into another profile (DESIGN section 11): the canonical row of
    /// each. Every command accepts them for their profile.
    aliases: std::sync::Arc<std::collections::HashMap<RowId, RowId>>,
}

impl MemberDict {
    /// Number of row ids ever assigned (live or not).
    pub(crate) fn len(&self) -> usize {
        self.ids.len()
    }

    pub(crate) fn live(&self) -> &Bitmap {
        &self.live
    }

    /// The live row `member_id` names: its own, or for an alias its profile's.
    pub(crate) fn lookup(&self, member_id: &str) -> Option<RowId> {
        let row = self.ids.lookup(member_id)?;
        if self.live.contains(row) {
            return Some(row);
        }
        self.aliases.get(&row).copied()
    }

    /// The row of `member_id` itself (live or not, an alias's own row).
    pub(crate) fn own_row(&self, member_id: &str) -> Option<RowId> {
        self.ids.lookup(member_id)
    }

    /// The rows that are aliases of `canonical`.
    pub(crate) fn aliases_of(&self, canonical: RowId) -> Vec<RowId> {
        let mut rows: Vec<RowId> = (self.aliases.iter())
            .filter(|(_, c)| **c == canonical)
            .map(|(r, _)| *r)
            .collect();
        rows.sort_unstable();
        rows
    }

    /// Makes `row` an alias of `canonical` (`None`: its own member again), and sets whether
    /// it is live.
    pub(crate) fn set_profile(&mut self, row: RowId, canonical: Option<RowId>, live: bool) {
        let aliases = std::sync::Arc::make_mut(&mut self.aliases);
        match canonical {
            Some(c) => aliases.insert(row, c),
            None => aliases.remove(&row),
        };
        if live != self.live.contains(row) {
            if live {
                self.live.make_mut().insert(row);
            } else {
                self.live.make_mut().remove(row);
            }
        }
    }

    /// Erases `row`'s member id (member erasure): the string leaves the dictionary, no
    /// lookup finds it, the row is not live and is nobody's alias; the row id is never
    /// given again.
    pub(crate) fn erase(&mut self, row: RowId) {
        self.ids.blank(row);
        self.set_profile(row, None, false);
    }

    /// Whether `row`'s member was erased.
    pub(crate) fn is_erased(&self, row: RowId) -> bool {
        self.ids.is_blank(row)
    }

    /// Whether some rows are not live (aliases, erased members).
    pub(crate) fn has_dead_rows(&self) -> bool {
        self.live.len() < self.ids.len() as u64
    }

    /// Sets which rows are live (a restore: the saved live rows).
    pub(crate) fn set_live(&mut self, live: roaring::RoaringBitmap) {
        self.live = Bitmap::new(live);
    }

    /// The row of `member_id`, creating the member if it is new.
    pub(crate) fn resolve_or_create(&mut self, member_id: &str) -> Result<(RowId, bool)> {
        if self.ids.len() >= u32::MAX as usize - 1 {
            return Err(Error::LimitExceeded(
                "a database holds at most 4,294,967,294 member ids".to_string(),
            ));
        }
        let (row, new) = self.ids.intern(member_id);
        // An alias's own row takes what is written to it, for its profile (the identities'
        // settling moves it there); it does not come back to life.
        if !self.live.contains(row) && !self.aliases.contains_key(&row) {
            self.live.make_mut().insert(row);
        }
        Ok((row, new))
    }

    /// Makes room for `additional` more members.
    pub(crate) fn reserve(&mut self, additional: usize) {
        self.ids.reserve(additional);
    }

    /// The dictionary of member ids (row id = code).
    pub(crate) fn ids(&self) -> &StrDict {
        &self.ids
    }

    /// Members restored from their saved dictionary of ids, every one live (ids are never
    /// taken back).
    pub(crate) fn restore(ids: StrDict) -> Self {
        let mut live = roaring::RoaringBitmap::new();
        live.insert_range(0..ids.len() as u32);
        MemberDict {
            ids,
            live: Bitmap::new(live),
            aliases: Default::default(),
        }
    }

    /// The member id of `row` (`""` for an erased member).
    pub(crate) fn member_id(&self, row: RowId) -> &str {
        self.ids.get(row)
    }

    /// The member id of `row` as readers of streams and the audit see it: `(erased)` for
    /// an erased member.
    pub(crate) fn shown_id(&self, row: RowId) -> &str {
        if self.is_erased(row) {
            ERASED
        } else {
            self.ids.get(row)
        }
    }

    pub(crate) fn heap_bytes(&self) -> usize {
        self.ids.heap_bytes() + self.live.heap_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_dense_and_stable() {
        let mut m = MemberDict::default();
        assert_eq!(m.resolve_or_create("M7").unwrap(), (0, true));
        assert_eq!(m.resolve_or_create("M9").unwrap(), (1, true));
        assert_eq!(m.resolve_or_create("M7").unwrap(), (0, false));
        assert_eq!(m.lookup("M9"), Some(1));
        assert_eq!(m.member_id(1), "M9");
        assert_eq!(m.live().len(), 2);
    }
}
