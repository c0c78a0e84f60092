//! Tags: one roaring bitmap of members per tag name.

use std::collections::BTreeMap;

use roaring::RoaringBitmap;

use crate::members::RowId;

/// Every tag and its members.
#[derive(Clone, Debug, Default)]
pub(crate) struct TagStore {
    tags: BTreeMap<String, RoaringBitmap>,
}

impl TagStore {
    pub(crate) fn get(&self, tag: &str) -> Option<&RoaringBitmap> {
        self.tags.get(tag)
    }

    pub(crate) fn names(&self) -> impl Iterator<Item = &str> {
        self.tags.keys().map(String::as_str)
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = (&str, &RoaringBitmap)> {
        self.tags.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// Adds `row` to `tag` (creating the tag). True when it was not there.
    pub(crate) fn add(&mut self, tag: &str, row: RowId) -> bool {
        match self.tags.get_mut(tag) {
            Some(bitmap) => bitmap.insert(row),
            None => {
                self.tags
                    .insert(tag.to_string(), RoaringBitmap::from_iter([row]));
                true
            }
        }
    }

    /// Adds many members to `tag` at once; `rows` need not be sorted.
    pub(crate) fn add_many(&mut self, tag: &str, rows: &[RowId]) {
        let mut sorted = rows.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        let added = RoaringBitmap::from_sorted_iter(sorted).expect("sorted and deduplicated");
        *self.tags.entry(tag.to_string()).or_default() |= added;
    }

    /// Removes `row` from `tag`. True when it was there. The tag stays known when empty.
    pub(crate) fn remove(&mut self, tag: &str, row: RowId) -> bool {
        self.tags.get_mut(tag).is_some_and(|b| b.remove(row))
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
        self.tags.insert(tag, bitmap);
    }

    pub(crate) fn heap_bytes(&self) -> usize {
        self.tags.values().map(RoaringBitmap::serialized_size).sum()
    }
}
