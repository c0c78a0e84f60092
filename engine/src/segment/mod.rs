//! Segments: the typed expression tree of DESIGN section 3, and a builder for embedders.
//!
//! A [`Segment`] names attributes, tags, events and groups by string; names are resolved and
//! literals checked against the catalog when the segment is bound into a plan (`crate::plan`).

mod shape;
mod window;

pub(crate) use window::{Within, resolve as resolve_window, span as window_span, within};

use serde::{Deserialize, Serialize};

use crate::value::Value;

/// A comparison operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum CmpOp {
    /// `=`
    Eq,
    /// `!=`
    Ne,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
}

/// A test of one value (an attribute of a member or a property of an event).
///
/// Every form except [`Predicate::IsNull`] is false on NULL.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Predicate {
    /// `x op v`
    Cmp(CmpOp, Value),
    /// `x IN (v, ...)`
    In(Vec<Value>),
    /// `x BETWEEN lo AND hi`, both ends included.
    Between(Value, Value),
    /// `x IS NULL`
    IsNull,
    /// `x IS NOT NULL`
    IsNotNull,
}

/// A filter over the properties of events (`DID e WHERE ...`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum PropFilter {
    /// A test of one property.
    Prop {
        /// The property name.
        name: String,
        /// The test.
        predicate: Predicate,
    },
    /// All of them.
    And(Vec<PropFilter>),
    /// Any of them.
    Or(Vec<PropFilter>),
    /// The events of the type that the inner filter does not select (NULLs included).
    Not(Box<PropFilter>),
}

/// Unit of a relative time window.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum TimeUnit {
    /// 3600 seconds.
    Hours,
    /// 24 hours.
    Days,
    /// 7 days.
    Weeks,
}

/// The time window of a `DID`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Window {
    /// `IN LAST n unit`: `now - n*unit < ts <= now`.
    Last {
        /// How many units.
        amount: u64,
        /// Which unit.
        unit: TimeUnit,
    },
    /// `SINCE a` (`ts >= a`) and / or `BEFORE b` (`ts < b`); absolute times.
    Range {
        /// Inclusive start.
        since: Option<Value>,
        /// Exclusive end.
        before: Option<Value>,
    },
}

/// How many matching events a `DID` needs. A `DID` always needs at least one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Frequency {
    /// `AT LEAST n TIMES`
    AtLeast(u64),
    /// `AT MOST n TIMES`: 1 to n.
    AtMost(u64),
    /// `EXACTLY n TIMES`
    Exactly(u64),
}

impl Frequency {
    /// The accepted counts as a range of saturating `u8` counters (a count past 255 reads as
    /// 255), or `None` when such a counter cannot decide (a threshold of 255 or more). The
    /// range is empty when no count is accepted.
    pub(crate) fn counter_band(self) -> Option<std::ops::RangeInclusive<u8>> {
        let threshold = match self {
            Frequency::AtLeast(n) | Frequency::AtMost(n) | Frequency::Exactly(n) => n,
        };
        let n = u8::try_from(threshold).ok().filter(|&n| n < u8::MAX)?;
        Some(match self {
            Frequency::AtLeast(_) => n.max(1)..=u8::MAX,
            Frequency::AtMost(_) => 1..=n,
            // empty for 0: a member counted has at least one event
            Frequency::Exactly(_) => n.max(1)..=n,
        })
    }

    /// Does a member with `count` matching events (at least one) qualify?
    pub(crate) fn accepts(self, count: u64) -> bool {
        count >= 1
            && match self {
                Frequency::AtLeast(n) => count >= n,
                Frequency::AtMost(n) => count <= n,
                Frequency::Exactly(n) => count == n,
            }
    }
}

/// `DID event [WHERE filter] [frequency] [window]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Did {
    /// The event type.
    pub event: String,
    /// Filter on the event's properties.
    pub filter: Option<PropFilter>,
    /// How many events are needed (default: at least one).
    pub frequency: Option<Frequency>,
    /// Which events count (default: all time).
    pub window: Option<Window>,
}

/// A segment: a set of live members.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Segment {
    /// Every live member.
    All,
    /// Members with the tag.
    Tag(String),
    /// Members of the dynamic group, as its definition selects them now.
    InGroup(String),
    /// Members whose attribute passes the predicate.
    Attr {
        /// Attribute name.
        name: String,
        /// The test.
        predicate: Predicate,
    },
    /// Members with matching events.
    Did(Did),
    /// Members with an event followed (or, negated, not followed) by another (DESIGN
    /// section 10).
    Sequence(Box<crate::sequence::Sequence>),
    /// Members whose computed value passes the predicate (DESIGN section 9): an aggregate
    /// of their events, `DAYS SINCE`, `BUCKET`.
    Value {
        /// The value.
        value: crate::computed::ValueExpr,
        /// The test.
        predicate: Predicate,
    },
    /// Members whose profile holds a number of identifiers of a type (DESIGN section 11):
    /// `COUNT(IDENTIFIER type) op count`; `HAS IDENTIFIER type` is `>= 1`.
    Identifiers {
        /// The identifier type.
        id_type: String,
        /// The comparison.
        op: CmpOp,
        /// The count compared with.
        count: u64,
    },
    /// Members in every child.
    And(Vec<Segment>),
    /// Members in any child.
    Or(Vec<Segment>),
    /// Live members not in the child.
    Not(Box<Segment>),
}

