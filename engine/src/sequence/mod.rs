//! Sequences and funnels (DESIGN section 10): `DID a ... THEN [NOT] b ... [WITHIN n unit]
//! [MATCHING p]` as a segment leaf, and `FUNNEL s1, s2, ... WITHIN W` as a statement with
//! attribution.
//!
//! Both read each candidate member's events of the types they name in time order: the
//! candidates come from the bitmaps first (the members with an event of the first type,
//! within the plan's universe and a funnel's `FOR` segment), then `timeline.rs` gathers
//! those members' events in one pass per event type, `walk.rs` decides each member (the one
//! place the rules of section 10 are written), and `funnel.rs` adds the members up per step
//! and bucket.

pub(crate) mod funnel;
pub(crate) mod leaf;
pub(crate) mod timeline;
pub(crate) mod walk;

use serde::{Deserialize, Serialize};

use crate::computed::ValueExpr;
use crate::segment::{Did, PropFilter, Segment, TimeUnit, Window};
use crate::value::Value;

/// The most steps of a funnel (a step is one bit of a member's event marks).
pub const MAX_FUNNEL_STEPS: usize = 32;

/// `DID a ... THEN [NOT] b [WHERE ...] [WITHIN n unit] [MATCHING p]`.
///
/// Some event A of the first part (its filter and window) and some event B of type `then`
/// (its filter) with `A.ts < B.ts <= A.ts + n units` (any later B without `within`), and
/// with `matching`, `A.p = B.p` (NULL never matches). With `negated`: some A whose window
/// has closed (`A.ts + n units <= now`; without `within`, `A.ts <= now` and the window ends
/// at *now*) and no such B in it.
///
/// ```
/// use memberdb::{Database, Segment, TimeUnit, Timestamp, Value};
///
/// let db = Database::in_memory();
/// let day = |d: u32| Timestamp::parse(&format!("2026-11-{d:02}T10:00:00Z")).unwrap();
/// let coupon = |c: &str| [("coupon_id", Some(Value::from(c)))];
/// db.add_event("M1", "claim_coupon", day(1), &coupon("XMAS"))?;
/// db.add_event("M1", "redeem_coupon", day(3), &coupon("XMAS"))?;
/// db.add_event("M2", "claim_coupon", day(1), &coupon("XMAS"))?;
/// db.add_event("M2", "redeem_coupon", day(3), &coupon("NEWYEAR"))?;
///
/// // claimed, then not redeemed that coupon within 7 days of claiming
/// let lapsed = Segment::did("claim_coupon")
///     .then_not("redeem_coupon")
///     .within(7, TimeUnit::Days)
///     .matching("coupon_id")
///     .build();
/// assert_eq!(db.as_of(day(20)).count(&lapsed)?, 1); // M2
/// // on day 5 the week is still open: nobody yet
/// assert_eq!(db.as_of(day(5)).count(&lapsed)?, 0);
/// # Ok::<(), memberdb::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Sequence {
    /// The first part: an event type, its filter and window (no frequency).
    pub first: Did,
    /// `THEN NOT`: no such second event.
    pub negated: bool,
    /// The second event type.
    pub then: String,
    /// Filter on the second events' properties.
    pub then_filter: Option<PropFilter>,
    /// `WITHIN n unit`: the second event at most this long after the first.
    pub within: Option<(u64, TimeUnit)>,
    /// `MATCHING p`: both events have the same non-NULL value of property `p`.
    pub matching: Option<String>,
}

/// Builds a [`Segment::Sequence`]: `Segment::did("a").then("b").within(7, TimeUnit::Days)`.
#[derive(Clone, Debug)]
pub struct SequenceBuilder(Sequence);

impl SequenceBuilder {
    pub(crate) fn new(first: Did, negated: bool, then: String) -> Self {
        SequenceBuilder(Sequence {
            first,
            negated,
            then,
            then_filter: None,
            within: None,
            matching: None,
        })
    }
    /// Only second events whose properties pass `filter`.
    pub fn filter(mut self, filter: PropFilter) -> Self {
        self.0.then_filter = Some(filter);
        self
    }
    /// The second event at most `amount` units after the first.
    pub fn within(mut self, amount: u64, unit: TimeUnit) -> Self {
        self.0.within = Some((amount, unit));
        self
    }
    /// Both events with the same non-NULL value of `property`.
    pub fn matching(mut self, property: impl Into<String>) -> Self {
        self.0.matching = Some(property.into());
        self
    }
    /// The finished segment.
    pub fn build(self) -> Segment {
        Segment::Sequence(Box::new(self.0))
    }
    /// Members in both (shorthand for `build().and(other)`).
    pub fn and(self, other: impl Into<Segment>) -> Segment {
        self.build().and(other)
    }
}

impl From<SequenceBuilder> for Segment {
    fn from(b: SequenceBuilder) -> Segment {
        b.build()
    }
}

impl std::ops::Not for SequenceBuilder {
    type Output = Segment;
    fn not(self) -> Segment {
        !self.build()
    }
}

impl Sequence {
    /// True when the answer moves with *now*: an `IN LAST` first part, or `THEN NOT`
    /// (whose windows close as time passes).
    pub(crate) fn uses_relative_time(&self) -> bool {
        self.negated || matches!(self.first.window, Some(Window::Last { .. }))
    }
}

/// One step of a funnel: an event type and an optional filter.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FunnelStep {
    /// The event type.
    pub event: String,
    /// Filter on the step's events.
    pub filter: Option<PropFilter>,
}

