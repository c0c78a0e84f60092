//! Values computed per member (DESIGN section 9): aggregates over a member's events
//! (`COUNT`, `SUM`, `AVG`, `MIN`, `MAX`, `FIRST`, `LAST`, distinct counts), `DAYS SINCE`
//! and `BUCKET`, compared like attributes wherever a segment is written.
//!
//! The types here name events and properties by string, like a segment; binding
//! (`crate::plan::bind`) resolves them, and `eval.rs` computes the values of the members of
//! a universe from the events in one pass.

pub(crate) mod eval;

use serde::{Deserialize, Serialize};

use crate::segment::{PropFilter, TimeUnit, Window};
use crate::value::Value;

/// An aggregate function, with the property it reads.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum AggFunc {
    /// `COUNT(e)`: matching events (0 without any).
    Count,
    /// `COUNT(DISTINCT p OF e)`: distinct non-NULL values of `p` (0 without any).
    CountDistinct(String),
    /// `COUNT(DISTINCT DAYS OF e)`: distinct UTC days with a matching event.
    CountDistinctDays,
    /// `SUM(p OF e)`: over non-NULL values (0 without any).
    Sum(String),
    /// `AVG(p OF e)`: over non-NULL values (NULL without any).
    Avg(String),
    /// `MIN(p OF e)`
    Min(String),
    /// `MAX(p OF e)`
    Max(String),
    /// `FIRST([p OF] e)`: the first event's non-NULL value of `p`, or its time.
    First(Option<String>),
    /// `LAST([p OF] e)`: the last event's non-NULL value of `p`, or its time.
    Last(Option<String>),
}

impl AggFunc {
    /// The property the function reads, if any.
    pub fn property(&self) -> Option<&str> {
        match self {
            AggFunc::Count | AggFunc::CountDistinctDays => None,
            AggFunc::CountDistinct(p)
            | AggFunc::Sum(p)
            | AggFunc::Avg(p)
            | AggFunc::Min(p)
            | AggFunc::Max(p) => Some(p),
            AggFunc::First(p) | AggFunc::Last(p) => p.as_deref(),
        }
    }
}

/// `FUNC(... e [WHERE filter] [window | WITHIN ANY n unit])`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Aggregate {
    /// The function and its property.
    pub func: AggFunc,
    /// The event type.
    pub event: String,
    /// Which events count, by their properties.
    pub filter: Option<PropFilter>,
    /// Which events count, by their time (default: all).
    pub window: Option<Window>,
    /// `WITHIN ANY n unit`: the largest count over any interval `[t, t + n units)` (only
    /// with `COUNT` and `COUNT(DISTINCT ...)`, compared by `>=` or `>`: "some interval
    /// holds at least k").
    pub within_any: Option<(u64, TimeUnit)>,
}

/// A value per member; compared through [`crate::Segment::value`].
///
/// ```
/// use memberdb::{Database, Segment, TimeUnit, Timestamp, Value, ValueExpr};
///
/// let db = Database::in_memory();
/// let now = Timestamp::parse("2026-11-01T00:00:00Z").unwrap();
/// let amount = |x: f64| [("amount", Some(Value::Float(x)))];
/// db.add_event("M1", "purchase", now, &amount(800.0))?;
/// db.add_event("M1", "purchase", now, &amount(300.0))?;
/// db.add_event("M2", "purchase", now, &amount(50.0))?;
/// db.upsert_member("M3", &[("city", Some(Value::from("Shanghai")))])?;
///
/// // SUM(amount OF purchase IN LAST 365 DAYS)
/// let spent = ValueExpr::sum("amount").of("purchase").in_last(365, TimeUnit::Days);
/// let view = db.as_of(now);
/// assert_eq!(view.count(&Segment::value(spent.clone()).ge(1000))?, 1);
/// // spent under 100: M2, and M3 who bought nothing (a sum over no events is 0)
/// assert_eq!(view.count(&Segment::value(spent).lt(100))?, 2);
/// // DAYS SINCE LAST(purchase) is NULL for M3: it matches no comparison
/// let recency = ValueExpr::of("purchase").last_time().build().days_since();
/// assert_eq!(view.count(&Segment::value(recency).le(30))?, 2);
/// # Ok::<(), memberdb::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum ValueExpr {
    /// An attribute.
    Attr(String),
    /// An aggregate of the member's events.
    Aggregate(Box<Aggregate>),
    /// `DAYS SINCE x`: `floor((now - x) / 24 h)`; a date is its midnight UTC.
    DaysSince(Box<ValueExpr>),
    /// `BUCKET(x, c1, ..., cm)`: 1 + the number of cut points `<= x`.
    Bucket {
        /// The value bucketed.
        value: Box<ValueExpr>,
        /// Cut points, ascending.
        cuts: Vec<Value>,
    },
}

impl ValueExpr {
    /// Starts an aggregate over events of type `event`: `ValueExpr::of("purchase")`.
    pub fn of(event: impl Into<String>) -> AggregateBuilder {
        AggregateBuilder(Aggregate {
            func: AggFunc::Count,
            event: event.into(),
            filter: None,
            window: None,
            within_any: None,
        })
    }