/// Builds predicates on a named value (an attribute, an event property) or a computed one;
/// see [`Segment::attr`], [`Segment::value`] and [`PropFilter::prop`].
#[derive(Clone, Debug)]
pub struct Field<T, S = String> {
    name: S,
    make: fn(S, Predicate) -> T,
}

impl<T, S> Field<T, S> {
    fn with(self, predicate: Predicate) -> T {
        (self.make)(self.name, predicate)
    }
    /// `= v`
    pub fn eq(self, v: impl Into<Value>) -> T {
        self.with(Predicate::Cmp(CmpOp::Eq, v.into()))
    }
    /// `!= v` (NULL does not match)
    pub fn ne(self, v: impl Into<Value>) -> T {
        self.with(Predicate::Cmp(CmpOp::Ne, v.into()))
    }
    /// `< v`
    pub fn lt(self, v: impl Into<Value>) -> T {
        self.with(Predicate::Cmp(CmpOp::Lt, v.into()))
    }
    /// `<= v`
    pub fn le(self, v: impl Into<Value>) -> T {
        self.with(Predicate::Cmp(CmpOp::Le, v.into()))
    }
    /// `> v`
    pub fn gt(self, v: impl Into<Value>) -> T {
        self.with(Predicate::Cmp(CmpOp::Gt, v.into()))
    }
    /// `>= v`
    pub fn ge(self, v: impl Into<Value>) -> T {
        self.with(Predicate::Cmp(CmpOp::Ge, v.into()))
    }
    /// `IN (v, ...)`
    pub fn is_in<V: Into<Value>>(self, values: impl IntoIterator<Item = V>) -> T {
        self.with(Predicate::In(values.into_iter().map(Into::into).collect()))
    }
    /// `BETWEEN lo AND hi`
    pub fn between(self, lo: impl Into<Value>, hi: impl Into<Value>) -> T {
        self.with(Predicate::Between(lo.into(), hi.into()))
    }
    /// `IS NULL`
    pub fn is_null(self) -> T {
        self.with(Predicate::IsNull)
    }
    /// `IS NOT NULL`
    pub fn is_not_null(self) -> T {
        self.with(Predicate::IsNotNull)
    }
}

impl Segment {
    /// Every live member.
    pub fn all() -> Segment {
        Segment::All
    }

    /// Members with tag `name`.
    pub fn tag(name: impl Into<String>) -> Segment {
        Segment::Tag(name.into())
    }

    /// Members whose profile holds a value of identifier type `id_type` (`HAS
    /// IDENTIFIER`).
    pub fn has_identifier(id_type: impl Into<String>) -> Segment {
        Segment::identifier_count(id_type, CmpOp::Ge, 1)
    }

    /// Members whose profile's number of values of identifier type `id_type` compares so
    /// with `count` (`COUNT(IDENTIFIER t) >= 2`).
    pub fn identifier_count(id_type: impl Into<String>, op: CmpOp, count: u64) -> Segment {
        Segment::Identifiers {
            id_type: id_type.into(),
            op,
            count,
        }
    }

    /// Members of the dynamic group `name`.
    pub fn in_group(name: impl Into<String>) -> Segment {
        Segment::InGroup(name.into())
    }

    /// Starts a predicate on attribute `name`: `Segment::attr("city").eq("Shanghai")`.
    pub fn attr(name: impl Into<String>) -> Field<Segment> {
        Field {
            name: name.into(),
            make: |name, predicate| Segment::Attr { name, predicate },
        }
    }

    /// Starts a predicate on a value computed per member (DESIGN section 9):
    /// `Segment::value(ValueExpr::sum("amount").of("purchase")).ge(1000)`.
    pub fn value(
        value: impl Into<crate::computed::ValueExpr>,
    ) -> Field<Segment, crate::computed::ValueExpr> {
        Field {
            name: value.into(),
            make: |value, predicate| Segment::Value { value, predicate },
        }
    }

    /// Starts a `DID`: `Segment::did("purchase").at_least(3).in_last(90, TimeUnit::Days)`.
    pub fn did(event: impl Into<String>) -> DidBuilder {
        DidBuilder(Did {
            event: event.into(),
            filter: None,
            frequency: None,
            window: None,
        })
    }

