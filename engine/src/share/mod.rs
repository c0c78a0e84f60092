//! Clean-room counts (DESIGN section 12, the seeds' "data black box"): one party writes a
//! *pool*, the keyed hashes (HMAC-SHA256 under a secret both parties hold) of one
//! identifier of a segment's members; the other counts its own members whose identifier
//! hashes into the pool (`COUNT <segment> OVERLAP 'pool.parquet'`, `BREAKDOWN ... OVERLAP
//! ... BY`), every count under the minimum group size suppressed. The pool never holds a
//! member id or a value, and an overlap never yields one: FIND and EXPORT refuse it.
//!
//! A pool is a Parquet file with one column, `key_hash` (64 hex characters, sorted, each
//! once), and the key's name in its metadata (`memberdb.share.key`). Values are hashed
//! exactly as stored (a number as its decimal text), so both parties must normalise them
//! (phone numbers with or without `+86`) the same way before loading.

use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;

use arrow_array::{Array, RecordBatch, StringArray};
use arrow_schema::{DataType as ArrowType, Field, Schema};
use roaring::RoaringBitmap;

use crate::error::{Error, Result};
use crate::members::RowId;
use crate::state::State;
use crate::util::keyed::Keyed;

/// Counts under this are reported as suppressed unless configured otherwise (Google Ads
/// Data Hub's threshold).
pub const DEFAULT_MIN_GROUP_SIZE: u64 = 50;
/// The pool's one column.
pub const POOL_COLUMN: &str = "key_hash";
/// The pool's metadata entry naming its key.
pub const KEY_METADATA: &str = "memberdb.share.key";
/// A secret shorter than this is refused: a short key makes the hashes guessable.
pub const MIN_SECRET_BYTES: usize = 16;

/// What OVERLAP needs: the shared secret and the threshold.
#[derive(Clone)]
pub struct ShareOptions {
    /// The key of the hashes (the secret file's bytes).
    pub secret: Arc<[u8]>,
    /// Counts under this are suppressed.
    pub min_group_size: u64,
}

impl std::fmt::Debug for ShareOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShareOptions")
            .field("min_group_size", &self.min_group_size)
            .finish_non_exhaustive()
    }
}

/// A count of a clean-room answer: the number, or suppressed (under the minimum group
/// size; the number is never given).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SharedCount {
    /// At or above the minimum group size.
    Count(u64),
    /// Under it.
    Suppressed,
}

impl SharedCount {
    /// `n` as reported under `min`.
    pub fn of(n: u64, min: u64) -> Self {
        if n < min {
            SharedCount::Suppressed
        } else {
            SharedCount::Count(n)
        }
    }
}

impl std::fmt::Display for SharedCount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SharedCount::Count(n) => write!(f, "{n}"),
            SharedCount::Suppressed => f.write_str("suppressed"),
        }
    }
}

/// Reads a secret file: its bytes are the key.
pub fn read_secret(path: &Path) -> Result<Arc<[u8]>> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    if bytes.len() < MIN_SECRET_BYTES {
        return Err(Error::InvalidSegment(format!(
            "the secret file {} holds {} bytes; a shared secret needs at least \
             {MIN_SECRET_BYTES} (e.g. `head -c 32 /dev/urandom > secret`)",
            path.display(),
            bytes.len()
        )));
    }
    Ok(Arc::from(bytes))
}

/// HMAC-SHA256 of `value` under `secret`.
pub fn keyed_hash(secret: &[u8], value: &str) -> [u8; 32] {
    Keyed::new(secret).digest(value)
}

