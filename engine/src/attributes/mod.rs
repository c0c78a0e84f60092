//! Member attributes: one typed column per attribute, each with its bitmap indexes.

pub(crate) mod index;

pub(crate) use index::{Access, AttrIndex, complement, slot_of};

use std::sync::Arc;

use roaring::RoaringBitmap;

use crate::bitmap::{CHUNK_BITS, Chunks};
use crate::column::{Column, Matcher};
use crate::error::{Error, Result};
use crate::members::RowId;
use crate::value::{DataType, Value};

/// Rows tested per block of a scan.
const SCAN_BLOCK: usize = 4096;

/// Names no attribute may take: the members file's own columns beside `member_id`
/// (`docs/format.md`, version 10), which engines reading the files build bitmaps on.
pub(crate) const RESERVED: [&str; 2] = ["member_row", "live"];

/// One attribute: its values and its indexes.
#[derive(Clone, Debug)]
pub(crate) struct Attribute {
    pub(crate) name: String,
    pub(crate) column: Column,
    pub(crate) index: AttrIndex,
}

impl Attribute {
    /// Sets `rows` to NULL (keeping the index current) and erases from the dictionary every
    /// value no row holds any more (member erasure; see [`Column::blank_unreferenced`]).
    pub(crate) fn erase_rows(&mut self, rows: &[RowId]) {
        for &row in rows {
            if (row as usize) < self.column.len() && self.column.is_valid(row as usize) {
                self.index.set(&mut self.column, row, None);
            }
        }
        self.column.blank_unreferenced();
    }
}

/// Every attribute, in the order they were first seen. Every column has one row per member.
/// Each attribute is shared copy-on-write on its own: a snapshot costs one reference per
/// attribute, and a later change copies only the attribute it changes (its chunk and
/// bitmap references, not their contents).
#[derive(Clone, Debug, Default)]
pub(crate) struct AttributeStore {
    attrs: Vec<Arc<Attribute>>,
}

