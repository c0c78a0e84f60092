//! Byte layout of a log file and its reading, with torn-tail detection.
//!
//! A log file starts with a 16-byte header: the magic `MDBWAL01` and the `u64` LSN of its
//! first record. Then records, each a 16-byte header followed by the payload (all little
//! endian):
//!
//! | bytes | field |
//! |-------|-------|
//! | 0..4  | `u32` payload length `n` |
//! | 4..8  | `u32` CRC-32 (IEEE) of bytes 8..16+n (the LSN and the payload) |
//! | 8..16 | `u64` LSN, one more than the record before it |
//! | 16..  | the payload: one change as UTF-8 JSON |

/// Magic bytes at the start of every log file.
pub(crate) const MAGIC: &[u8; 8] = b"MDBWAL01";
/// Bytes of the file header.
pub(crate) const FILE_HEADER: usize = 16;
/// Bytes of a record header.
pub(crate) const RECORD_HEADER: usize = 16;
/// Largest payload a record may hold; a longer length can only be damage.
pub(crate) const MAX_PAYLOAD: usize = 64 << 20;

/// The header of a new log file whose first record will have `first_lsn`.
pub(crate) fn file_header(first_lsn: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(FILE_HEADER);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&first_lsn.to_le_bytes());
    out
}

/// Appends one framed record to `out`.
pub(crate) fn encode(lsn: u64, payload: &[u8], out: &mut Vec<u8>) {
    let mut crc = crc32fast::Hasher::new();
    crc.update(&lsn.to_le_bytes());
    crc.update(payload);
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&crc.finalize().to_le_bytes());
    out.extend_from_slice(&lsn.to_le_bytes());
    out.extend_from_slice(payload);
}

/// One record read back.
#[derive(Debug)]
pub(crate) struct Record<'a> {
    pub(crate) lsn: u64,
    /// Byte offset of the record in the file.
    pub(crate) offset: usize,
    pub(crate) payload: &'a [u8],
}

/// The end of a log that a crash cut short.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TornTail {
    /// Where the good records end (the file is cut here on repair).
    pub offset: u64,
    /// Bytes after `offset` that are dropped.
    pub dropped_bytes: u64,
    /// What was found there.
    pub reason: String,
}

/// A log file read from start to end.
#[derive(Debug)]
pub(crate) struct Scan<'a> {
    pub(crate) first_lsn: u64,
    pub(crate) records: Vec<Record<'a>>,
    pub(crate) torn: Option<TornTail>,
}

/// Damage that is not a torn tail: the log cannot be trusted past `offset`.
#[derive(Debug)]
pub(crate) struct Corrupt {
    pub(crate) offset: usize,
    pub(crate) reason: String,
}

