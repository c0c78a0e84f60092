//! A file of aligned byte sections: what the column file is made of.
//!
//! A writer appends sections, each starting on a [`ALIGN`]-byte boundary so that a mapped
//! file can be viewed as typed slices in place, and hands back where each one lies; a reader
//! gives back the bytes of a section (a slice of the mapped file, not a copy) after checking
//! that it lies inside the file.

use std::io::Write;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

/// Every section starts at a multiple of this many bytes (a cache line; more than any
/// value's alignment).
pub(crate) const ALIGN: u64 = 64;

/// Where a section lies in its file: `[offset, length]` in bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Section(pub(crate) u64, pub(crate) u64);

/// Appends aligned sections to a byte stream.
pub(crate) struct SectionWriter<'w> {
    out: &'w mut (dyn Write + Send),
    at: u64,
}

impl<'w> SectionWriter<'w> {
    /// A writer whose first section goes after the `start` bytes already written.
    pub(crate) fn new(out: &'w mut (dyn Write + Send), start: u64) -> Self {
        SectionWriter { out, at: start }
    }

    /// Writes `bytes` as it is, unaligned (a header or a trailer).
    pub(crate) fn raw(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.out.write_all(bytes)?;
        self.at += bytes.len() as u64;
        Ok(())
    }

    /// Writes one section made of `parts`, back to back.
    pub(crate) fn section<'b>(
        &mut self,
        parts: impl IntoIterator<Item = &'b [u8]>,
    ) -> std::io::Result<Section> {
        let pad = self.at.next_multiple_of(ALIGN) - self.at;
        self.raw(&[0; ALIGN as usize][..pad as usize])?;
        let start = self.at;
        for part in parts {
            self.raw(part)?;
        }
        Ok(Section(start, self.at - start))
    }
}

/// Reads sections out of a whole file's bytes.
#[derive(Clone)]
pub(crate) struct SectionReader {
    bytes: Bytes,
}

impl SectionReader {
    pub(crate) fn new(bytes: Bytes) -> Self {
        SectionReader { bytes }
    }

    /// The bytes of `section`, or an error when it does not lie inside the file.
    pub(crate) fn get(&self, section: Section) -> Result<Bytes, String> {
        let Section(at, len) = section;
        let end = at
            .checked_add(len)
            .filter(|&e| e <= self.bytes.len() as u64);
        match end {
            Some(end) => Ok(self.bytes.slice(at as usize..end as usize)),
            None => Err(format!(
                "a section ({len} bytes at {at}) lies outside the file ({} bytes)",
                self.bytes.len()
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sections_are_aligned_and_read_back() {
        let mut buf = Vec::new();
        let mut w = SectionWriter::new(&mut buf, 0);
        w.raw(b"HEAD").unwrap();
        let a = w.section([&b"abc"[..], b"de"]).unwrap();
        let b = w.section([&[7u8; 100][..]]).unwrap();
        assert_eq!(a, Section(64, 5));
        assert_eq!(b, Section(128, 100));
        let r = SectionReader::new(Bytes::from(buf));
        assert_eq!(&r.get(a).unwrap()[..], b"abcde");
        assert_eq!(r.get(b).unwrap().len(), 100);
        assert!(r.get(Section(200, 100)).is_err());
        assert!(r.get(Section(u64::MAX, 2)).is_err());
    }
}
