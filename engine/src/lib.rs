//! # memberdb
//!
//! An embedded analytical engine for member data: attributes, tags and behaviour events of
//! millions of members, kept columnar with a roaring bitmap per tag, per attribute value, per
//! event type and day, and per dynamic group, so that segment questions are answered in
//! microseconds.
//!
//! ```
//! use memberdb::{Database, Segment, TimeUnit, Timestamp, Value};
//!
//! let mut db = Database::in_memory();
//! db.upsert_member("M1", &[("city", Some(Value::from("Shanghai")))])?;
//! db.upsert_member("M2", &[("city", Some(Value::from("Beijing")))])?;
//! db.add_tags("M1", &["vip"])?;
//! let now = Timestamp::parse("2026-11-01T12:00:00Z").unwrap();
//! db.add_event("M1", "claim_coupon", now, &[("coupon_id", Some(Value::from("XMAS")))])?;
//!
//! // claimed a coupon AND NOT redeemed it AND lives in Shanghai
//! let segment = Segment::did("claim_coupon")
//!     .in_last(7, TimeUnit::Days)
//!     .and(Segment::attr("city").eq("Shanghai"))
//!     .and(Segment::tag("vip"));
//! assert_eq!(db.as_of(now).count(&segment)?, 1);
//! # Ok::<(), memberdb::Error>(())
//! ```
//!
//! The semantics are those of the segment language (DESIGN section 3): a segment is a set of
//! live members, `NOT` is the complement within them, comparisons never match NULL, `DID`
//! needs at least one matching event, and windows are relative to a *now* the caller can pin
//! with [`Database::as_of`].

#![warn(missing_docs)]

mod access;
mod attributes;
pub mod audit;
mod bitmap;
mod column;
pub mod compile;
mod computed;
mod database;
pub mod datagen;
mod error;
mod events;
mod export;
#[cfg(any(test, feature = "fuzzing"))]
#[doc(hidden)]
pub mod fuzzing;
mod groups;
mod identity;
mod ingest;
mod members;
mod plan;
pub mod query;
mod results;
mod segment;
mod sequence;
pub mod share;
mod state;
pub mod storage;
mod tags;
mod traits;
mod util;
mod value;
mod wal;

pub use access::session::{Session, statement_class};
pub use access::{Access, Command, Mask, Role, RoleScope};
pub use computed::{AggFunc, Aggregate, AggregateBuilder, PropertyOf, ValueExpr};
pub use database::{
    Changes, Clock, ConsumerGroupStatus, Database, Erasure, GroupStatus, IdentifierInfo, InputKind,
    Load, LoadProgress, MAX_READ, MemoryUsage, OpenOptions, PART_ROWS, PendingEntry, PropertyInfo,
    Recovery, SyncPolicy, View, Write,
};
pub use error::{Error, Result};
pub use export::{ExportFormat, write_csv_field};
pub use groups::stream::{ChangeCause, ChangeEntry, ChangeOp, EntryId};
pub use groups::{DEFAULT_KEEP_DAYS, MAX_KEEP_DAYS};
pub use identity::{HistoryLine, IdentifierDef, IdentityReport, MergeRule};
pub use ingest::{FileFormat, IngestReport, LoadInfo, LoadedInput, input_files, read_batches};
pub use members::{ERASED, RowId};
pub use results::{
    AttributeInfo, BreakdownRow, FindOptions, FindResult, FoundMember, GroupInfo, MemberRecord,
    TraitInfo,
};
pub use segment::{
    CmpOp, Did, DidBuilder, Field, Frequency, Predicate, PropFilter, Segment, TimeUnit, Window,
};
pub use sequence::{
    Funnel, FunnelBy, FunnelReport, FunnelRow, FunnelStep, MAX_FUNNEL_STEPS, Sequence,
    SequenceBuilder,
};
pub use traits::{MAX_QUANTILES, TraitDef};
pub use value::{DataType, Timestamp, Value};
pub use wal::TornTail;
