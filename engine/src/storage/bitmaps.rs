//! A file of named roaring bitmaps, each in the portable serialisation format.
//!
//! Layout (little endian): magic `MDBBMP01`, `u32` count, then per bitmap: `u32` name length,
//! the UTF-8 name, `u64` byte length, the portable roaring bytes.

use roaring::RoaringBitmap;

const MAGIC: &[u8; 8] = b"MDBBMP01";

pub(crate) fn encode<'a>(bitmaps: impl Iterator<Item = (&'a str, &'a RoaringBitmap)>) -> Vec<u8> {
    let bitmaps: Vec<_> = bitmaps.collect();
    let mut out = Vec::new();
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&(bitmaps.len() as u32).to_le_bytes());
    for (name, bitmap) in bitmaps {
        out.extend_from_slice(&(name.len() as u32).to_le_bytes());
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(&(bitmap.serialized_size() as u64).to_le_bytes());
        bitmap
            .serialize_into(&mut out)
            .expect("writing to a Vec cannot fail");
    }
    out
}

pub(crate) fn decode(bytes: &[u8]) -> Result<Vec<(String, RoaringBitmap)>, String> {
    let mut rest = bytes;
    let mut take = |n: usize| -> Result<&[u8], String> {
        if rest.len() < n {
            return Err(format!("truncated at byte {}", bytes.len() - rest.len()));
        }
        let (head, tail) = rest.split_at(n);
        rest = tail;
        Ok(head)
    };
    if take(8)? != MAGIC {
        return Err("not a memberdb bitmap file (bad magic)".to_string());
    }
    let count = u32::from_le_bytes(take(4)?.try_into().expect("4 bytes"));
    let mut out = Vec::new();
    for _ in 0..count {
        let name_len = u32::from_le_bytes(take(4)?.try_into().expect("4 bytes")) as usize;
        let name = std::str::from_utf8(take(name_len)?)
            .map_err(|_| "bitmap name is not UTF-8".to_string())?
            .to_string();
        let len = u64::from_le_bytes(take(8)?.try_into().expect("8 bytes"));
        let len = usize::try_from(len).map_err(|_| "bitmap too large".to_string())?;
        let bitmap = RoaringBitmap::deserialize_from(take(len)?)
            .map_err(|e| format!("bitmap '{name}': {e}"))?;
        out.push((name, bitmap));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_truncation() {
        let a: RoaringBitmap = (0..1000).step_by(3).collect();
        let b: RoaringBitmap = [7, 1 << 20].into_iter().collect();
        let bytes = encode([("vip", &a), ("摄影爱好者", &b)].into_iter());
        let back = decode(&bytes).unwrap();
        assert_eq!(
            back,
            vec![("vip".to_string(), a), ("摄影爱好者".to_string(), b)]
        );
        assert!(decode(&bytes[..bytes.len() - 3]).is_err());
        assert!(decode(b"garbage!").is_err());
    }
}
