//! Computed traits (DESIGN section 9): named values per member, kept materialised like
//! dynamic groups and read wherever an attribute is.
//!
//! A trait's values are an attribute column with its bitmap indexes (`values`), so a
//! predicate on a trait (`ltv >= 1000`, `stage = 'dormant'`) is answered from the same
//! indexes as one on an attribute. They are brought up to date by the one refresh of the
//! state (`State::refresh_derived`) as writes touch what they read, and by the clock's moves
//! for traits that move with time; between those, a read at an instant the column does not
//! hold for evaluates the definition (`plan::bind`), exactly like a group's bitmap.
//!
//! A trait may use attributes, earlier traits and groups; a group may use traits defined
//! before it. Nothing can refer to what comes after it, and what is referred to cannot be
//! dropped, so definitions never form a cycle. Groups and traits share one definition order
//! (`seq`), in which they are refreshed.

pub(crate) mod eval;
pub(crate) mod ranks;
pub(crate) mod stored;

use std::sync::Arc;

use crate::attributes::{AttrIndex, Attribute};
use crate::column::Column;
use crate::computed::ValueExpr;
use crate::error::{Error, Result};
use crate::groups::time::WindowRead;
use crate::segment::Segment;
use crate::value::{DataType, Value};

/// What a trait computes per member.
///
/// ```
/// use memberdb::{Database, Segment, TimeUnit, Timestamp, TraitDef, Value, ValueExpr};
///
/// let db = Database::in_memory();
/// let now = Timestamp::parse("2026-11-01T00:00:00Z").unwrap();
/// let amount = |x: f64| [("amount", Some(Value::Float(x)))];
/// db.add_event("M1", "purchase", now, &amount(1200.0))?;
/// db.add_event("M2", "purchase", now, &amount(80.0))?;
/// db.upsert_member("M3", &[("city", Some(Value::from("Shanghai")))])?;
///
/// // DEFINE TRAIT ltv AS SUM(amount OF purchase IN LAST 365 DAYS)
/// let spent = ValueExpr::sum("amount").of("purchase").in_last(365, TimeUnit::Days);
/// db.define_trait("ltv", TraitDef::Value(spent.build()))?;
/// // DEFINE TRAIT tier AS CASE WHEN ltv >= 1000 THEN 'gold' ELSE 'basic' END
/// db.define_trait(
///     "tier",
///     TraitDef::Case {
///         whens: vec![(Segment::attr("ltv").ge(1000), Value::from("gold"))],
///         otherwise: Some(Value::from("basic")),
///     },
/// )?;
/// let view = db.as_of(now);
/// assert_eq!(view.count(&Segment::attr("tier").eq("gold"))?, 1);
/// // M3 bought nothing: a sum over no events is 0
/// assert_eq!(view.count(&Segment::attr("ltv").lt(100))?, 2);
/// # Ok::<(), memberdb::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
pub enum TraitDef {
    /// A value expression: an attribute, an earlier trait, an aggregate, `DAYS SINCE`,
    /// `BUCKET`.
    Value(ValueExpr),
    /// `QUANTILE(k, x [DESC]) OVER segment`: among the members of the segment with a value
    /// of `x`, score = 1 + floor(k * (rank - 1) / n), rank = 1 + the number of them with a
    /// strictly smaller `x` (larger with `DESC`); other members NULL.
    Quantile {
        /// k, the number of scores (1 to [`MAX_QUANTILES`]).
        buckets: u32,
        /// The value ranked.
        value: ValueExpr,
        /// The largest values score 1.
        descending: bool,
        /// The members ranked.
        over: Segment,
    },
    /// `CASE WHEN seg THEN v ... [ELSE v] END`: the first segment holding the member.
    Case {
        /// In order.
        whens: Vec<(Segment, Value)>,
        /// The value when no segment holds the member (NULL without).
        otherwise: Option<Value>,
    },
}

/// The most scores a `QUANTILE` may give.
pub const MAX_QUANTILES: u32 = 10_000;

impl TraitDef {
    /// The segments the definition reads (`OVER`, the `WHEN`s).
    pub(crate) fn segments(&self) -> Vec<&Segment> {
        match self {
            TraitDef::Value(_) => Vec::new(),
            TraitDef::Quantile { over, .. } => vec![over],
            TraitDef::Case { whens, .. } => whens.iter().map(|(s, _)| s).collect(),
        }
    }

    /// The value expression the definition reads, if any.
    pub(crate) fn value(&self) -> Option<&ValueExpr> {
        match self {
            TraitDef::Value(v) | TraitDef::Quantile { value: v, .. } => Some(v),
            TraitDef::Case { .. } => None,
        }
    }

    /// A member's value depends on other members' (`QUANTILE`): it is refreshed over
    /// everyone.
    pub(crate) fn ranks(&self) -> bool {
        matches!(self, TraitDef::Quantile { .. })
    }

    /// Moves with *now* by itself (not counting the traits and groups it names).
    pub(crate) fn uses_relative_time(&self) -> bool {
        self.value().is_some_and(ValueExpr::uses_relative_time)
            || self.segments().iter().any(|s| s.uses_relative_time())
    }

    /// The names of attributes (and traits) it reads directly.
    pub(crate) fn names(&self) -> Vec<&str> {
        let mut out: Vec<&str> = self.value().map(|v| v.attributes()).unwrap_or_default();
        for s in self.segments() {
            s.attribute_names(&mut out);
        }
        out
    }

