//! The changes file (`changes-<g>.bin`): each group's change stream as retention keeps it
//! and the consumer groups, as of the checkpoint; the log replayed after it adds the rest.
//!
//! Layout (little endian): magic `MDBCHG01`, `u32` streams, then per stream: `u32` name
//! length, the UTF-8 name, the newest id and the newest id trimmed (`u64` position, `u32`
//! n each), `u64` runs, and per run: `u64` position, `u32` first n, `u8` cause (0 write, 2 merge,
//! 1 time), `u8` form; form 0 (members that changed alike): `u8` op (0 enter, 1 exit),
//! `i64` at, `u64` length, the portable roaring bytes; form 1 (entries each with its
//! instant): `u64` count, then per entry `i64` at, `u32` member row, `u8` op. Last, `u64`
//! length and the consumer groups as JSON.

use roaring::RoaringBitmap;

use crate::groups::consumers::ConsumerGroups;
use crate::groups::stream::{ChangeCause, ChangeOp, EntryId, Run, RunBody, Stream, Timed};

const MAGIC: &[u8; 8] = b"MDBCHG01";

/// One stream read back.
pub(crate) struct SavedStream {
    pub(crate) name: String,
    pub(crate) stream: Stream,
}

pub(crate) fn encode<'a>(
    streams: impl Iterator<Item = (&'a str, &'a Stream)>,
    consumers: &ConsumerGroups,
) -> Vec<u8> {
    let streams: Vec<_> = streams.collect();
    let mut out = Vec::new();
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&(streams.len() as u32).to_le_bytes());
    let id = |out: &mut Vec<u8>, id: EntryId| {
        out.extend_from_slice(&id.position.to_le_bytes());
        out.extend_from_slice(&id.n.to_le_bytes());
    };
    for (name, stream) in streams {
        out.extend_from_slice(&(name.len() as u32).to_le_bytes());
        out.extend_from_slice(name.as_bytes());
        id(&mut out, stream.last_id);
        id(&mut out, stream.trimmed_through);
        let runs = stream.saved_runs();
        out.extend_from_slice(&(runs.len() as u64).to_le_bytes());
        for run in runs {
            out.extend_from_slice(&run.position.to_le_bytes());
            out.extend_from_slice(&run.first_n.to_le_bytes());
            out.push(match run.cause {
                ChangeCause::Write => 0,
                ChangeCause::Time => 1,
                ChangeCause::Merge => 2,
                ChangeCause::Erase => 3,
                ChangeCause::Scope => 4,
            });
            match &run.body {
                RunBody::Same { op, at, rows } => {
                    out.push(0);
                    out.push(op_code(*op));
                    out.extend_from_slice(&at.to_le_bytes());
                    out.extend_from_slice(&(rows.serialized_size() as u64).to_le_bytes());
                    rows.serialize_into(&mut out)
                        .expect("writing to a Vec cannot fail");
                }
                RunBody::Timed(entries) => {
                    out.push(1);
                    out.extend_from_slice(&(entries.len() as u64).to_le_bytes());
                    for e in entries {
                        out.extend_from_slice(&e.at.to_le_bytes());
                        out.extend_from_slice(&e.row.to_le_bytes());
                        out.push(op_code(e.op));
                    }
                }
            }
        }
    }
    let json = serde_json::to_vec(consumers).expect("consumer groups serialize");
    out.extend_from_slice(&(json.len() as u64).to_le_bytes());
    out.extend_from_slice(&json);
    out
}

fn op_code(op: ChangeOp) -> u8 {
    match op {
        ChangeOp::Enter => 0,
        ChangeOp::Exit => 1,
    }
}

