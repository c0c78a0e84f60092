//! The column file (`columns-<g>.bin`): a generation's member ids, attribute columns and
//! their indexes, and event columns, laid out as the engine holds them, so that open maps
//! them in place instead of decoding Parquet.
//!
//! Layout: the magic bytes, then [`ALIGN`](crate::util::sections::ALIGN)-aligned sections
//! of raw values (native byte order; the file is the machine's own, the Parquet files are
//! the portable copy), then a JSON directory saying where each structure's sections lie,
//! then a trailer: the directory's offset and length (`u64` little endian) and the magic
//! again. A file that is cut short, or whose directory does not describe the manifest's
//! data, is refused with an error naming the file.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::attributes::index::{AttrIndex, SavedIndex};
use crate::column::{Column, SavedColumn};
use crate::events::partition::{EventPartition, SavedPartition};
use crate::state::State;
use crate::util::dict::{SavedDict, StrDict};
use crate::util::sections::{Section, SectionReader, SectionWriter};
use crate::value::DataType;

const MAGIC: &[u8; 8] = b"MDBCOL01";
/// Bytes after the directory: its offset, its length and the magic.
const TRAILER: usize = 8 + 8 + MAGIC.len();

/// Where everything lies in the file.
#[derive(Serialize, Deserialize)]
struct Directory {
    /// Little-endian check: the value 1 as the file's native `u32`.
    byte_order: Section,
    member_ids: SavedDict,
    attributes: Vec<(String, SavedColumn, SavedIndex)>,
    events: Vec<(String, SavedPartition)>,
}

/// Writes the column file of `state` to `out`.
pub(crate) fn write(state: &State, out: &mut (dyn std::io::Write + Send)) -> std::io::Result<()> {
    let mut w = SectionWriter::new(out, 0);
    w.raw(MAGIC)?;
    let byte_order = w.section([&1u32.to_ne_bytes()[..]])?;
    let member_ids = state.members.ids().save(&mut w)?;
    let mut attributes = Vec::new();
    for attr in state.attrs.iter() {
        let column = attr.column.save(&mut w)?;
        let index = attr.index.save(&attr.column, &mut w)?;
        attributes.push((attr.name.clone(), column, index));
    }
    let mut events = Vec::new();
    for (name, part) in &state.events.types {
        events.push((name.clone(), part.save(&mut w)?));
    }
    let directory = Directory {
        byte_order,
        member_ids,
        attributes,
        events,
    };
    let json = serde_json::to_vec(&directory).map_err(std::io::Error::other)?;
    let at = w.section([&json[..]])?;
    w.raw(&at.0.to_le_bytes())?;
    w.raw(&at.1.to_le_bytes())?;
    w.raw(MAGIC)
}

/// The member ids, attributes (with their indexes) and event columns of a column file,
/// mapped, as the manifest describes them.
pub(crate) struct Restored {
    pub(crate) member_ids: StrDict,
    pub(crate) attributes: Vec<(String, Column, AttrIndex)>,
    pub(crate) events: Vec<(String, EventPartition)>,
}

/// Reads a column file whose data must have `attributes` (in order), `member_count`
/// members and the event properties `properties`.
pub(crate) fn read(
    bytes: Bytes,
    member_count: u64,
    attributes: &[(String, DataType)],
    properties: &std::collections::BTreeMap<String, DataType>,
) -> Result<Restored, String> {
    let len = bytes.len();
    if len < MAGIC.len() + TRAILER || &bytes[..MAGIC.len()] != MAGIC || &bytes[len - 8..] != MAGIC {
        return Err("not a memberdb column file (or cut short)".to_string());
    }
    let word = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().expect("8 bytes"));
    let file = SectionReader::new(bytes.clone());
    let json = file.get(Section(word(len - TRAILER), word(len - TRAILER + 8)))?;
    let directory: Directory =
        serde_json::from_slice(&json).map_err(|e| format!("its directory: {e}"))?;
    if file.get(directory.byte_order)?[..] != 1u32.to_ne_bytes() {
        return Err("written on a machine of another byte order".to_string());
    }
    let member_ids = StrDict::restore(&file, &directory.member_ids)?;
    if member_ids.len() as u64 != member_count {
        return Err(format!(
            "holds {} member ids, the manifest says {member_count}",
            member_ids.len()
        ));
    }
    let names: Vec<&str> = directory.attributes.iter().map(|a| a.0.as_str()).collect();
    if names != attributes.iter().map(|a| a.0.as_str()).collect::<Vec<_>>() {
        return Err("its attributes are not the manifest's".to_string());
    }
    let mut restored_attributes = Vec::with_capacity(attributes.len());
    for ((name, saved, index), (_, data_type)) in directory.attributes.iter().zip(attributes) {
        let column = Column::restore(&file, saved, *data_type)
            .map_err(|e| format!("attribute '{name}': {e}"))?;
        if column.len() as u64 != member_count {
            return Err(format!(
                "attribute '{name}' has another length than the members"
            ));
        }
        let index = AttrIndex::restore(&file, index, &column)
            .map_err(|e| format!("attribute '{name}': {e}"))?;
        restored_attributes.push((name.clone(), column, index));
    }
    let mut events = Vec::with_capacity(directory.events.len());
    for (name, saved) in &directory.events {
        let part = EventPartition::restore(&file, saved, member_count as usize, properties)
            .map_err(|e| format!("event '{name}': {e}"))?;
        events.push((name.clone(), part));
    }
    Ok(Restored {
        member_ids,
        attributes: restored_attributes,
        events,
    })
}