    /// The groups it names.
    pub(crate) fn groups(&self) -> Vec<&str> {
        let mut out = Vec::new();
        for s in self.segments() {
            s.referenced_groups(&mut out);
        }
        out
    }
}

/// One computed trait.
#[derive(Clone, Debug)]
pub(crate) struct Trait {
    pub(crate) name: String,
    pub(crate) definition: TraitDef,
    /// Its place in the definition order shared with groups.
    pub(crate) seq: u64,
    /// Its values, one row per member, with their indexes; the attribute's name is the
    /// trait's.
    pub(crate) values: Arc<Attribute>,
    /// Moves with *now* (through the traits and groups it names too).
    pub(crate) time_dependent: bool,
    /// The `IN LAST` windows and `DAYS SINCE` boundaries it reads, through what it names.
    pub(crate) windows: Vec<WindowRead>,
    /// For a trait that moves with time: the first instant `values` hold for.
    pub(crate) valid_from: i64,
    /// For a trait that moves with time: the first instant after `valid_from` at which a
    /// value may change without new data (`i64::MAX`: none).
    pub(crate) next_change: i64,
    /// A `QUANTILE`, or reads one (through the traits and groups it names).
    pub(crate) ranked: bool,
    /// A `QUANTILE`'s ranked members and keys, once it was computed over everyone: writes
    /// then move a few keys instead of ranking everyone again (`ranks.rs`).
    pub(crate) ranks: Option<Arc<ranks::Ranks>>,
}

impl Trait {
    /// Whether `values` are the trait's values at `now`.
    pub(crate) fn holds_at(&self, now: i64) -> bool {
        !self.time_dependent || (self.valid_from <= now && now < self.next_change)
    }

    pub(crate) fn data_type(&self) -> DataType {
        self.values.column.data_type()
    }
}

/// Every trait, in definition order.
#[derive(Clone, Debug, Default)]
pub(crate) struct TraitStore {
    pub(crate) traits: Vec<Trait>,
    /// Which traits read what; rebuilt when a trait is defined or dropped.
    pub(crate) dependents: crate::groups::depends::Dependents,
}

impl TraitStore {
    pub(crate) fn get(&self, name: &str) -> Option<&Trait> {
        self.traits.iter().find(|t| t.name == name)
    }

    pub(crate) fn position(&self, name: &str) -> Option<usize> {
        self.traits.iter().position(|t| t.name == name)
    }

    pub(crate) fn names(&self) -> impl Iterator<Item = &str> {
        self.traits.iter().map(|t| t.name.as_str())
    }

    /// Adds a checked trait with every value NULL over `members` rows; the caller
    /// refreshes it.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn push(
        &mut self,
        name: &str,
        definition: TraitDef,
        seq: u64,
        data_type: DataType,
        members: usize,
        time_dependent: bool,
        windows: Vec<WindowRead>,
    ) {
        let column = Column::nulls(data_type, members);
        let index = AttrIndex::build(&column);
        self.traits.push(Trait {
            name: name.to_string(),
            definition,
            seq,
            values: Arc::new(Attribute {
                name: name.to_string(),
                column,
                index,
            }),
            time_dependent,
            windows,
            valid_from: i64::MAX,
            next_change: i64::MAX,
            ranked: false,
            ranks: None,
        });
        self.dependents = crate::groups::depends::Dependents::of_traits(&self.traits);
    }

    pub(crate) fn remove(&mut self, name: &str) -> Result<Trait> {
        let pos = self
            .position(name)
            .ok_or_else(|| Error::unknown("trait", name, self.names()))?;
        let removed = self.traits.remove(pos);
        self.dependents = crate::groups::depends::Dependents::of_traits(&self.traits);
        Ok(removed)
    }

    pub(crate) fn heap_bytes(&self) -> usize {
        self.traits
            .iter()
            .map(|t| t.values.column.heap_bytes() + t.values.index.heap_bytes())
            .sum()
    }
}

/// Whether the names and groups a definition reads include a `QUANTILE` trait, directly or
/// through what they name.
pub(crate) fn reads_ranks(state: &crate::state::State, names: &[&str], groups: &[&str]) -> bool {
    names
        .iter()
        .any(|n| state.traits.get(n).is_some_and(|t| t.ranked))
        || groups
            .iter()
            .any(|g| state.groups.get(g).is_some_and(|g| g.ranked))
}

/// A group or a trait, by index in its store: the order both are refreshed in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Derived {
    Group(usize),
    Trait(usize),
}

/// Checks a literal of `CASE` against the type of the first: one type for all results.
pub(crate) fn case_type(whens: &[(Segment, Value)], otherwise: Option<&Value>) -> Result<DataType> {
    let mut types = whens
        .iter()
        .map(|(_, v)| v)
        .chain(otherwise)
        .map(Value::data_type);
    let first = types.next().ok_or_else(|| {
        Error::InvalidSegment("CASE needs at least one WHEN ... THEN value".into())
    })?;
    for other in types {
        if other != first {
            return Err(Error::InvalidSegment(format!(
                "CASE gives values of one type: its first result is {first} and another is \
                 {other}; write them all as {first} literals"
            )));
        }
    }
    Ok(first)
}
