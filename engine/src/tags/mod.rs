//! Tags: one roaring bitmap of members per tag name, and exclusive tag groups (setting one
//! tag of such a group clears the others of the group for that member).

use std::collections::BTreeMap;
use std::sync::Arc;

use roaring::RoaringBitmap;

use crate::bitmap::Bitmap;
use crate::error::{Error, Result};
use crate::members::RowId;

/// Every tag and its members. The map and each bitmap are shared copy-on-write: a snapshot
/// shares them, a later change copies the map's references and the one bitmap it changes.
#[derive(Clone, Debug, Default)]
pub(crate) struct TagStore {
    tags: Arc<BTreeMap<String, Bitmap>>,
    /// Exclusive groups: (group name, its tags). A tag is in at most one group.
    exclusive: Vec<(String, Vec<String>)>,
}

impl TagStore {
    pub(crate) fn get(&self, tag: &str) -> Option<&Bitmap> {
        self.tags.get(tag)
    }

    pub(crate) fn names(&self) -> impl Iterator<Item = &str> {
        self.tags.keys().map(String::as_str)
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = (&str, &RoaringBitmap)> {
        self.tags.iter().map(|(k, v)| (k.as_str(), v.as_ref()))
    }

    /// The other tags of `tag`'s exclusive group, if it has one.
    pub(crate) fn siblings(&self, tag: &str) -> Option<Vec<String>> {
        self.exclusive
            .iter()
            .find(|(_, tags)| tags.iter().any(|t| t == tag))
            .map(|(_, tags)| tags.iter().filter(|t| *t != tag).cloned().collect())
    }

    pub(crate) fn exclusive_groups(&self) -> &[(String, Vec<String>)] {
        &self.exclusive
    }

    /// Declares an exclusive group; refused when a member already holds two of its tags.
    pub(crate) fn declare_exclusive(&mut self, name: &str, tags: &[&str]) -> Result<()> {
        if name.is_empty() || tags.len() < 2 || tags.iter().any(|t| t.is_empty()) {
            return Err(Error::InvalidSegment(
                "an exclusive tag group needs a name and at least two non-empty tags".to_string(),
            ));
        }
        if self.exclusive.iter().any(|(n, _)| n == name) {
            return Err(Error::Conflict(format!(
                "exclusive tag group '{name}' already exists"
            )));
        }
        if let Some(t) = tags.iter().find(|t| self.siblings(t).is_some()) {
            return Err(Error::Conflict(format!(
                "tag '{t}' is already in an exclusive group"
            )));
        }
        let mut seen = RoaringBitmap::new();
        let mut clashes = RoaringBitmap::new();
        for t in tags {
            if let Some(members) = self.tags.get(*t) {
                clashes |= &seen & members.as_ref();
                seen |= members.as_ref();
            }
        }
        if !clashes.is_empty() {
            return Err(Error::Conflict(format!(
                "{} members hold more than one of {}; remove the extra tags first",
                clashes.len(),
                tags.join(", ")
            )));
        }
        for t in tags {
            self.tags_mut().entry(t.to_string()).or_default();
        }
        self.exclusive.push((
            name.to_string(),
            tags.iter().map(|t| t.to_string()).collect(),
        ));
        Ok(())
    }

    /// Adds `row` to `tag` (creating the tag), clearing the other tags of its exclusive
    /// group. True when it was not there.
    pub(crate) fn add(&mut self, tag: &str, row: RowId) -> bool {
        for sibling in self.siblings(tag).unwrap_or_default() {
            self.remove(&sibling, row);
        }
        match self.tags.get(tag) {
            Some(bitmap) if bitmap.contains(row) => false,
            Some(_) => {
                let bitmap = self.tags_mut().get_mut(tag).expect("present");
                bitmap.make_mut().insert(row)
            }
            None => {
                self.tags_mut().insert(
                    tag.to_string(),
                    Bitmap::new(RoaringBitmap::from_iter([row])),
                );
                true
            }
        }
    }

    /// Adds many members to a tag outside any exclusive group; `rows` need not be sorted.
    /// (Exclusive tags go through [`TagStore::add`], in input order, so the last one wins.)
    pub(crate) fn add_many(&mut self, tag: &str, rows: &[RowId]) {
        debug_assert!(self.siblings(tag).is_none());
        let mut sorted = rows.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        let added = RoaringBitmap::from_sorted_iter(sorted).expect("sorted and deduplicated");
        *self
            .tags_mut()
            .entry(tag.to_string())
            .or_default()
            .make_mut() |= added;
    }

    /// Removes `row` from `tag`. True when it was there. The tag stays known when empty.
    pub(crate) fn remove(&mut self, tag: &str, row: RowId) -> bool {
        if !self.tags.get(tag).is_some_and(|b| b.contains(row)) {
            return false;
        }
        let bitmap = self.tags_mut().get_mut(tag).expect("present");
        bitmap.make_mut().remove(row)
    }

    /// Removes `rows` from every tag (member erasure). The tags stay known.
    pub(crate) fn remove_rows(&mut self, rows: &RoaringBitmap) {
        let holding: Vec<String> = (self.tags.iter())
            .filter(|(_, b)| !b.as_ref().is_disjoint(rows))
            .map(|(k, _)| k.clone())
            .collect();
        for tag in holding {
            let bitmap = self.tags_mut().get_mut(&tag).expect("present");
            *bitmap.make_mut() -= rows;
        }
    }

    /// The map, for changing (its references are copied first if a snapshot shares it).
    fn tags_mut(&mut self) -> &mut BTreeMap<String, Bitmap> {
        Arc::make_mut(&mut self.tags)
    }

    /// Tags of one member.
    pub(crate) fn tags_of(&self, row: RowId) -> Vec<&str> {
        self.tags
            .iter()
            .filter(|(_, b)| b.contains(row))
            .map(|(k, _)| k.as_str())
            .collect()
    }

    pub(crate) fn insert_bitmap(&mut self, tag: String, bitmap: RoaringBitmap) {
        self.tags_mut().insert(tag, Bitmap::new(bitmap));
    }

    pub(crate) fn heap_bytes(&self) -> usize {
        self.tags.values().map(Bitmap::heap_bytes).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exclusive_group_keeps_one_tag() {
        let mut tags = TagStore::default();
        tags.add("gold", 1);
        tags.add("silver", 2);
        tags.declare_exclusive("tier", &["gold", "silver", "bronze"])
            .unwrap();
        tags.add("silver", 1);
        assert!(!tags.get("gold").unwrap().contains(1));
        assert!(tags.get("silver").unwrap().contains(1));
        assert_eq!(tags.tags_of(1), vec!["silver"]);
        assert!(tags.declare_exclusive("again", &["gold", "x"]).is_err());
        tags.add("x", 1);
        tags.add("y", 1);
        let err = tags
            .declare_exclusive("xy", &["x", "y"])
            .unwrap_err()
            .to_string();
        assert!(err.contains("1 members hold more than one"), "{err}");
    }
}
