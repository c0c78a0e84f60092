//! Dynamic groups: named segments whose members are kept materialised.
//!
//! A group that does not depend on *now* keeps its bitmap, recomputed after every change of
//! the data (a later issue makes this incremental). A group with an `IN LAST` window (or one
//! that refers to such a group) is evaluated against the query's *now* each time, so
//! `IN GROUP g` always means "the members the definition selects now".
//!
//! A group may refer only to groups that exist when it is defined, and a group still
//! referred to cannot be dropped, so definitions never form a cycle.

pub(crate) mod stored;

use crate::bitmap::Bitmap;
use crate::error::{Error, Result};
use crate::segment::Segment;

/// One dynamic group.
#[derive(Clone, Debug)]
pub(crate) struct Group {
    pub(crate) name: String,
    pub(crate) definition: Segment,
    /// Moves with *now*: evaluated at query time instead of read from `bitmap`.
    pub(crate) time_dependent: bool,
    pub(crate) bitmap: Bitmap,
}

/// All groups, in definition order (a group only refers to earlier ones).
#[derive(Clone, Debug, Default)]
pub(crate) struct GroupStore {
    pub(crate) groups: Vec<Group>,
}

impl GroupStore {
    pub(crate) fn get(&self, name: &str) -> Option<&Group> {
        self.groups.iter().find(|g| g.name == name)
    }

    pub(crate) fn require(&self, name: &str) -> Result<&Group> {
        self.get(name)
            .ok_or_else(|| Error::unknown("group", name, self.names()))
    }

    pub(crate) fn names(&self) -> impl Iterator<Item = &str> {
        self.groups.iter().map(|g| g.name.as_str())
    }

    /// Checks a new definition and adds it with an empty bitmap; the caller refreshes it.
    pub(crate) fn define(&mut self, name: &str, definition: Segment) -> Result<usize> {
        if name.is_empty() {
            return Err(Error::InvalidSegment("a group needs a name".to_string()));
        }
        if self.get(name).is_some() {
            return Err(Error::Conflict(format!(
                "group '{name}' already exists; drop it first to redefine it"
            )));
        }
        let mut refs = Vec::new();
        definition.referenced_groups(&mut refs);
        let mut time_dependent = definition.uses_relative_time();
        for r in refs {
            if r == name {
                return Err(Error::InvalidSegment(format!(
                    "group '{name}' cannot refer to itself"
                )));
            }
            time_dependent |= self.require(r)?.time_dependent;
        }
        self.groups.push(Group {
            name: name.to_string(),
            definition,
            time_dependent,
            bitmap: Bitmap::default(),
        });
        Ok(self.groups.len() - 1)
    }

    pub(crate) fn drop_group(&mut self, name: &str) -> Result<()> {
        let pos = self
            .groups
            .iter()
            .position(|g| g.name == name)
            .ok_or_else(|| Error::unknown("group", name, self.names()))?;
        let users: Vec<&str> = self
            .groups
            .iter()
            .filter(|g| {
                let mut refs = Vec::new();
                g.definition.referenced_groups(&mut refs);
                refs.contains(&name)
            })
            .map(|g| g.name.as_str())
            .collect();
        if !users.is_empty() {
            return Err(Error::Conflict(format!(
                "group '{name}' is used by {}; drop those first",
                users.join(", ")
            )));
        }
        self.groups.remove(pos);
        Ok(())
    }
}