impl AttributeStore {
    pub(crate) fn get(&self, name: &str) -> Option<&Attribute> {
        self.attrs.iter().map(Arc::as_ref).find(|a| a.name == name)
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = &Attribute> {
        self.attrs.iter().map(Arc::as_ref)
    }

    pub(crate) fn names(&self) -> impl Iterator<Item = &str> {
        self.attrs.iter().map(|a| a.name.as_str())
    }

    /// The attribute `name`, or an error naming the closest attributes.
    pub(crate) fn require(&self, name: &str) -> Result<&Attribute> {
        self.get(name)
            .ok_or_else(|| Error::unknown("attribute", name, self.names()))
    }

    /// Makes sure `name` exists with `data_type`, creating it (all NULL) over `members` rows.
    /// The names of the members file's own columns ([`RESERVED`]) are refused.
    pub(crate) fn ensure(
        &mut self,
        name: &str,
        data_type: DataType,
        members: usize,
    ) -> Result<usize> {
        if let Some(pos) = self.attrs.iter().position(|a| a.name == name) {
            let existing = self.attrs[pos].column.data_type();
            if existing != data_type {
                return Err(Error::InvalidSegment(format!(
                    "attribute '{name}' is of type {existing}, not {data_type}"
                )));
            }
            return Ok(pos);
        }
        if RESERVED.contains(&name) {
            return Err(Error::Conflict(format!(
                "'{name}' cannot be an attribute: the members file keeps its own '{name}' \
                 column (with {}); rename the column, or leave it out of the load (skip rule)",
                RESERVED.join(", ")
            )));
        }
        let column = Column::nulls(data_type, members);
        let index = AttrIndex::build(&column);
        self.attrs.push(Arc::new(Attribute {
            name: name.to_string(),
            column,
            index,
        }));
        Ok(self.attrs.len() - 1)
    }

    /// Grows every column to `members` rows (new members have NULL attributes).
    pub(crate) fn grow(&mut self, members: usize) {
        for attr in &mut self.attrs {
            let missing = members.saturating_sub(attr.column.len());
            if missing > 0 {
                Arc::make_mut(attr).column.extend_nulls(missing);
            }
        }
    }

    /// Every attribute's values of `rows` erased ([`Attribute::erase_rows`]). Every string
    /// attribute's dictionary is swept, since a value the member held before it was
    /// overwritten is still there; other attributes are copied only if the rows have a
    /// value.
    pub(crate) fn erase_rows(&mut self, rows: &[RowId]) {
        for attr in &mut self.attrs {
            let column = &attr.column;
            if column.dict().is_some()
                || rows
                    .iter()
                    .any(|&r| (r as usize) < column.len() && column.is_valid(r as usize))
            {
                Arc::make_mut(attr).erase_rows(rows);
            }
        }
    }

    pub(crate) fn by_position_mut(&mut self, pos: usize) -> &mut Attribute {
        Arc::make_mut(&mut self.attrs[pos])
    }

    /// Sets one value (already coerced to the column type), keeping the index current.
    pub(crate) fn set_value(&mut self, pos: usize, row: RowId, value: Option<&Value>) {
        let attr = Arc::make_mut(&mut self.attrs[pos]);
        attr.index.set(&mut attr.column, row, value);
    }

    pub(crate) fn rebuild_index(&mut self, pos: usize) {
        let attr = Arc::make_mut(&mut self.attrs[pos]);
        attr.index = AttrIndex::build(&attr.column);
    }

    /// Replaces the column of attribute `name` (same rows, maybe another type) and rebuilds
    /// its index.
    pub(crate) fn replace_column(&mut self, name: &str, column: Column) -> Result<()> {
        let pos = self
            .attrs
            .iter()
            .position(|a| a.name == name)
            .ok_or_else(|| Error::unknown("attribute", name, self.names()))?;
        let index = AttrIndex::build(&column);
        self.attrs[pos] = Arc::new(Attribute {
            name: name.to_string(),
            column,
            index,
        });
        Ok(())
    }

    /// Removes attribute `name`.
    pub(crate) fn remove(&mut self, name: &str) -> Result<()> {
        let pos = self
            .attrs
            .iter()
            .position(|a| a.name == name)
            .ok_or_else(|| Error::unknown("attribute", name, self.names()))?;
        self.attrs.remove(pos);
        Ok(())
    }

    pub(crate) fn push_restored(&mut self, name: String, column: Column) {
        let index = AttrIndex::build(&column);
        self.push_indexed(name, column, index);
    }

    /// Adds a restored attribute with its saved index.
    pub(crate) fn push_indexed(&mut self, name: String, column: Column, index: AttrIndex) {
        self.attrs.push(Arc::new(Attribute {
            name,
            column,
            index,
        }));
    }

    pub(crate) fn heap_bytes(&self) -> usize {
        self.attrs
            .iter()
            .map(|a| a.column.heap_bytes() + a.index.heap_bytes())
            .sum()
    }
}

impl Attribute {
    /// `name = value` for the value in slot `slot` of the value bitmaps (a string code, or
    /// 0 / 1 for bools).
    pub(crate) fn value_label(&self, slot: usize) -> String {
        let value = match self.column.dict() {
            Some(dict) => format!("'{}'", dict.get(slot as u32)),
            None => (slot == 1).to_string(),
        };
        format!("{} = {value}", self.name)
    }

    /// Rows passing a range `matcher` in the range bins it cuts (the bins wholly inside
    /// come from [`AttrIndex::access`]; empty without range bins).
    pub(crate) fn cut_ranges(&self, matcher: &Matcher) -> RoaringBitmap {
        self.index.cut_ranges(&self.column, matcher)
    }

    /// Rows passing `matcher`, the codes scanned a block at a time (high-cardinality
    /// strings, which have no value bitmaps).
    pub(crate) fn scan(&self, matcher: &Matcher, within: Option<&Chunks>) -> RoaringBitmap {
        let mut rows = RoaringBitmap::new();
        let mut mask = vec![false; SCAN_BLOCK];
        let chunk_len = CHUNK_BITS as usize;
        for start in (0..self.column.len()).step_by(SCAN_BLOCK) {
            if within.is_some_and(|w| w.get(start / chunk_len).len() == 0) {
                continue;
            }
            let mask = &mut mask[..SCAN_BLOCK.min(self.column.len() - start)];
            matcher.fill(&self.column, start, mask);
            let passing = mask.iter().enumerate().filter(|(_, pass)| **pass);
            rows.append(passing.map(|(k, _)| (start + k) as u32))
                .expect("rows ascend");
        }
        rows
    }
}