/// Reads every record of a log file.
///
/// A crash while appending can leave only the end of the file unfinished: a record header
/// or payload cut short, a record whose checksum fails and that reaches the end of the file,
/// or zero bytes where the file system extended the file before the data arrived. That is a
/// torn tail, reported and dropped. A bad record with whole records after it is damage in the
/// middle of the log and an error.
pub(crate) fn scan(bytes: &[u8]) -> Result<Scan<'_>, Corrupt> {
    if bytes.len() < FILE_HEADER {
        // Even the header is unfinished: the file was being created.
        return Ok(Scan {
            first_lsn: 0,
            records: Vec::new(),
            torn: Some(TornTail {
                offset: 0,
                dropped_bytes: bytes.len() as u64,
                reason: "the file header is incomplete".to_string(),
            }),
        });
    }
    if &bytes[..8] != MAGIC {
        return Err(Corrupt {
            offset: 0,
            reason: "not a memberdb log file (bad magic)".to_string(),
        });
    }
    let first_lsn = u64::from_le_bytes(bytes[8..16].try_into().expect("8 bytes"));
    let mut records = Vec::new();
    let mut offset = FILE_HEADER;
    let mut expected = first_lsn;
    let torn = |offset: usize, reason: &str| TornTail {
        offset: offset as u64,
        dropped_bytes: (bytes.len() - offset) as u64,
        reason: reason.to_string(),
    };
    while offset < bytes.len() {
        let rest = &bytes[offset..];
        if rest.iter().all(|&b| b == 0) {
            let t = torn(offset, "zero bytes after the last record");
            return Ok(Scan {
                first_lsn,
                records,
                torn: Some(t),
            });
        }
        if rest.len() < RECORD_HEADER {
            let t = torn(offset, "a record header is incomplete");
            return Ok(Scan {
                first_lsn,
                records,
                torn: Some(t),
            });
        }
        let len = u32::from_le_bytes(rest[0..4].try_into().expect("4 bytes")) as usize;
        let crc = u32::from_le_bytes(rest[4..8].try_into().expect("4 bytes"));
        let lsn = u64::from_le_bytes(rest[8..16].try_into().expect("8 bytes"));
        let end = RECORD_HEADER.saturating_add(len);
        if len > MAX_PAYLOAD {
            return Err(Corrupt {
                offset,
                reason: format!("a record claims {len} bytes, more than any record holds"),
            });
        }
        if end > rest.len() {
            let t = torn(offset, "the last record is incomplete");
            return Ok(Scan {
                first_lsn,
                records,
                torn: Some(t),
            });
        }
        let payload = &rest[RECORD_HEADER..end];
        let mut hasher = crc32fast::Hasher::new();
        hasher.update(&rest[8..16]);
        hasher.update(payload);
        if hasher.finalize() != crc {
            if end == rest.len() || rest[end..].iter().all(|&b| b == 0) {
                let t = torn(offset, "the last record's checksum does not match");
                return Ok(Scan {
                    first_lsn,
                    records,
                    torn: Some(t),
                });
            }
            return Err(Corrupt {
                offset,
                reason: format!("checksum mismatch in record {lsn} with records after it"),
            });
        }
        if lsn != expected {
            return Err(Corrupt {
                offset,
                reason: format!("record {lsn} where record {expected} was expected"),
            });
        }
        records.push(Record {
            lsn,
            offset,
            payload,
        });
        expected += 1;
        offset += end;
    }
    Ok(Scan {
        first_lsn,
        records,
        torn: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log(payloads: &[&str]) -> Vec<u8> {
        let mut out = file_header(5);
        for (i, p) in payloads.iter().enumerate() {
            encode(5 + i as u64, p.as_bytes(), &mut out);
        }
        out
    }

    #[test]
    fn reads_back_what_was_written() {
        let bytes = log(&["a", "", "{\"x\":1}"]);
        let scan = scan(&bytes).unwrap();
        assert_eq!(scan.first_lsn, 5);
        assert!(scan.torn.is_none());
        let got: Vec<(u64, &[u8])> = scan.records.iter().map(|r| (r.lsn, r.payload)).collect();
        assert_eq!(
            got,
            vec![(5, &b"a"[..]), (6, &b""[..]), (7, &b"{\"x\":1}"[..])]
        );
    }

    #[test]
    fn every_cut_of_the_last_record_is_a_torn_tail() {
        let whole = log(&["first", "second record"]);
        let good = log(&["first"]).len();
        for cut in good + 1..whole.len() {
            let scan = scan(&whole[..cut]).unwrap();
            assert_eq!(scan.records.len(), 1, "cut at {cut}");
            let torn = scan.torn.expect("torn");
            assert_eq!(torn.offset as usize, good);
            assert_eq!(torn.dropped_bytes as usize, cut - good);
        }
        // zeros where the file grew before its data arrived
        let mut zeroed = log(&["first"]);
        zeroed.extend_from_slice(&[0; 40]);
        assert_eq!(scan(&zeroed).unwrap().torn.unwrap().dropped_bytes, 40);
    }

    #[test]
    fn a_bad_record_in_the_middle_is_corruption() {
        let mut bytes = log(&["first", "second", "third"]);
        let second = log(&["first"]).len();
        bytes[second + RECORD_HEADER] ^= 0x40;
        let err = scan(&bytes).unwrap_err();
        assert_eq!(err.offset, second);
        // the same damage in the last record is a torn tail
        let mut bytes = log(&["first", "second"]);
        bytes[second + RECORD_HEADER] ^= 0x40;
        assert_eq!(scan(&bytes).unwrap().torn.unwrap().offset as usize, second);
    }

    #[test]
    fn a_gap_in_the_sequence_or_a_bad_magic_is_corruption() {
        let mut bytes = file_header(1);
        encode(1, b"a", &mut bytes);
        encode(3, b"b", &mut bytes);
        assert!(scan(&bytes).unwrap_err().reason.contains("record 2"));
        let mut bytes = log(&["a"]);
        bytes[0] = b'X';
        assert!(scan(&bytes).is_err());
    }
}
