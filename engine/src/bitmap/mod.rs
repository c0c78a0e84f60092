//! Member bitmaps as the engine keeps them: a shared roaring bitmap and, built the first time
//! a plan reads it, its chunk form (`chunks.rs`) that the plan's kernels (`kernels.rs`)
//! combine 65,536 members at a time.

mod chunks;
pub(crate) mod kernels;

use std::ops::Deref;
use std::sync::{Arc, OnceLock};

use roaring::RoaringBitmap;

pub(crate) use chunks::{CHUNK_BITS, Chunk, ChunkRef, Chunks, WORDS, Words};

/// A roaring bitmap shared copy-on-write, with its chunk form cached beside it.
///
/// Reads go through `Deref`; every change goes through [`Bitmap::make_mut`], which drops the
/// cached chunk form, so the cache can never describe other members than the bitmap. A
/// snapshot's clone shares both.
#[derive(Clone, Debug, Default)]
pub(crate) struct Bitmap {
    bits: Arc<RoaringBitmap>,
    chunks: OnceLock<Arc<Chunks>>,
}

impl Bitmap {
    pub(crate) fn new(bits: RoaringBitmap) -> Self {
        Bitmap {
            bits: Arc::new(bits),
            chunks: OnceLock::new(),
        }
    }

    /// The bitmap, for changing (copied first if a snapshot shares it).
    pub(crate) fn make_mut(&mut self) -> &mut RoaringBitmap {
        self.chunks = OnceLock::new();
        Arc::make_mut(&mut self.bits)
    }

    /// Adds `members`: one by one when they are few (an `|=` merges each container it
    /// meets into a new one), unchanged when there are none.
    pub(crate) fn add_all(&mut self, members: &RoaringBitmap) {
        match members.len() {
            0 => {}
            n if n <= FEW => members.iter().for_each(|m| {
                self.make_mut().insert(m);
            }),
            _ => *self.make_mut() |= members,
        }
    }

    /// Removes `members`, as [`Bitmap::add_all`] adds them.
    pub(crate) fn remove_all(&mut self, members: &RoaringBitmap) {
        match members.len() {
            0 => {}
            n if n <= FEW => members.iter().for_each(|m| {
                self.make_mut().remove(m);
            }),
            _ => *self.make_mut() -= members,
        }
    }

    /// The chunk form, built on first use (a copy of the bitmap's containers: about its
    /// serialized size in memory, kept until the bitmap changes).
    pub(crate) fn chunks(&self) -> &Chunks {
        self.chunks
            .get_or_init(|| Arc::new(Chunks::from_roaring(&self.bits)))
    }

    /// [`Bitmap::chunks`], shared (a session's scope keeps it past the borrow).
    pub(crate) fn shared_chunks(&self) -> Arc<Chunks> {
        self.chunks();
        self.chunks
            .get()
            .cloned()
            .unwrap_or_else(|| Arc::new(Chunks::from_roaring(&self.bits)))
    }

    /// Writes the bitmap as one section, in the portable roaring format.
    pub(crate) fn save(
        &self,
        out: &mut crate::util::sections::SectionWriter<'_>,
    ) -> std::io::Result<crate::util::sections::Section> {
        let mut bytes = Vec::with_capacity(self.bits.serialized_size());
        self.bits.serialize_into(&mut bytes)?;
        out.section([&bytes[..]])
    }

    /// The bitmap [`Bitmap::save`] wrote (read into memory: roaring containers are not
    /// used in place).
    pub(crate) fn restore(
        file: &crate::util::sections::SectionReader,
        at: crate::util::sections::Section,
    ) -> Result<Bitmap, String> {
        let bytes = file.get(at)?;
        RoaringBitmap::deserialize_from(&bytes[..])
            .map(Bitmap::new)
            .map_err(|e| format!("a bitmap: {e}"))
    }

    /// Bytes the bitmap and, once built, its chunk form hold.
    pub(crate) fn heap_bytes(&self) -> usize {
        self.bits.serialized_size() + self.chunks.get().map_or(0, |c| c.heap_bytes())
    }
}

/// At most this many members are added or removed one by one.
const FEW: u64 = 64;

impl Deref for Bitmap {
    type Target = RoaringBitmap;
    fn deref(&self) -> &RoaringBitmap {
        &self.bits
    }
}

impl AsRef<RoaringBitmap> for Bitmap {
    fn as_ref(&self) -> &RoaringBitmap {
        &self.bits
    }
}

impl From<RoaringBitmap> for Bitmap {
    fn from(bits: RoaringBitmap) -> Self {
        Bitmap::new(bits)
    }
}

impl PartialEq for Bitmap {
    fn eq(&self, other: &Self) -> bool {
        self.bits == other.bits
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_change_drops_the_chunk_form() {
        let mut b = Bitmap::new((0..10u32).collect());
        assert_eq!(b.chunks().len(), 10);
        let snapshot = b.clone();
        b.make_mut().insert(70_000);
        assert_eq!(b.chunks().len(), 11);
        assert_eq!(snapshot.chunks().len(), 10);
        assert_eq!(b.chunks().to_roaring(), *b);
    }
}