/// Reads the bytes back, or says where they are wrong.
pub(crate) fn decode(bytes: &[u8]) -> Result<(Vec<SavedStream>, ConsumerGroups), String> {
    let mut r = Reader { bytes, at: 0 };
    if r.take(8)? != MAGIC {
        return Err("not a memberdb changes file (bad magic)".to_string());
    }
    let count = r.u32()?;
    let mut streams = Vec::new();
    for _ in 0..count {
        let len = r.u32()? as usize;
        let name = std::str::from_utf8(r.take(len)?)
            .map_err(|_| "a stream name is not UTF-8".to_string())?
            .to_string();
        let last_id = r.id()?;
        let trimmed = r.id()?;
        let runs = r.u64()?;
        let mut out = Vec::new();
        let mut prev = EntryId::ZERO;
        for _ in 0..runs {
            let position = r.u64()?;
            let first_n = r.u32()?;
            let cause = match r.u8()? {
                0 => ChangeCause::Write,
                1 => ChangeCause::Time,
                2 => ChangeCause::Merge,
                3 => ChangeCause::Erase,
                4 => ChangeCause::Scope,
                c => return Err(format!("stream '{name}': unknown cause {c}")),
            };
            let body = match r.u8()? {
                0 => {
                    let op = r.op()?;
                    let at = r.i64()?;
                    let len = usize::try_from(r.u64()?).map_err(|_| "a run too large")?;
                    let rows = RoaringBitmap::deserialize_from(r.take(len)?)
                        .map_err(|e| format!("stream '{name}': {e}"))?;
                    RunBody::Same { op, at, rows }
                }
                1 => {
                    let n = r.u64()?;
                    if n > (r.bytes.len() - r.at) as u64 / 13 {
                        return Err(format!("stream '{name}': a run longer than the file"));
                    }
                    let mut entries = Vec::with_capacity(n as usize);
                    for _ in 0..n {
                        let at = r.i64()?;
                        let row = r.u32()?;
                        let op = r.op()?;
                        entries.push(Timed { at, row, op });
                    }
                    RunBody::Timed(entries)
                }
                f => return Err(format!("stream '{name}': unknown run form {f}")),
            };
            let run = Run {
                position,
                first_n,
                cause,
                body,
            };
            let first = EntryId::new(position, first_n);
            if first <= prev && prev != EntryId::ZERO || run.len() == 0 {
                return Err(format!("stream '{name}': runs out of order or empty"));
            }
            prev = EntryId::new(position, first_n + run.len() as u32 - 1);
            out.push(run);
        }
        if prev > last_id {
            return Err(format!("stream '{name}': an entry after its newest id"));
        }
        streams.push(SavedStream {
            stream: Stream::restored(out, last_id, trimmed),
            name,
        });
    }
    let len = usize::try_from(r.u64()?).map_err(|_| "consumer groups too large")?;
    let consumers =
        serde_json::from_slice(r.take(len)?).map_err(|e| format!("consumer groups: {e}"))?;
    if r.at != bytes.len() {
        return Err("bytes after the end".to_string());
    }
    Ok((streams, consumers))
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self
            .at
            .checked_add(n)
            .filter(|&e| e <= self.bytes.len())
            .ok_or_else(|| format!("truncated at byte {}", self.at))?;
        let out = &self.bytes[self.at..end];
        self.at = end;
        Ok(out)
    }
    fn u8(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }
    fn u32(&mut self) -> Result<u32, String> {
        Ok(u32::from_le_bytes(
            self.take(4)?.try_into().expect("4 bytes"),
        ))
    }
    fn u64(&mut self) -> Result<u64, String> {
        Ok(u64::from_le_bytes(
            self.take(8)?.try_into().expect("8 bytes"),
        ))
    }
    fn i64(&mut self) -> Result<i64, String> {
        Ok(i64::from_le_bytes(
            self.take(8)?.try_into().expect("8 bytes"),
        ))
    }
    fn id(&mut self) -> Result<EntryId, String> {
        Ok(EntryId::new(self.u64()?, self.u32()?))
    }
    fn op(&mut self) -> Result<ChangeOp, String> {
        match self.u8()? {
            0 => Ok(ChangeOp::Enter),
            1 => Ok(ChangeOp::Exit),
            o => Err(format!("unknown op {o}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_and_consumer_groups_round_trip_and_damage_is_found() {
        let mut s = Stream::default();
        s.push(
            3,
            ChangeCause::Write,
            RunBody::Same {
                op: ChangeOp::Enter,
                at: 10,
                rows: (0..100).collect(),
            },
        );
        s.push(
            9,
            ChangeCause::Time,
            RunBody::Timed(vec![Timed {
                at: -4,
                row: 7,
                op: ChangeOp::Exit,
            }]),
        );
        let mut consumers = ConsumerGroups::default();
        consumers.create("g", "cg", EntryId::new(3, 5)).unwrap();
        consumers
            .deliver("g", "cg", "alice", &[EntryId::new(3, 6)], 77)
            .unwrap();
        let bytes = encode([("g", &s)].into_iter(), &consumers);
        let (back, cgs) = decode(&bytes).unwrap();
        assert_eq!(back.len(), 1);
        assert_eq!(back[0].name, "g");
        let all = |s: &Stream| s.range(EntryId::ZERO, EntryId::new(u64::MAX, 0), 1000);
        assert_eq!(all(&back[0].stream), all(&s));
        assert_eq!(back[0].stream.last_id, s.last_id);
        assert_eq!(cgs, consumers);
        for cut in [0, 7, 20, bytes.len() - 1] {
            assert!(decode(&bytes[..cut]).is_err(), "cut at {cut}");
        }
    }
}