    /// `SUM(property OF event)`, to finish with [`AggregateBuilder`]'s methods.
    pub fn sum(property: impl Into<String>) -> PropertyOf {
        PropertyOf(AggFunc::Sum(property.into()))
    }
    /// `AVG(property OF event)`.
    pub fn avg(property: impl Into<String>) -> PropertyOf {
        PropertyOf(AggFunc::Avg(property.into()))
    }
    /// `MIN(property OF event)`.
    pub fn min(property: impl Into<String>) -> PropertyOf {
        PropertyOf(AggFunc::Min(property.into()))
    }
    /// `MAX(property OF event)`.
    pub fn max(property: impl Into<String>) -> PropertyOf {
        PropertyOf(AggFunc::Max(property.into()))
    }
    /// `COUNT(DISTINCT property OF event)`.
    pub fn count_distinct(property: impl Into<String>) -> PropertyOf {
        PropertyOf(AggFunc::CountDistinct(property.into()))
    }
    /// `FIRST(property OF event)`.
    pub fn first(property: impl Into<String>) -> PropertyOf {
        PropertyOf(AggFunc::First(Some(property.into())))
    }
    /// `LAST(property OF event)`.
    pub fn last(property: impl Into<String>) -> PropertyOf {
        PropertyOf(AggFunc::Last(Some(property.into())))
    }

    /// An attribute's value.
    pub fn attr(name: impl Into<String>) -> ValueExpr {
        ValueExpr::Attr(name.into())
    }

    /// `DAYS SINCE self`.
    pub fn days_since(self) -> ValueExpr {
        ValueExpr::DaysSince(Box::new(self))
    }

    /// `BUCKET(self, cuts...)`.
    pub fn bucket<V: Into<Value>>(self, cuts: impl IntoIterator<Item = V>) -> ValueExpr {
        ValueExpr::Bucket {
            value: Box::new(self),
            cuts: cuts.into_iter().map(Into::into).collect(),
        }
    }

    /// True when the value moves with *now*: a relative window or `DAYS SINCE`.
    pub(crate) fn uses_relative_time(&self) -> bool {
        match self {
            ValueExpr::Attr(_) => false,
            // `WITHIN ANY` looks at every interval of all time: it does not move with now.
            ValueExpr::Aggregate(a) => matches!(a.window, Some(Window::Last { .. })),
            ValueExpr::DaysSince(_) => true,
            ValueExpr::Bucket { value, .. } => value.uses_relative_time(),
        }
    }

    /// The aggregates inside the value.
    pub(crate) fn aggregates(&self) -> Vec<&Aggregate> {
        match self {
            ValueExpr::Attr(_) => Vec::new(),
            ValueExpr::Aggregate(a) => vec![a],
            ValueExpr::DaysSince(inner) | ValueExpr::Bucket { value: inner, .. } => {
                inner.aggregates()
            }
        }
    }

    /// The attributes the value reads.
    pub(crate) fn attributes(&self) -> Vec<&str> {
        match self {
            ValueExpr::Attr(name) => vec![name],
            ValueExpr::Aggregate(_) => Vec::new(),
            ValueExpr::DaysSince(inner) | ValueExpr::Bucket { value: inner, .. } => {
                inner.attributes()
            }
        }
    }
}

/// `FUNC(property OF ...)`: the event type comes next ([`PropertyOf::of`]).
#[derive(Clone, Debug)]
pub struct PropertyOf(AggFunc);

impl PropertyOf {
    /// The event type the property belongs to.
    pub fn of(self, event: impl Into<String>) -> AggregateBuilder {
        let AggregateBuilder(mut aggregate) = ValueExpr::of(event);
        aggregate.func = self.0;
        AggregateBuilder(aggregate)
    }
}

/// Builds an [`Aggregate`]; finish with [`AggregateBuilder::build`] (or use it where a
/// [`ValueExpr`] is expected through `into()`).
#[derive(Clone, Debug)]
pub struct AggregateBuilder(Aggregate);

impl AggregateBuilder {
    /// Counts the events (the default function).
    pub fn count(mut self) -> Self {
        self.0.func = AggFunc::Count;
        self
    }
    /// Counts the distinct UTC days with events.
    pub fn distinct_days(mut self) -> Self {
        self.0.func = AggFunc::CountDistinctDays;
        self
    }
    /// The time of the first event.
    pub fn first_time(mut self) -> Self {
        self.0.func = AggFunc::First(None);
        self
    }
    /// The time of the last event.
    pub fn last_time(mut self) -> Self {
        self.0.func = AggFunc::Last(None);
        self
    }
    /// Only events passing `filter`.
    pub fn filter(mut self, filter: PropFilter) -> Self {
        self.0.filter = Some(filter);
        self
    }
    /// Only events in the last `amount` units before *now*.
    pub fn in_last(mut self, amount: u64, unit: TimeUnit) -> Self {
        self.0.window = Some(Window::Last { amount, unit });
        self
    }
    /// Only events in `window`.
    pub fn window(mut self, window: Window) -> Self {
        self.0.window = Some(window);
        self
    }
    /// The largest count over any interval of `amount` units (`WITHIN ANY`).
    pub fn within_any(mut self, amount: u64, unit: TimeUnit) -> Self {
        self.0.within_any = Some((amount, unit));
        self
    }
    /// The value.
    pub fn build(self) -> ValueExpr {
        ValueExpr::Aggregate(Box::new(self.0))
    }
}

impl From<AggregateBuilder> for ValueExpr {
    fn from(b: AggregateBuilder) -> ValueExpr {
        b.build()
    }
}
