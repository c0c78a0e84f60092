//! Identity reads through a [`Session`] (DESIGN sections 11 and 12): `ID.LOOKUP` answers
//! only with a member inside the user's scope (one outside reads as no member), and is
//! refused for an identifier type masked for the user (a lookup by value would probe it);
//! `MEMBER.HISTORY` shows a member of the scope, and is refused when any identifier type
//! is masked (its lines name identifier values). Identity writes (link, unlink, merge,
//! unmerge) change profiles across scopes and are left to unscoped users.

use super::session::Session;
use crate::error::{Error, Result};
use crate::identity::HistoryLine;

impl Session<'_> {
    /// `ID.LOOKUP` as the user may see it.
    pub fn lookup_identifier(&self, id_type: &str, value: &str) -> Result<Option<String>> {
        let access = self.access();
        access.require(super::Command::Read, "ID.LOOKUP")?;
        if access.mask_of(id_type).is_some() {
            return Err(Error::NoPermission(format!(
                "'{id_type}' is masked for user '{}': a lookup by its value is refused like a \
                 comparison",
                access.user()
            )));
        }
        let found = self.database().lookup_identifier(id_type, value)?;
        Ok(found.filter(|member| self.sees(member)))
    }

    /// `MEMBER.HISTORY` of a member of the user's scope.
    pub fn member_history(&self, member_id: &str) -> Result<Vec<HistoryLine>> {
        let access = self.access();
        access.require(super::Command::Read, "MEMBER.HISTORY")?;
        let db = self.database();
        if let Some(masked) = db
            .identifiers()
            .into_iter()
            .find(|i| access.mask_of(&i.def.name).is_some())
        {
            return Err(Error::NoPermission(format!(
                "MEMBER.HISTORY shows identifier values, and '{}' is masked for user '{}'",
                masked.def.name,
                access.user()
            )));
        }
        if !self.sees(member_id) {
            return Err(Error::InvalidSegment(format!(
                "unknown member '{member_id}'"
            )));
        }
        db.member_history(member_id)
    }
}
