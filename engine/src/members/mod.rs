//! The member dictionary: external `member_id` strings to dense `u32` row ids and back, and
//! the bitmap of live members that `NOT` and `ALL` range over.

use crate::bitmap::Bitmap;
use crate::error::{Error, Result};
use crate::util::dict::StrDict;

/// Dense row id of a member.
pub type RowId = u32;

/// `member_id` <-> row id, assigned on first sight and never reused. Shared copy-on-write
/// like the rest of the state.
#[derive(Clone, Debug, Default)]
pub(crate) struct MemberDict {
    ids: StrDict,
    live: Bitmap,
}

impl MemberDict {
    /// Number of row ids ever assigned (live or not).
    pub(crate) fn len(&self) -> usize {
        self.ids.len()
    }

    pub(crate) fn live(&self) -> &Bitmap {
        &self.live
    }

    pub(crate) fn lookup(&self, member_id: &str) -> Option<RowId> {
        self.ids
            .lookup(member_id)
            .filter(|row| self.live.contains(*row))
    }

    /// The row of `member_id`, creating the member if it is new.
    pub(crate) fn resolve_or_create(&mut self, member_id: &str) -> Result<(RowId, bool)> {
        if self.ids.len() >= u32::MAX as usize - 1 {
            return Err(Error::LimitExceeded(
                "a database holds at most 4,294,967,294 member ids".to_string(),
            ));
        }
        let (row, new) = self.ids.intern(member_id);
        if !self.live.contains(row) {
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
        }
    }

    pub(crate) fn member_id(&self, row: RowId) -> &str {
        self.ids.get(row)
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
