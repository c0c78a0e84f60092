//! Helpers shared by the integration tests: building Arrow batches by hand.

use std::sync::Arc;

use arrow_array::{ArrayRef, RecordBatch, StringArray, TimestampMicrosecondArray};
use arrow_schema::{Field, Schema};

/// A batch from named columns.
pub fn batch(columns: Vec<(&str, ArrayRef)>) -> RecordBatch {
    let fields: Vec<Field> = columns
        .iter()
        .map(|(name, array)| Field::new(*name, array.data_type().clone(), true))
        .collect();
    RecordBatch::try_new(
        Arc::new(Schema::new(fields)),
        columns.into_iter().map(|(_, a)| a).collect(),
    )
    .expect("columns fit")
}

/// A batch of events: `member_id`, `event`, `ts` (microseconds, UTC).
pub fn events_batch(ids: Vec<String>, event: &str, times: Vec<i64>) -> RecordBatch {
    let events = vec![event.to_string(); ids.len()];
    batch(vec![
        ("member_id", Arc::new(StringArray::from(ids)) as ArrayRef),
        ("event", Arc::new(StringArray::from(events)) as ArrayRef),
        (
            "ts",
            Arc::new(TimestampMicrosecondArray::from(times).with_timezone("UTC")) as ArrayRef,
        ),
    ])
}

/// Opens the database in `dir` read-only (beside a handle that has it open for writing).
pub fn open_read_only(dir: &std::path::Path) -> memberdb::Database {
    let options = memberdb::OpenOptions {
        read_only: true,
        ..memberdb::OpenOptions::default()
    };
    memberdb::Database::open_with(dir, options).expect("opens read-only")
}