fn unhex(text: &str) -> Option<[u8; 32]> {
    if text.len() != 64 || !text.is_ascii() {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

/// Each member row of `rows` with a value of `key` (an attribute, or an identifier type,
/// whose every value counts), and the value's text, through `visit`.
fn key_values(
    state: &State,
    key: &str,
    rows: &RoaringBitmap,
    visit: &mut dyn FnMut(RowId, &str),
) -> Result<()> {
    if let Some(attr) = state.attrs.get(key) {
        let column = &attr.column;
        for row in rows {
            let r = row as usize;
            if r >= column.len() || !column.is_valid(r) {
                continue;
            }
            match (column.code(r), column.dict()) {
                (Some(code), Some(dict)) => visit(row, dict.get(code)),
                _ => {
                    if let Some(v) = column.get(r) {
                        visit(row, &v.to_string());
                    }
                }
            }
        }
        return Ok(());
    }
    let identity = &state.identity;
    let Some(t) = identity.type_id(key) else {
        let known = state
            .attrs
            .names()
            .chain(identity.defs().iter().map(|d| d.name.as_str()));
        return Err(Error::unknown("attribute or identifier type", key, known));
    };
    let values = identity.values_of(t);
    for code in 0..values.len() as u32 {
        if values.is_blank(code) {
            continue;
        }
        if let Some(row) = identity.graph().holder((t, code))
            && rows.contains(row)
        {
            visit(row, values.get(code));
        }
    }
    Ok(())
}

/// Writes the pool of `members`' `key` values to `out`; returns the number of hashes.
pub(crate) fn write_pool(
    state: &State,
    members: &RoaringBitmap,
    key: &str,
    secret: &[u8],
    out: &Path,
) -> Result<u64> {
    let mut hashes = Vec::new();
    let keyed = Keyed::new(secret);
    key_values(state, key, members, &mut |_, value| {
        hashes.push(keyed.digest(value));
    })?;
    hashes.sort_unstable();
    hashes.dedup();
    let mut metadata = std::collections::HashMap::new();
    metadata.insert(KEY_METADATA.to_string(), key.to_string());
    let schema = Arc::new(
        Schema::new(vec![Field::new(POOL_COLUMN, ArrowType::Utf8, false)]).with_metadata(metadata),
    );
    let column = StringArray::from_iter_values(hashes.iter().map(|h| crate::util::hex(h)));
    let batch = RecordBatch::try_new(schema.clone(), vec![Arc::new(column)])
        .map_err(|e| Error::Internal(format!("pool batch: {e}")))?;
    let tmp = out.with_extension("parquet.tmp");
    let file = std::fs::File::create(&tmp).map_err(|e| Error::io(&tmp, e))?;
    let mut writer = parquet::arrow::ArrowWriter::try_new(file, schema, None)
        .map_err(|e| Error::Internal(format!("pool writer: {e}")))?;
    writer
        .write(&batch)
        .and_then(|()| writer.close().map(drop))
        .map_err(|e| Error::io(&tmp, std::io::Error::other(e)))?;
    std::fs::rename(&tmp, out).map_err(|e| Error::io(out, e))?;
    Ok(hashes.len() as u64)
}

/// A pool read back: its key's name and its hashes.
pub(crate) struct Pool {
    pub(crate) key: String,
    hashes: HashSet<[u8; 32]>,
}

impl Pool {
    /// Reads the pool file at `path`, with errors that say what is wrong with it.
    pub(crate) fn read(path: &Path) -> Result<Pool> {
        let bad = |what: String| {
            Error::InvalidSegment(format!(
                "{} is not a memberdb pool ({what}); write one with `memberdb share export`",
                path.display()
            ))
        };
        let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
        let builder = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
            .map_err(|e| bad(format!("not Parquet: {e}")))?;
        let key = builder
            .schema()
            .metadata()
            .get(KEY_METADATA)
            .cloned()
            .ok_or_else(|| bad(format!("no '{KEY_METADATA}' metadata")))?;
        let reader = builder.build().map_err(|e| bad(e.to_string()))?;
        let mut hashes = HashSet::new();
        for batch in reader {
            let batch = batch.map_err(|e| bad(e.to_string()))?;
            let column = batch
                .column_by_name(POOL_COLUMN)
                .and_then(|c| c.as_any().downcast_ref::<StringArray>())
                .ok_or_else(|| bad(format!("no text column '{POOL_COLUMN}'")))?;
            for (i, text) in column.iter().enumerate() {
                let hash = text
                    .and_then(unhex)
                    .ok_or_else(|| bad(format!("row {i} is not 64 hex characters")))?;
                hashes.insert(hash);
            }
        }
        Ok(Pool { key, hashes })
    }

    /// The members of `state` whose key hashes into the pool.
    pub(crate) fn members(&self, state: &State, secret: &[u8]) -> Result<RoaringBitmap> {
        let live = state.members.live().as_ref();
        let mut out = RoaringBitmap::new();
        let keyed = Keyed::new(secret);
        // A string attribute's values are hashed once each, not once per member.
        if let Some(attr) = state.attrs.get(&self.key)
            && let Some(dict) = attr.column.dict()
        {
            let matched: Vec<bool> = (0..dict.len() as u32)
                .map(|c| !dict.is_blank(c) && self.hashes.contains(&keyed.digest(dict.get(c))))
                .collect();
            let column = &attr.column;
            for row in live {
                let r = row as usize;
                if r < column.len()
                    && column.is_valid(r)
                    && column.code(r).is_some_and(|c| matched[c as usize])
                {
                    out.insert(row);
                }
            }
            return Ok(out);
        }
        key_values(state, &self.key, live, &mut |row, value| {
            if self.hashes.contains(&keyed.digest(value)) {
                out.insert(row);
            }
        })?;
        Ok(out)
    }
}

impl crate::Database {
    /// `memberdb share export`: writes to `out` the pool of the members of `segment` (its
    /// text) keyed by `key` (an attribute or an identifier type) under `secret`; returns the
    /// number of distinct hashes written. Only hashes leave: no member id, no value.
    pub fn share_export(&self, segment: &str, key: &str, secret: &[u8], out: &Path) -> Result<u64> {
        if secret.len() < MIN_SECRET_BYTES {
            return Err(Error::InvalidSegment(format!(
                "a shared secret needs at least {MIN_SECRET_BYTES} bytes"
            )));
        }
        let statement = crate::query::parse_statement(&format!("COUNT {segment}"))
            .map_err(|e| Error::InvalidSegment(e.render()))?;
        let memberdb_query::ast::StatementKind::Count(expr) = &statement.kind else {
            return Err(Error::InvalidSegment(format!(
                "'{segment}' is not a segment"
            )));
        };
        let (seg, spans) = crate::query::bind::segment(expr)?;
        let view = self.as_of(self.now());
        let plan = view.bind(&seg, Some(&spans))?;
        let members = view.select(&plan)?;
        write_pool(view.state(), &members, key, secret, out)
    }
}

#[cfg(test)]
mod tests;
