//! Member erasure through the crate (`MEMBER.ERASE`, DESIGN section 12): the change logged
//! by row id, then a checkpoint without the member and every older file removed.

use super::Database;
use crate::error::{Error, Result};
use crate::members::RowId;
use crate::wal::change::{Change, Outcome};

/// What an erasure did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Erasure {
    /// The internal row of the profile erased (the audit names members by row).
    pub row: RowId,
    /// Member ids erased: the member and its aliases.
    pub member_ids: u64,
}

impl Database {
    /// Erases member `member_id` and its aliases (DESIGN section 12): attributes, tags,
    /// events, identifiers, observations, trait values and group membership (exit, cause
    /// `erase`). Returns once a checkpoint without the member's data is durable and every
    /// older file that held it (data files, logs, bulk-load files) is deleted. The row id is
    /// never reused; the members file keeps the row with every value NULL, member_id
    /// included, and not live. An in-memory database only changes its state.
    pub fn erase(&self, member_id: &str) -> Result<Erasure> {
        let erasure = self.erase_logged(member_id)?;
        if self.core.committed().storage.is_some() {
            self.core.checkpoint_and_remove_superseded()?;
        }
        Ok(erasure)
    }

    /// The erasure's change alone, committed and applied, without the checkpoint that
    /// removes the older files: what a crash right after the commit leaves (tests of the
    /// open that finishes it; feature `fuzzing`).
    #[cfg(feature = "fuzzing")]
    #[doc(hidden)]
    pub fn erase_without_checkpoint(&self, member_id: &str) -> Result<Erasure> {
        self.erase_logged(member_id)
    }

    fn erase_logged(&self, member_id: &str) -> Result<Erasure> {
        let row = self.snapshot().members.lookup(member_id).ok_or_else(|| {
            Error::InvalidSegment(format!("unknown member '{member_id}'; nothing was erased"))
        })?;
        let member_ids = match self.write(Change::EraseMember { row })? {
            Outcome::Count(n) => n,
            _ => 0,
        };
        Ok(Erasure { row, member_ids })
    }
}