impl FunnelStep {
    /// A step of events of type `event`.
    pub fn new(event: impl Into<String>) -> Self {
        FunnelStep {
            event: event.into(),
            filter: None,
        }
    }
    /// Only events passing `filter`.
    pub fn filter(mut self, filter: PropFilter) -> Self {
        self.filter = Some(filter);
        self
    }
}

/// How a funnel's members are split into buckets.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum FunnelBy {
    /// The member's value of an attribute, trait or value expression.
    Value(ValueExpr),
    /// The property of the member's earliest entry event in the range.
    FirstTouch(String),
    /// The property of the member's latest entry event in the range.
    LastTouch(String),
}

/// `FUNNEL s1, s2, ... WITHIN n unit [range] [FOR segment] [BY ...]`.
///
/// ```
/// use memberdb::{Database, Funnel, FunnelStep, TimeUnit, Timestamp, Value};
///
/// let db = Database::in_memory();
/// let at = |h: u32| Timestamp::parse(&format!("2026-11-01T{h:02}:00:00Z")).unwrap();
/// let qr = |q: &str| [("qr_code", Some(Value::from(q)))];
/// db.add_event("M1", "scan_qr", at(1), &qr("QR-A"))?;
/// db.add_event("M1", "follow", at(2), &[])?;
/// db.add_event("M1", "purchase", at(5), &[])?;
/// db.add_event("M2", "scan_qr", at(1), &qr("QR-B"))?;
/// db.add_event("M2", "follow", at(3), &[])?;
///
/// let funnel = Funnel::new(["scan_qr", "follow", "purchase"].map(FunnelStep::new), 1, TimeUnit::Days);
/// let report = db.as_of(at(12)).funnel(&funnel)?;
/// let members: Vec<u64> = report.rows.iter().map(|r| r.members).collect();
/// assert_eq!(members, [2, 2, 1]);
/// // from follow to purchase: 3 hours
/// assert_eq!(report.rows[2].median_seconds, Some(3.0 * 3600.0));
/// # Ok::<(), memberdb::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Funnel {
    /// The steps, in order (2 to [`MAX_FUNNEL_STEPS`]).
    pub steps: Vec<FunnelStep>,
    /// How long after its entry event a member may take to reach each next step.
    pub within: (u64, TimeUnit),
    /// The entry events' window (default: any time).
    pub range: Option<Window>,
    /// Only these members (default: every member).
    pub members: Option<Segment>,
    /// The buckets (default: one, every member).
    pub by: Option<FunnelBy>,
}

impl Funnel {
    /// A funnel of `steps`, each next step at most `amount` units after the entry.
    pub fn new(steps: impl IntoIterator<Item = FunnelStep>, amount: u64, unit: TimeUnit) -> Self {
        Funnel {
            steps: steps.into_iter().collect(),
            within: (amount, unit),
            range: None,
            members: None,
            by: None,
        }
    }
    /// Entries in `window` only.
    pub fn range(mut self, window: Window) -> Self {
        self.range = Some(window);
        self
    }
    /// Only the members of `segment`.
    pub fn members(mut self, segment: Segment) -> Self {
        self.members = Some(segment);
        self
    }
    /// Buckets by `by`.
    pub fn by(mut self, by: FunnelBy) -> Self {
        self.by = Some(by);
        self
    }

    /// Refuses an `AT STEP` outside the funnel's steps (the engine's and the compiler's
    /// check, one message).
    pub(crate) fn check_step(&self, step: usize) -> crate::Result<()> {
        let steps = self.steps.len();
        if (1..=steps).contains(&step) {
            return Ok(());
        }
        Err(crate::Error::InvalidSegment(format!(
            "AT STEP {step}: the funnel's steps are 1 to {steps}"
        )))
    }

    /// The members with an entry: a first-step event in the range, within `members`.
    pub(crate) fn entry_segment(&self) -> Segment {
        let first = &self.steps.first();
        let did = Segment::Did(Did {
            event: first.map(|s| s.event.clone()).unwrap_or_default(),
            filter: first.and_then(|s| s.filter.clone()),
            frequency: None,
            window: self.range.clone(),
        });
        match &self.members {
            Some(members) => Segment::And(vec![did, members.clone()]),
            None => did,
        }
    }
}

/// One row of a funnel's answer: a step, within a bucket with `BY`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FunnelRow {
    /// The bucket's value (`None`: the NULL bucket, or no `BY`).
    pub bucket: Option<Value>,
    /// The step, from 1.
    pub step: usize,
    /// The step's event type.
    pub event: String,
    /// Members reaching this step or beyond.
    pub members: u64,
    /// `members` over the first step's (1.0 at step 1; 0.0 when nobody entered).
    pub share_of_first: f64,
    /// `members` over the previous step's (1.0 at step 1; 0.0 after a step of nobody).
    pub share_of_previous: f64,
    /// Median seconds from the previous step's event to this step's, over the members
    /// reaching it (`None` at step 1 and for a step of nobody).
    pub median_seconds: Option<f64>,
}

/// A funnel's answer: a row per step, per bucket with `BY` (buckets ordered by their
/// members at step 1, largest first, ties by value, NULL last).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FunnelReport {
    /// The `BY` text (`None` without).
    pub by: Option<String>,
    /// The rows: each bucket's steps in order.
    pub rows: Vec<FunnelRow>,
}
