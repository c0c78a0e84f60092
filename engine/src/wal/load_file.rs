//! The rows of a bulk load, kept beside the log until the next checkpoint, so the log record
//! of a load stays small and replay reads the very rows the load applied: a copy of the
//! loaded file (Parquet, CSV, JSON Lines), or Arrow IPC runs for batches given through the
//! API.

use std::io::Cursor;

use arrow_array::RecordBatch;
use arrow_ipc::reader::FileReader;
use arrow_ipc::writer::{FileWriter, IpcWriteOptions};

use crate::error::{Error, Result};

/// Prefix of load file names (`load-<unique number>.<extension>`).
pub(crate) const PREFIX: &str = "load-";

/// A load file name with `extension` not in use in `storage`.
pub(crate) fn unused_name(storage: &dyn crate::storage::Storage, extension: &str) -> String {
    let mut n = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    loop {
        let name = format!("{PREFIX}{n}.{extension}");
        if !storage.exists(&name) {
            return name;
        }
        n += 1;
    }
}

/// The batches as a load file: for each run of batches with one schema, a `u64` (little
/// endian) byte length and an Arrow IPC file of the run, its buffers LZ4-compressed (a
/// load in parts keeps gigabytes of them until the checkpoint; files written before
/// compression read as well).
pub(crate) fn encode(batches: &[RecordBatch]) -> Result<Vec<u8>> {
    let ipc = |e: arrow_schema::ArrowError| Error::Internal(format!("load file: {e}"));
    let options = IpcWriteOptions::default()
        .try_with_compression(Some(arrow_ipc::CompressionType::LZ4_FRAME))
        .map_err(ipc)?;
    let mut out = Vec::new();
    for run in batches.chunk_by(|a, b| a.schema() == b.schema()) {
        let mut file = Vec::new();
        let mut writer =
            FileWriter::try_new_with_options(&mut file, &run[0].schema(), options.clone())
                .map_err(ipc)?;
        for batch in run {
            writer.write(batch).map_err(ipc)?;
        }
        writer.finish().map_err(ipc)?;
        drop(writer);
        out.extend_from_slice(&(file.len() as u64).to_le_bytes());
        out.extend_from_slice(&file);
    }
    Ok(out)
}

pub(crate) fn decode(mut bytes: &[u8]) -> std::result::Result<Vec<RecordBatch>, String> {
    let mut batches = Vec::new();
    while !bytes.is_empty() {
        let len = bytes
            .get(..8)
            .map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")))
            .ok_or("a run length is cut short")?;
        let len = usize::try_from(len).map_err(|_| "a run is too long")?;
        let run = bytes.get(8..8 + len).ok_or("a run is cut short")?;
        let reader = FileReader::try_new(Cursor::new(run), None).map_err(|e| e.to_string())?;
        for batch in reader {
            batches.push(batch.map_err(|e| e.to_string())?);
        }
        bytes = &bytes[8 + len..];
    }
    Ok(batches)
}

pub(crate) fn checksum(bytes: &[u8]) -> u32 {
    crc32fast::hash(bytes)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_array::{Int64Array, StringArray};

    use super::*;

    #[test]
    fn batches_of_two_schemas_round_trip() {
        let a = RecordBatch::try_from_iter([(
            "member_id",
            Arc::new(StringArray::from(vec!["M1", "M2"])) as _,
        )])
        .unwrap();
        let b = RecordBatch::try_from_iter([
            ("member_id", Arc::new(StringArray::from(vec!["M3"])) as _),
            ("points", Arc::new(Int64Array::from(vec![7])) as _),
        ])
        .unwrap();
        let bytes = encode(&[a.clone(), a.clone(), b.clone()]).unwrap();
        assert_eq!(decode(&bytes).unwrap(), vec![a.clone(), a, b]);
        assert!(decode(&bytes[..bytes.len() - 1]).is_err());
    }
}