    /// Members in both.
    pub fn and(self, other: impl Into<Segment>) -> Segment {
        match (self, other.into()) {
            (Segment::And(mut a), Segment::And(b)) => {
                a.extend(b);
                Segment::And(a)
            }
            (Segment::And(mut a), b) => {
                a.push(b);
                Segment::And(a)
            }
            (a, b) => Segment::And(vec![a, b]),
        }
    }

    /// Members in either.
    pub fn or(self, other: impl Into<Segment>) -> Segment {
        match (self, other.into()) {
            (Segment::Or(mut a), Segment::Or(b)) => {
                a.extend(b);
                Segment::Or(a)
            }
            (Segment::Or(mut a), b) => {
                a.push(b);
                Segment::Or(a)
            }
            (a, b) => Segment::Or(vec![a, b]),
        }
    }

    /// Levels of nesting: every `NOT`, `AND` and `OR` node is one level over its children
    /// (its printed text nests no deeper). Measured without recursion, so a tree of any
    /// depth is measured safely before anything recurses on it.
    pub fn nesting(&self) -> usize {
        shape::nesting(self)
    }

    /// The same set of members in a shallower tree (see `shape::simplified`).
    pub(crate) fn simplified(self) -> Segment {
        shape::simplified(self)
    }

    /// True when the segment's answer moves with *now* (an `IN LAST` window). Groups are not
    /// looked into; the group store tracks their dependency separately.
    pub(crate) fn uses_relative_time(&self) -> bool {
        match self {
            Segment::Did(did) => matches!(did.window, Some(Window::Last { .. })),
            Segment::Sequence(s) => s.uses_relative_time(),
            Segment::Value { value, .. } => value.uses_relative_time(),
            Segment::And(children) | Segment::Or(children) => {
                children.iter().any(Segment::uses_relative_time)
            }
            Segment::Not(inner) => inner.uses_relative_time(),
            _ => false,
        }
    }

    /// Every attribute (or trait) name the segment compares, directly or in a value.
    pub(crate) fn attribute_names<'a>(&'a self, out: &mut Vec<&'a str>) {
        match self {
            Segment::Attr { name, .. } => out.push(name),
            Segment::Value { value, .. } => out.extend(value.attributes()),
            Segment::And(children) | Segment::Or(children) => {
                children.iter().for_each(|c| c.attribute_names(out))
            }
            Segment::Not(inner) => inner.attribute_names(out),
            _ => {}
        }
    }

    /// Every field the segment reads: attributes and traits, identifier types, event
    /// properties (in filters, aggregates and `MATCHING`).
    pub(crate) fn read_fields<'a>(&'a self, out: &mut Vec<&'a str>) {
        fn filter<'a>(f: Option<&'a PropFilter>, out: &mut Vec<&'a str>) {
            match f {
                None => {}
                Some(PropFilter::Prop { name, .. }) => out.push(name),
                Some(PropFilter::And(parts) | PropFilter::Or(parts)) => {
                    parts.iter().for_each(|p| filter(Some(p), out))
                }
                Some(PropFilter::Not(inner)) => filter(Some(inner), out),
            }
        }
        match self {
            Segment::All | Segment::Tag(_) | Segment::InGroup(_) => {}
            Segment::Attr { name, .. } => out.push(name),
            Segment::Identifiers { id_type, .. } => out.push(id_type),
            Segment::Did(did) => filter(did.filter.as_ref(), out),
            Segment::Sequence(s) => {
                filter(s.first.filter.as_ref(), out);
                filter(s.then_filter.as_ref(), out);
                out.extend(s.matching.as_deref());
            }
            Segment::Value { value, .. } => {
                out.extend(value.attributes());
                for a in value.aggregates() {
                    out.extend(a.func.property());
                    filter(a.filter.as_ref(), out);
                }
            }
            Segment::And(children) | Segment::Or(children) => {
                children.iter().for_each(|c| c.read_fields(out))
            }
            Segment::Not(inner) => inner.read_fields(out),
        }
    }

    /// Every group name the segment refers to.
    pub(crate) fn referenced_groups<'a>(&'a self, out: &mut Vec<&'a str>) {
        match self {
            Segment::InGroup(name) => out.push(name),
            Segment::And(children) | Segment::Or(children) => {
                children.iter().for_each(|c| c.referenced_groups(out))
            }
            Segment::Not(inner) => inner.referenced_groups(out),
            _ => {}
        }
    }
}

impl std::ops::Not for Segment {
    type Output = Segment;
    fn not(self) -> Segment {
        Segment::Not(Box::new(self))
    }
}

