//! What changes touched: the members whose facts changed and the names of the facts, which
//! is all a dynamic group needs to know to stay right without being evaluated again over
//! everyone (`State::refresh_groups`).

use std::collections::BTreeSet;

use roaring::RoaringBitmap;

use crate::members::RowId;
use crate::segment::Segment;

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
    /// Groups whose members changed.
    pub(crate) groups: BTreeSet<String>,
    /// Groups defined: evaluated over every member.
    pub(crate) defined: BTreeSet<String>,
    /// Anything may have changed (a restore, a type change): every group is evaluated.
    pub(crate) everything: bool,
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

    /// Whether a group whose definition is `definition` may have changed.
    pub(crate) fn affects(&self, definition: &Segment) -> bool {
        if self.everything || self.created {
            return true;
        }
        let mut reads = Reads::default();
        reads.of(definition);
        reads.tags.iter().any(|t| self.tags.contains(*t))
            || reads
                .attributes
                .iter()
                .any(|a| self.attributes.contains(*a))
            || reads.events.iter().any(|e| self.events.contains(*e))
            || reads.groups.iter().any(|g| self.groups.contains(*g))
    }

    /// Nothing was touched.
    pub(crate) fn is_empty(&self) -> bool {
        !self.everything
            && self.members.is_empty()
            && self.defined.is_empty()
            && self.groups.is_empty()
    }
}

/// The names a definition reads.
#[derive(Default)]
struct Reads<'a> {
    tags: Vec<&'a str>,
    attributes: Vec<&'a str>,
    events: Vec<&'a str>,
    groups: Vec<&'a str>,
}

impl<'a> Reads<'a> {
    fn of(&mut self, segment: &'a Segment) {
        match segment {
            Segment::All => {}
            Segment::Tag(t) => self.tags.push(t),
            Segment::InGroup(g) => self.groups.push(g),
            Segment::Attr { name, .. } => self.attributes.push(name),
            Segment::Did(did) => self.events.push(&did.event),
            Segment::And(children) | Segment::Or(children) => {
                children.iter().for_each(|c| self.of(c))
            }
            Segment::Not(inner) => self.of(inner),
        }
    }
}
