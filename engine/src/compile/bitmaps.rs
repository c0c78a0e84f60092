//! Tag and group bitmaps as ClickHouse `groupBitmap(UInt32)` states (DESIGN section 7), so
//! a cluster gets the engine's sets without recomputing them.
//!
//! A state is what ClickHouse writes: one byte 0, a VarUInt count and the values (u32 little
//! endian) for 32 values or fewer; else one byte 1, a VarUInt length and the bitmap in the
//! portable roaring format. ClickHouse reads either form whatever the count.

use std::path::Path;

use roaring::RoaringBitmap;

use crate::database::Database;
use crate::error::{Error, Result};

/// ClickHouse keeps up to this many values in the small form of a state.
const SMALL_SET: u64 = 32;

/// What `Database::export_bitmaps` wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExportedBitmaps {
    /// Tags written (one state each).
    pub tags: usize,
    /// Groups written.
    pub groups: usize,
    /// The files, by path.
    pub files: Vec<std::path::PathBuf>,
}

impl Database {
    /// Writes every tag's and group's members (member row ids) as ClickHouse states to
    /// `dir` (created if missing): `tags.tsv` and `groups.tsv` (name, tab, the state in
    /// hex: `CAST(unhex(state) AS AggregateFunction(groupBitmap, UInt32))`), and
    /// `tags.rowbinary`, `groups.rowbinary` (rows `name String, members
    /// AggregateFunction(groupBitmap, UInt32)` for `INSERT ... FORMAT RowBinary`). Groups are
    /// as they hold at the database's clock.
    pub fn export_bitmaps(&self, dir: &Path) -> Result<ExportedBitmaps> {
        let state = self.snapshot();
        let tags: Vec<(&str, &RoaringBitmap)> = state.tags.iter().collect();
        let groups: Vec<(&str, &RoaringBitmap)> = state
            .groups
            .groups
            .iter()
            .map(|g| (g.name.as_str(), g.bitmap.as_ref()))
            .collect();
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let mut files = Vec::new();
        for (kind, sets) in [("tags", &tags), ("groups", &groups)] {
            let mut tsv = String::new();
            let mut rows = Vec::new();
            for (name, bitmap) in sets.iter() {
                let state = group_bitmap_state(bitmap);
                tsv.push_str(&tsv_field(name));
                tsv.push('\t');
                tsv.push_str(&crate::util::hex(&state));
                tsv.push('\n');
                write_var_uint(&mut rows, name.len() as u64);
                rows.extend_from_slice(name.as_bytes());
                rows.extend_from_slice(&state);
            }
            for (file, bytes) in [
                (format!("{kind}.tsv"), tsv.into_bytes()),
                (format!("{kind}.rowbinary"), rows),
            ] {
                let path = dir.join(file);
                std::fs::write(&path, bytes).map_err(|e| Error::io(&path, e))?;
                files.push(path);
            }
        }
        Ok(ExportedBitmaps {
            tags: tags.len(),
            groups: groups.len(),
            files,
        })
    }
}

/// `bitmap` serialised as ClickHouse serialises a `groupBitmap(UInt32)` state.
pub(crate) fn group_bitmap_state(bitmap: &RoaringBitmap) -> Vec<u8> {
    let mut out = Vec::new();
    if bitmap.len() <= SMALL_SET {
        out.push(0);
        write_var_uint(&mut out, bitmap.len());
        for row in bitmap {
            out.extend_from_slice(&row.to_le_bytes());
        }
    } else {
        out.push(1);
        write_var_uint(&mut out, bitmap.serialized_size() as u64);
        bitmap
            .serialize_into(&mut out)
            .unwrap_or_else(|_| unreachable!("writing to a Vec does not fail"));
    }
    out
}

/// ClickHouse's VarUInt (LEB128).
fn write_var_uint(out: &mut Vec<u8>, mut n: u64) {
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

/// A TSV field: ClickHouse's escapes for backslash, tab and newline.
fn tsv_field(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('\t', "\\t")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_and_large_states() {
        let small: RoaringBitmap = [1u32, 300].into_iter().collect();
        assert_eq!(
            group_bitmap_state(&small),
            vec![0, 2, 1, 0, 0, 0, 0x2c, 1, 0, 0]
        );
        let large: RoaringBitmap = (0u32..1000).collect();
        let state = group_bitmap_state(&large);
        assert_eq!(state[0], 1);
        let mut portable = Vec::new();
        large.serialize_into(&mut portable).unwrap();
        // VarUInt of the length, then the portable bytes
        assert_eq!(&state[state.len() - portable.len()..], &portable[..]);
        let mut len = Vec::new();
        write_var_uint(&mut len, portable.len() as u64);
        assert_eq!(&state[1..1 + len.len()], &len[..]);
        let mut big = Vec::new();
        write_var_uint(&mut big, 300);
        assert_eq!(big, vec![0xac, 0x02]);
    }
}