/// Builds a [`Segment::Did`]; clause order is free here, the meaning is that of DESIGN
/// section 3.
#[derive(Clone, Debug)]
pub struct DidBuilder(Did);

impl DidBuilder {
    /// Only events whose properties pass `filter`.
    pub fn filter(mut self, filter: PropFilter) -> Self {
        self.0.filter = Some(filter);
        self
    }
    /// At least `n` matching events.
    pub fn at_least(mut self, n: u64) -> Self {
        self.0.frequency = Some(Frequency::AtLeast(n));
        self
    }
    /// Between 1 and `n` matching events.
    pub fn at_most(mut self, n: u64) -> Self {
        self.0.frequency = Some(Frequency::AtMost(n));
        self
    }
    /// Exactly `n` matching events.
    pub fn exactly(mut self, n: u64) -> Self {
        self.0.frequency = Some(Frequency::Exactly(n));
        self
    }
    /// Events in the last `amount` units before *now*.
    pub fn in_last(mut self, amount: u64, unit: TimeUnit) -> Self {
        self.0.window = Some(Window::Last { amount, unit });
        self
    }
    /// Events at or after `start` (a timestamp or date string, or a [`Value`]).
    pub fn since(mut self, start: impl Into<Value>) -> Self {
        let before = match self.0.window.take() {
            Some(Window::Range { before, .. }) => before,
            _ => None,
        };
        self.0.window = Some(Window::Range {
            since: Some(start.into()),
            before,
        });
        self
    }
    /// Events before `end`.
    pub fn before(mut self, end: impl Into<Value>) -> Self {
        let since = match self.0.window.take() {
            Some(Window::Range { since, .. }) => since,
            _ => None,
        };
        self.0.window = Some(Window::Range {
            since,
            before: Some(end.into()),
        });
        self
    }
    /// The finished segment.
    pub fn build(self) -> Segment {
        Segment::Did(self.0)
    }
    /// A sequence: these events, then an event of type `event` (DESIGN section 10). The
    /// first part of a sequence takes no frequency.
    pub fn then(self, event: impl Into<String>) -> crate::sequence::SequenceBuilder {
        crate::sequence::SequenceBuilder::new(self.0, false, event.into())
    }
    /// A sequence with an absence: these events, then no event of type `event`.
    pub fn then_not(self, event: impl Into<String>) -> crate::sequence::SequenceBuilder {
        crate::sequence::SequenceBuilder::new(self.0, true, event.into())
    }
    /// Members in both (shorthand for `build().and(other)`).
    pub fn and(self, other: impl Into<Segment>) -> Segment {
        self.build().and(other)
    }
    /// Members in either.
    pub fn or(self, other: impl Into<Segment>) -> Segment {
        self.build().or(other)
    }
}

impl From<DidBuilder> for Segment {
    fn from(b: DidBuilder) -> Segment {
        b.build()
    }
}

impl std::ops::Not for DidBuilder {
    type Output = Segment;
    fn not(self) -> Segment {
        !self.build()
    }
}

impl PropFilter {
    /// Starts a test of property `name`: `PropFilter::prop("amount").ge(500)`.
    pub fn prop(name: impl Into<String>) -> Field<PropFilter> {
        Field {
            name: name.into(),
            make: |name, predicate| PropFilter::Prop { name, predicate },
        }
    }
    /// Both.
    pub fn and(self, other: PropFilter) -> PropFilter {
        PropFilter::And(vec![self, other])
    }
    /// Either.
    pub fn or(self, other: PropFilter) -> PropFilter {
        PropFilter::Or(vec![self, other])
    }
}

impl PropFilter {
    /// Levels of nesting, as [`Segment::nesting`] counts them.
    pub fn nesting(&self) -> usize {
        shape::nesting(self)
    }
}

impl std::ops::Not for PropFilter {
    type Output = PropFilter;
    fn not(self) -> PropFilter {
        PropFilter::Not(Box::new(self))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builder_flattens_and_or() {
        let s = Segment::tag("a")
            .and(Segment::tag("b"))
            .and(Segment::tag("c"));
        assert!(matches!(&s, Segment::And(v) if v.len() == 3));
        let d = Segment::did("purchase")
            .since("2026-01-01")
            .before("2026-07-01")
            .build();
        let Segment::Did(did) = d else {
            panic!("not a DID")
        };
        assert_eq!(
            did.window,
            Some(Window::Range {
                since: Some(Value::from("2026-01-01")),
                before: Some(Value::from("2026-07-01"))
            })
        );
    }

    #[test]
    fn frequency_needs_one_event() {
        assert!(!Frequency::AtMost(2).accepts(0));
        assert!(Frequency::AtMost(2).accepts(2));
        assert!(!Frequency::Exactly(0).accepts(0));
        assert!(Frequency::AtLeast(0).accepts(1));
    }
}
