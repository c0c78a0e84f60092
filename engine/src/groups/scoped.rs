//! A group's change stream as a scoped reader sees it (DESIGN section 12): the changes of
//! the group's members inside the scope. The scope is kept as a group of its own, whose
//! stream says when members entered and left it; a member of the group entering or leaving
//! the scope is an entry with cause `scope`.
//!
//! The view is computed when read, from the two streams and the two bitmaps of one
//! snapshot: the memberships at the start of the position read from are the bitmaps now
//! with the later entries undone, then both streams are replayed position by position (the
//! group's entries first, then the scope's), and an entry is kept where the member's
//! membership of *group AND scope* changes. A kept entry of the group keeps its id; an
//! entry of the scope at position `p` takes id `p-<k + n>`, `k` being the group's entries
//! at `p`: ids grow and do not change between reads, so a reader resumes from the last one.

use std::collections::HashMap;

use super::Group;
use super::stream::{ChangeCause, ChangeOp, EntryId, Trimmed};
use crate::members::RowId;

/// The name a view's consumer groups are kept under: the group's and the scope group's
/// names joined by a NUL, which no name holds (`wal::change::check_name`).
pub(crate) fn view_key(group: &str, scope: &str) -> String {
    format!("{group}\0{scope}")
}

/// The group and scope group of a view's key; `None` for a group's own name.
pub(crate) fn split_view_key(key: &str) -> Option<(&str, &str)> {
    key.split_once('\0')
}

/// An entry of a view: id, member row, op, cause, instant.
pub(crate) type ViewEntry = (EntryId, RowId, ChangeOp, ChangeCause, i64);

const END: EntryId = EntryId {
    position: u64::MAX,
    n: u32::MAX,
};

/// The view of `group` through `scope` (a group holding the scope's members).
pub(crate) struct ScopedView<'a> {
    pub(crate) group: &'a Group,
    pub(crate) scope: &'a Group,
}

impl ScopedView<'_> {
    /// The first id the view can be read after: its history starts where the scope's
    /// group was defined.
    pub(crate) fn starts_after(&self) -> EntryId {
        EntryId::new(self.scope.defined_at, 0)
    }

    /// The newest id of the view (what a snapshot is taken at).
    pub(crate) fn last_id(&self) -> EntryId {
        let g = self.group.stream.last_id;
        let s = self.scope.stream.last_id;
        let scope_last = if s == EntryId::ZERO {
            EntryId::ZERO
        } else {
            let k = self.group_entries_at(s.position);
            EntryId::new(s.position, k + s.n)
        };
        g.max(scope_last).max(self.starts_after())
    }

    /// The members of the view now.
    pub(crate) fn members(&self) -> roaring::RoaringBitmap {
        self.group.bitmap.as_ref() & self.scope.bitmap.as_ref()
    }

    fn group_entries_at(&self, position: u64) -> u32 {
        let at = self.group.stream.range(
            EntryId::new(position, 0),
            EntryId::new(position, u32::MAX),
            usize::MAX,
        );
        at.len() as u32
    }

    /// Entries after `after`, oldest first, at most `limit`; `Trimmed` when the view
    /// cannot say what came after `after` (retention removed entries of either stream, or
    /// `after` is older than the scope's group).
    pub(crate) fn after(&self, after: EntryId, limit: usize) -> Result<Vec<ViewEntry>, Trimmed> {
        let start = EntryId::new(after.position, 0);
        let oldest = || Trimmed {
            oldest: self.starts_after(),
        };
        if after < self.starts_after() {
            return Err(oldest());
        }
        self.group.stream.check_after(start)?;
        self.scope.stream.check_after(start).map_err(|_| oldest())?;
        let g = self.group.stream.range(start, END, usize::MAX);
        let s = self.scope.stream.range(start, END, usize::MAX);
        // Memberships at the start of the position read from: a member's first entry says
        // (an exit: it was in), else the bitmap now.
        let mut in_group: HashMap<RowId, bool> = HashMap::new();
        for e in &g {
            in_group.entry(e.1).or_insert(e.2 == ChangeOp::Exit);
        }
        let mut in_scope: HashMap<RowId, bool> = HashMap::new();
        for e in &s {
            in_scope.entry(e.1).or_insert(e.2 == ChangeOp::Exit);
        }
        let group_now = self.group.bitmap.as_ref();
        let scope_now = self.scope.bitmap.as_ref();
        let mut out = Vec::new();
        let (mut i, mut j) = (0, 0);
        while (i < g.len() || j < s.len()) && out.len() < limit {
            let position = match (g.get(i), s.get(j)) {
                (Some(a), Some(b)) => a.0.position.min(b.0.position),
                (Some(a), None) => a.0.position,
                (None, Some(b)) => b.0.position,
                (None, None) => break,
            };
            let mut k = 0;
            while let Some(&(id, row, op, cause, at)) =
                g.get(i).filter(|e| e.0.position == position)
            {
                i += 1;
                k += 1;
                let s_in = *in_scope
                    .entry(row)
                    .or_insert_with(|| scope_now.contains(row));
                let was = in_group.insert(row, op == ChangeOp::Enter);
                let was = was.unwrap_or_else(|| group_now.contains(row));
                if s_in && was != (op == ChangeOp::Enter) && id > after {
                    out.push((id, row, op, cause, at));
                }
            }
            while let Some(&(id, row, op, _, at)) = s.get(j).filter(|e| e.0.position == position) {
                j += 1;
                let g_in = *in_group
                    .entry(row)
                    .or_insert_with(|| group_now.contains(row));
                let was = in_scope.insert(row, op == ChangeOp::Enter);
                let was = was.unwrap_or_else(|| scope_now.contains(row));
                let id = EntryId::new(position, k + id.n);
                if g_in && was != (op == ChangeOp::Enter) && id > after {
                    out.push((id, row, op, ChangeCause::Scope, at));
                }
            }
        }
        out.truncate(limit);
        Ok(out)
    }
}
