//! What changes touched: the members whose facts changed and the names of the facts, which
//! is all a dynamic group needs to know to stay right without being evaluated again over
//! everyone (`State::refresh_groups`).

use std::collections::BTreeSet;

use roaring::RoaringBitmap;

use crate::members::RowId;

/// The members a batch of changes touched, and what of theirs it changed. A member's
/// membership in a group depends only on that member's own facts, so a group whose
/// reads are untouched keeps its members, and one whose reads are touched changes at most
/// for the touched members.
#[derive(Clone, Debug, Default)]
pub(crate) struct Touched {
    /// Members whose tags, attributes or events changed, or who were created.
    pub(crate) members: RoaringBitmap,
    /// Members were created: groups that range over every member (`NOT`, `ALL`, counts
    /// that hold for members without events) may take them in.
    pub(crate) created: bool,
    pub(crate) tags: BTreeSet<String>,
    pub(crate) attributes: BTreeSet<String>,
    pub(crate) events: BTreeSet<String>,
    /// Members of profiles that merged or split (DESIGN section 11): their changes of
    /// group have cause `merge`.
    pub(crate) merged: RoaringBitmap,
    /// Members erased (`MEMBER.ERASE`): they leave every group, cause `erase`.
    pub(crate) erased: RoaringBitmap,
    /// Identifiers changed (an observation, unlink or unmerge): the groups reading
    /// identifier types are looked at.
    pub(crate) identities: bool,
    /// The change was an identity change (not a data write): nothing to settle into the
    /// merged member ids' records.
    pub(crate) identity_only: bool,
    /// Groups whose members changed.
    pub(crate) groups: BTreeSet<String>,
    /// Groups defined: evaluated over every member.
    pub(crate) defined: BTreeSet<String>,
    /// Anything may have changed (a restore, a type change): every group is evaluated.
    pub(crate) everything: bool,
    /// The type and time of every event added, when the change added them one by one
    /// (`EVENT.ADD`); `None` after a load. The next time-driven change of what reads
    /// their windows is then found from them alone.
    pub(crate) event_times: Option<Vec<(String, i64)>>,
}

impl Touched {
    /// Every group evaluated over every member as if just defined: a database's groups
    /// restored at open, without history.
    pub(crate) fn restored<'a>(names: impl Iterator<Item = &'a str>) -> Self {
        Touched {
            everything: true,
            defined: names.map(str::to_string).collect(),
            ..Touched::default()
        }
    }

    /// Notes members (`created` when any of them is new).
    pub(crate) fn members(&mut self, rows: &[RowId], created: bool) {
        self.members.extend(rows.iter().copied());
        self.created |= created;
    }

    /// Nothing was touched.
    pub(crate) fn is_empty(&self) -> bool {
        !self.everything
            && self.members.is_empty()
            && self.defined.is_empty()
            && self.groups.is_empty()
    }
}
