//! Binding: a [`Segment`] resolved against one state at one *now* into a [`Plan`]. The one
//! place names become bitmaps, columns and partitions, literals are compiled against their
//! columns and windows resolved; statements (with their spans) and the builder's segments
//! (without) both come through here.

use memberdb_query::MAX_STORED_NESTING;
use memberdb_query::ast::Span;

use super::leaf::Leaf;
use super::{Node, Op, Plan, Source};
use crate::attributes::Access;
use crate::column::{Column, compile};
use crate::computed::eval::{BoundAggregate, BoundFunc, BoundValue};
use crate::computed::{AggFunc, Aggregate, ValueExpr};
use crate::error::{Error, Result};
use crate::events::{BoundFilter, EventPartition, Presence};
use crate::segment::{CmpOp, Predicate, PropFilter, Segment, Window, resolve_window};
use crate::state::{Named, State};
use crate::traits::eval::{BoundCase, BoundQuantile};
use crate::traits::{Trait, TraitDef};
use crate::value::{DataType, Value};

/// Where one node of a segment (or of a `WHERE` filter) came from in the statement's text,
/// so a binding error can point at it. A statement's nodes are listed in pre-order: each
/// node, then its children in order; a `DID`'s filter nodes follow the `DID`.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct NodeSpans {
    /// The whole node.
    pub(crate) whole: Span,
    /// The name it uses (tag, group, attribute, event, property); else the whole node.
    pub(crate) name: Span,
    /// A `DID`'s window clause; else the whole node.
    pub(crate) window: Span,
}

/// Binds `segment` to `state` at `now`. With `spans` (the statement's, in the order of
/// [`NodeSpans`]), every error points at its part of the text.
pub(crate) fn bind<'a>(
    state: &'a State,
    segment: &'a Segment,
    now: i64,
    spans: Option<&[NodeSpans]>,
) -> Result<Plan<'a>> {
    // The language refuses deeper text, but a tree built through the API can be any depth;
    // binding recurses, so the depth is measured (without recursion) first.
    let depth = segment.nesting();
    if depth > MAX_STORED_NESTING {
        return Err(Error::InvalidSegment(format!(
            "the segment nests {depth} levels deep (each NOT, AND and OR is a level), more than \
             {MAX_STORED_NESTING}"
        )));
    }
    let mut binder = Binder::new(state, now, spans);
    let root = binder.node(segment)?;
    Ok(Plan {
        root,
        now,
        moves_with_time: binder.moves,
        leaves: binder.slots,
    })
}

/// Binds a `WHERE` filter of events to `part` (EXPLAIN MEMBER tests one member's events
/// with it).
pub(crate) fn event_filter<'a>(
    state: &'a State,
    part: &'a EventPartition,
    filter: &PropFilter,
) -> Result<BoundFilter<'a>> {
    Binder::new(state, 0, None).filter(part, filter)
}

/// `value` bound to `state` at `now` (BREAKDOWN by a value computes it).
pub(crate) fn bind_value<'a>(
    state: &'a State,
    value: &'a ValueExpr,
    now: i64,
) -> Result<BoundValue<'a>> {
    Binder::new(state, now, None).value(value, None)
}

/// `funnel` bound to `state` at `now`: a track per event type its steps name, its `BY`.
/// With `spans` (per step: its node, then its filter's nodes), errors point at the step.
pub(crate) fn bind_funnel<'a>(
    state: &'a State,
    funnel: &'a crate::sequence::Funnel,
    now: i64,
    spans: Option<&[NodeSpans]>,
) -> Result<crate::sequence::funnel::BoundFunnel<'a>> {
    Binder::new(state, now, spans).funnel(funnel)
}

/// Whether `value` (`None`: NULL) of type `data_type` passes `predicate`, as the binder
/// tests the members without a value (the compiler tests a `CASE`'s results with it).
pub(crate) fn value_passes(
    predicate: &Predicate,
    data_type: DataType,
    value: Option<&Value>,
    text: &str,
) -> Result<bool> {
    let matcher = compile(predicate, &Column::new(data_type), text)?;
    super::leaf::value_passes(predicate, &matcher, data_type, value)
}

/// The type of the values of a trait defined as `definition` (checking it binds).
pub(crate) fn trait_type(state: &State, definition: &TraitDef, now: i64) -> Result<DataType> {
    Ok(Binder::new(state, now, None)
        .definition(definition, "")?
        .data_type())
}

/// Trait `t`'s definition bound at `now` (its values are computed from it).
pub(crate) fn bind_trait<'a>(state: &'a State, t: &'a Trait, now: i64) -> Result<BoundValue<'a>> {
    Binder::new(state, now, None).trait_value(t)
}

/// The value of `value` for member `row` at `now` (EXPLAIN MEMBER shows it).
pub(crate) fn member_value(
    state: &State,
    value: &ValueExpr,
    now: i64,
    row: u32,
) -> Result<Option<Value>> {
    let bound = bind_value(state, value, now)?;
    let values = bound.values(Some(&[row]), state.members.len())?;
    Ok(if values.rows.is_empty() {
        bound.empty()
    } else {
        values.column.get(0)
    })
}

struct Binder<'a, 's> {
    state: &'a State,
    now: i64,
    spans: Option<&'s [NodeSpans]>,
    /// The pre-order number of the next node.
    next: usize,
    /// Computed leaves so far.
    slots: usize,
    moves: bool,
    /// Inside a trait's definition: an integer `SUM` that overflows is NULL.
    in_trait: usize,
}

/// Attaches a span to an error when the statement's spans are known.
fn located(spans: Option<NodeSpans>, pick: fn(&NodeSpans) -> Span) -> impl Fn(Error) -> Error {
    move |e| match &spans {
        Some(s) => e.at(pick(s)),
        None => e,
    }
}

fn name(s: &NodeSpans) -> Span {
    s.name
}
fn whole(s: &NodeSpans) -> Span {
    s.whole
}
fn window(s: &NodeSpans) -> Span {
    s.window
}

impl<'a, 's> Binder<'a, 's> {
    fn new(state: &'a State, now: i64, spans: Option<&'s [NodeSpans]>) -> Self {
        Binder {
            state,
            now,
            spans,
            next: 0,
            slots: 0,
            moves: false,
            in_trait: 0,
        }
    }

    /// Takes the next node's spans.
    fn enter(&mut self) -> Option<NodeSpans> {
        let i = self.next;
        self.next += 1;
        self.spans.and_then(|s| s.get(i).copied())
    }

    fn computed(&mut self, leaf: Leaf<'a>) -> Op<'a> {
        let slot = self.slots;
        self.slots += 1;
        Op::Computed { slot, leaf }
    }

    fn node(&mut self, segment: &'a Segment) -> Result<Node<'a>> {
        let spans = self.enter();
        let state = self.state;
        let op = match segment {
            Segment::All => Op::Universe,
            Segment::Tag(tag) => Op::Stored(state.tags.get(tag).ok_or_else(|| {
                located(spans, name)(Error::unknown("tag", tag, state.tags.names()))
            })?),
            Segment::Identifiers { id_type, op, count } => {
                let t = state
                    .identity
                    .require_type(id_type)
                    .map_err(located(spans, name))?;
                identifier_count(state, segment, t, *op, *count)
            }
            Segment::InGroup(group) => {
                let group = state.groups.require(group).map_err(located(spans, name))?;
                // A group that moves with time answers from its bitmap at the instants the
                // bitmap holds for (from the engine's clock to its next change).
                self.moves |= group.time_dependent;
                if !group.holds_at(self.now) {
                    // Bound in place at this *now*; its nodes have no spans in this text.
                    self.moves = true;
                    let mut inner = Binder {
                        state,
                        now: self.now,
                        spans: None,
                        next: 0,
                        slots: self.slots,
                        moves: true,
                        in_trait: self.in_trait,
                    };
                    let bound = inner.node(&group.definition)?;
                    self.slots = inner.slots;
                    bound.op
                } else {
                    Op::Stored(&group.bitmap)
                }
            }
            Segment::Attr {
                name: attr,
                predicate,
            } => {
                let attribute = match state.require_named(attr).map_err(located(spans, name))? {
                    Named::Attribute(a) => a,
                    Named::Trait(t) if t.holds_at(self.now) => {
                        self.moves |= t.time_dependent;
                        &t.values
                    }
                    // Its values do not hold at this *now*: its definition is evaluated.
                    Named::Trait(t) => {
                        self.moves = true;
                        let bound = self.trait_value(t)?;
                        return Ok(Node {
                            source: Source::Segment(segment),
                            op: self.value_leaf(
                                segment,
                                bound,
                                &|| attr.clone(),
                                predicate,
                                spans,
                            )?,
                        });
                    }
                };
                let matcher =
                    compile(predicate, &attribute.column, attr).map_err(located(spans, whole))?;
                if matcher.is_never() {
                    Op::Nothing
                } else {
                    self.attribute(segment, attribute, matcher)
                }
            }
            Segment::Did(did) => {
                let part = state
                    .events
                    .require(&did.event)
                    .map_err(located(spans, name))?;
                let range = did
                    .window
                    .as_ref()
                    .map(|w| resolve_window(w, self.now))
                    .transpose()
                    .map_err(located(spans, window))?;
                if matches!(did.window, Some(Window::Last { .. })) {
                    self.moves = true;
                }
                let filter = did
                    .filter
                    .as_ref()
                    .map(|f| self.filter(part, f))
                    .transpose()?;
                // a window that spans whole days, and the one property a filter names
                let split = range.and_then(|(lo, hi)| part.day_split(lo, hi));
                let prop = match &did.filter {
                    Some(PropFilter::Prop { name, .. }) => Some(name.as_str()),
                    _ => None,
                };
                match (filter, did.frequency, range, split, prop) {
                    (None, None, None, ..) => Op::Stored(&part.any),
                    (None, None, Some((lo, hi)), ..) => self.presence(segment, part, lo, hi),
                    (None, Some(frequency), window, ..) if frequency.counter_band().is_some() => {
                        self.day_counts(part, window, frequency, state.members.len())
                    }
                    (
                        Some(BoundFilter::Prop {
                            column: Some(column),
                            matcher,
                        }),
                        None,
                        _,
                        Some(split),
                        Some(prop),
                    ) => self.computed(Leaf::ValueDays {
                        part,
                        prop,
                        column,
                        matcher,
                        split,
                        members: state.members.len(),
                    }),
                    (filter, frequency, range, ..) => {
                        let range = match range {
                            Some((lo, hi)) => part.slice(lo, hi),
                            None => 0..part.len(),
                        };
                        self.computed(Leaf::Events {
                            part,
                            range,
                            filter,
                            frequency,
                            members: state.members.len(),
                        })
                    }
                }
            }
            Segment::Sequence(seq) => {
                // The second part's spans: the THEN part, b's name, MATCHING's property.
                let then_spans = self.enter();
                self.sequence(seq, spans, then_spans)?
            }
            Segment::Value { value, predicate } => {
                let sliding = matches!(value, ValueExpr::Aggregate(a) if a.within_any.is_some());
                if sliding && !matches!(predicate, Predicate::Cmp(CmpOp::Ge | CmpOp::Gt, _)) {
                    return Err(located(spans, whole)(Error::InvalidSegment(
                        "WITHIN ANY asks whether some interval holds at least n: compare it \
                         with >= or >. Other tests would mix intervals (with <= every \
                         interval would have to hold at most n): for \"no interval holds \
                         more than n\" write NOT (COUNT(... WITHIN ANY ...) > n)"
                            .into(),
                    )));
                }
                let bound = self.value(value, spans)?;
                self.moves |= value.uses_relative_time();
                let text = || crate::query::value_text(value);
                self.value_leaf(segment, bound, &text, predicate, spans)?
            }
            Segment::And(children) => {
                let mut pos = Vec::new();
                let mut neg = Vec::new();
                for child in children {
                    match child {
                        Segment::Not(inner) => {
                            self.enter();
                            neg.push(self.node(inner)?);
                        }
                        other => pos.push(self.node(other)?),
                    }
                }
                if pos.is_empty() {
                    pos.push(universe(segment));
                }
                Op::And { pos, neg }
            }
            Segment::Or(children) if children.is_empty() => Op::Nothing,
            Segment::Or(children) => Op::Or(
                children
                    .iter()
                    .map(|c| self.node(c))
                    .collect::<Result<_>>()?,
            ),
            Segment::Not(inner) => Op::And {
                pos: vec![universe(segment)],
                neg: vec![self.node(inner)?],
            },
        };
        Ok(Node {
            source: Source::Segment(segment),
            op,
        })
    }

    /// A funnel's steps bound into tracks (step `k` is role bit `k`; the first step's role
    /// takes the entries in the range, the others any event up to `W` after the range's
    /// end), and its `BY`.
    fn funnel(
        &mut self,
        funnel: &'a crate::sequence::Funnel,
    ) -> Result<crate::sequence::funnel::BoundFunnel<'a>> {
        use crate::sequence::funnel::{BoundBy, BoundFunnel};
        use crate::sequence::timeline::{Role, Track};
        use crate::sequence::{FunnelBy, MAX_FUNNEL_STEPS};
        let state = self.state;
        let n = funnel.steps.len();
        if !(2..=MAX_FUNNEL_STEPS).contains(&n) {
            return Err(Error::InvalidSegment(format!(
                "a funnel has 2 to {MAX_FUNNEL_STEPS} steps, not {n}"
            )));
        }
        let (amount, unit) = funnel.within;
        let within = crate::segment::within(amount, unit, crate::segment::Within::Step)?;
        let (lo, hi) = funnel
            .range
            .as_ref()
            .map(|w| resolve_window(w, self.now))
            .transpose()?
            .unwrap_or((i64::MIN, i64::MAX));
        if matches!(funnel.range, Some(Window::Last { .. })) {
            self.moves = true;
        }
        let mut tracks: Vec<Track<'a>> = Vec::new();
        let mut names: Vec<&'a str> = Vec::new();
        let mut first_part = None;
        for (k, step) in funnel.steps.iter().enumerate() {
            let spans = self.enter();
            let part = state
                .events
                .require(&step.event)
                .map_err(located(spans, name))?;
            let filter = step
                .filter
                .as_ref()
                .map(|f| self.filter(part, f))
                .transpose()?;
            let role = Role {
                bit: 1 << k,
                filter,
                lo,
                hi: if k == 0 {
                    hi
                } else {
                    hi.saturating_add(within)
                },
            };
            first_part.get_or_insert(part);
            names.push(&step.event);
            match tracks.iter_mut().find(|t| std::ptr::eq(t.part, part)) {
                Some(track) => track.roles.push(role),
                None => tracks.push(Track {
                    part,
                    roles: vec![role],
                }),
            }
        }
        let first_part = first_part.expect("two steps or more");
        // The BY clause's span follows the steps'.
        let by_spans = self.enter();
        let by = match &funnel.by {
            None => None,
            Some(FunnelBy::Value(v)) => Some(BoundBy::Value(
                self.value(v, None).map_err(located(by_spans, whole))?,
            )),
            Some(FunnelBy::FirstTouch(p) | FunnelBy::LastTouch(p)) => {
                let Some(column) = first_part.props.get(p) else {
                    let known = first_part.props.keys().map(String::as_str);
                    return Err(located(by_spans, whole)(Error::InvalidSegment(format!(
                        "BY {p} ... TOUCH reads property '{p}' of the first step's events \
                         ({}), which have none{}",
                        funnel.steps[0].event,
                        crate::util::suggest::hint(p, known)
                    ))));
                };
                Some(BoundBy::Touch {
                    column,
                    first: matches!(funnel.by, Some(FunnelBy::FirstTouch(_))),
                })
            }
        };
        Ok(BoundFunnel {
            tracks,
            steps: names,
            within,
            by,
            members: state.members.len(),
        })
    }

    /// `DID a ... THEN [NOT] b ...` bound into its leaf; `spans` are the sequence's (its
    /// first part's name and window), `then_spans` its second part's (the THEN part, b's
    /// name, the MATCHING property). The first part's filter nodes come next, then the
    /// second part's.
    fn sequence(
        &mut self,
        seq: &'a crate::sequence::Sequence,
        spans: Option<NodeSpans>,
        then_spans: Option<NodeSpans>,
    ) -> Result<Op<'a>> {
        use crate::sequence::leaf::{BoundSequence, MatchKeys};
        use crate::sequence::walk::SequenceRule;
        let state = self.state;
        let first = &seq.first;
        if first.frequency.is_some() {
            return Err(located(spans, whole)(Error::InvalidSegment(
                "the first part of DID ... THEN takes no count clause (AT LEAST, AT MOST, \
                 EXACTLY): a sequence asks for one event followed by another"
                    .into(),
            )));
        }
        let part_a = state
            .events
            .require(&first.event)
            .map_err(located(spans, name))?;
        let part_b = state
            .events
            .require(&seq.then)
            .map_err(located(then_spans, name))?;
        let range = first
            .window
            .as_ref()
            .map(|w| resolve_window(w, self.now))
            .transpose()
            .map_err(located(spans, window))?
            .unwrap_or((i64::MIN, i64::MAX));
        let within = seq
            .within
            .map(|(amount, unit)| {
                crate::segment::within(amount, unit, crate::segment::Within::Event)
            })
            .transpose()
            .map_err(located(then_spans, whole))?;
        self.moves |= seq.uses_relative_time();
        let filter_a = first
            .filter
            .as_ref()
            .map(|f| self.filter(part_a, f))
            .transpose()?;
        let filter_b = seq
            .then_filter
            .as_ref()
            .map(|f| self.filter(part_b, f))
            .transpose()?;
        let keys = match &seq.matching {
            None => MatchKeys::Off,
            Some(p) => {
                let (a, b) = (part_a.props.get(p), part_b.props.get(p));
                if a.is_none() && b.is_none() {
                    let known: std::collections::BTreeSet<&str> = part_a
                        .props
                        .keys()
                        .chain(part_b.props.keys())
                        .map(String::as_str)
                        .collect();
                    return Err(located(then_spans, window)(Error::InvalidSegment(format!(
                        "MATCHING {p}: neither {} nor {} events have a property '{p}'{}",
                        first.event,
                        seq.then,
                        crate::util::suggest::hint(p, known)
                    ))));
                }
                MatchKeys::new(a, b)
            }
        };
        let rule = SequenceRule {
            negated: seq.negated,
            within,
            now: self.now,
        };
        Ok(self.computed(Leaf::Sequence(Box::new(BoundSequence::new(
            (part_a, filter_a, range),
            (part_b, filter_b),
            rule,
            keys,
        )))))
    }

    /// The leaf testing a value: the members whose value passes, or, when members without
    /// a value (no events read: 0 or NULL) pass, the universe less those whose value fails.
    fn value_leaf(
        &mut self,
        segment: &'a Segment,
        bound: BoundValue<'a>,
        text: &dyn Fn() -> String,
        predicate: &'a Predicate,
        spans: Option<NodeSpans>,
    ) -> Result<Op<'a>> {
        let state = self.state;
        let data_type = bound.data_type();
        // The test is checked against the value's type now; members without a value pass
        // or fail it all alike.
        let typed = Column::new(data_type);
        // The value's text names it in an error only: printed then (binding is on the
        // write path of every trait).
        let matcher = compile(predicate, &typed, "")
            .or_else(|_| compile(predicate, &typed, &text()))
            .map_err(located(spans, whole))?;
        let empty_passes =
            super::leaf::value_passes(predicate, &matcher, data_type, bound.empty().as_ref())
                .map_err(located(spans, whole))?;
        let leaf = self.computed(Leaf::Value {
            value: bound,
            predicate,
            matcher,
            failing: empty_passes,
            members: state.members.len(),
        });
        Ok(if empty_passes {
            Op::And {
                pos: vec![universe(segment)],
                neg: vec![Node {
                    source: Source::Part {
                        of: segment,
                        what: "members whose value fails",
                    },
                    op: leaf,
                }],
            }
        } else {
            leaf
        })
    }

    /// A trait's definition bound at this *now* (its values do not hold at it).
    fn trait_value(&mut self, t: &'a Trait) -> Result<BoundValue<'a>> {
        self.definition(&t.definition, &t.name)
    }

    /// Trait `name`'s definition bound at this *now*.
    fn definition(&mut self, definition: &'a TraitDef, name: &str) -> Result<BoundValue<'a>> {
        let state = self.state;
        let now = self.now;
        self.in_trait += 1;
        let bound = match definition {
            TraitDef::Value(v) => self.value(v, None),
            TraitDef::Quantile {
                buckets,
                value,
                descending,
                over,
            } => {
                let value = self.value(value, None)?;
                if matches!(value.data_type(), DataType::String) {
                    return Err(Error::InvalidSegment(format!(
                        "QUANTILE ranks numbers, dates, times and booleans, not a string \
                         value (trait '{name}')"
                    )));
                }
                Ok(BoundValue::Quantile(BoundQuantile {
                    state,
                    value: Box::new(value),
                    over: Box::new(bind(state, over, now, None)?),
                    buckets: *buckets,
                    descending: *descending,
                }))
            }
            TraitDef::Case { whens, otherwise } => {
                let data_type = crate::traits::case_type(whens, otherwise.as_ref())?;
                Ok(BoundValue::Case(BoundCase {
                    state,
                    whens: whens
                        .iter()
                        .map(|(s, v)| Ok((bind(state, s, now, None)?, v)))
                        .collect::<Result<_>>()?,
                    otherwise: otherwise.as_ref(),
                    data_type,
                }))
            }
        };
        self.in_trait -= 1;
        bound
    }

    /// Members with an event in `[lo, hi)`: the OR of the stored bitmaps of the whole days
    /// inside the window (walked chunk by chunk like any stored bitmap) and the computed
    /// parts of the days it cuts; a window inside one day is one computed leaf.
    fn presence(
        &mut self,
        segment: &'a Segment,
        part: &'a EventPartition,
        lo: i64,
        hi: i64,
    ) -> Op<'a> {
        let Presence::Days { whole, edges } = part.presence(lo, hi) else {
            return self.computed(Leaf::Present {
                part,
                events: part.slice(lo, hi),
            });
        };
        let mut days: Vec<Node<'a>> = whole
            .map(|(&day, bitmap)| Node {
                source: Source::Day { of: segment, day },
                op: Op::Stored(bitmap),
            })
            .collect();
        for (day, lo, hi) in edges {
            let events = part.slice(lo, hi);
            if events.is_empty() {
                continue;
            }
            let op = self.computed(Leaf::PartialDay {
                part,
                day,
                lo,
                hi,
                events,
            });
            days.push(Node {
                source: Source::Day { of: segment, day },
                op,
            });
        }
        if days.is_empty() {
            Op::Nothing
        } else {
            Op::Or(days)
        }
    }

    /// Members whose count of events in `window` (all time without one) passes `frequency`,
    /// counted from the day bitmaps (a window inside one day counts its events).
    fn day_counts(
        &mut self,
        part: &'a EventPartition,
        window: Option<(i64, i64)>,
        frequency: crate::segment::Frequency,
        members: usize,
    ) -> Op<'a> {
        let split = match window {
            None => part.all_days(),
            Some((lo, hi)) => match part.day_split(lo, hi) {
                Some(split) => split,
                None => {
                    return self.computed(Leaf::Events {
                        part,
                        range: part.slice(lo, hi),
                        filter: None,
                        frequency: Some(frequency),
                        members,
                    });
                }
            },
        };
        self.computed(Leaf::DayCounts {
            part,
            split,
            frequency,
            members,
        })
    }

    /// A comparison on an attribute, through its index where one fits.
    fn attribute(
        &mut self,
        segment: &'a Segment,
        attribute: &'a crate::attributes::Attribute,
        matcher: crate::column::Matcher,
    ) -> Op<'a> {
        let part = |what: &'static str, op: Op<'a>| Node {
            source: Source::Part { of: segment, what },
            op,
        };
        let Some(rows) = attribute.index.pending() else {
            return self.indexed(segment, attribute, matcher);
        };
        // Rows whose index entries wait (a write's trait values): what the bitmaps say of
        // them is taken out, their column values tested instead.
        let pending = self.computed(Leaf::Pending {
            attr: attribute,
            rows,
            matcher: matcher.clone(),
        });
        let indexed = self.indexed(segment, attribute, matcher);
        Op::Or(vec![
            part(
                "members whose index entries are current",
                Op::And {
                    pos: vec![part("the index's answer", indexed)],
                    neg: vec![part("members whose entries wait", Op::Stored(rows))],
                },
            ),
            part("members whose entries wait that pass", pending),
        ])
    }

    /// A comparison on an attribute answered by its index alone (see
    /// [`attribute`](Self::attribute)).
    fn indexed(
        &mut self,
        segment: &'a Segment,
        attribute: &'a crate::attributes::Attribute,
        matcher: crate::column::Matcher,
    ) -> Op<'a> {
        let part = |what: &'static str, op: Op<'a>| Node {
            source: Source::Part { of: segment, what },
            op,
        };
        match attribute.index.access(&matcher) {
            Access::Null(not_null) => Op::And {
                pos: vec![universe(segment)],
                neg: vec![part("members with a value", Op::Stored(not_null))],
            },
            Access::Values {
                any_of,
                negated_within,
            } => {
                let union = match any_of.as_slice() {
                    [] => Op::Nothing,
                    [(_, one)] => Op::Stored(one),
                    many => Op::Or(
                        many.iter()
                            .map(|&(slot, b)| Node {
                                source: match slot {
                                    Some(slot) => Source::Value {
                                        attr: attribute,
                                        slot,
                                    },
                                    None => Source::Part {
                                        of: segment,
                                        what: "members with a value",
                                    },
                                },
                                op: Op::Stored(b),
                            })
                            .collect(),
                    ),
                };
                match negated_within {
                    None => union,
                    Some(within) => Op::And {
                        pos: vec![part("members with a value", Op::Stored(within))],
                        neg: vec![part("members with the value(s)", union)],
                    },
                }
            }
            Access::Ranges { whole, within } => {
                let (matcher, bin, cut) = match within {
                    None => (
                        matcher,
                        "a range bin wholly inside",
                        "the passing rows of the range bins it cuts",
                    ),
                    Some(_) => (
                        crate::attributes::complement(&matcher),
                        "a range bin wholly outside",
                        "the failing rows of the range bins it cuts",
                    ),
                };
                let mut bins: Vec<Node<'a>> = whole
                    .into_iter()
                    .map(|b| part(bin, Op::Stored(b)))
                    .collect();
                let rows = self.computed(Leaf::Range {
                    attr: attribute,
                    matcher,
                });
                bins.push(part(cut, rows));
                match within {
                    None => Op::Or(bins),
                    Some(not_null) => Op::And {
                        pos: vec![part("members with a value", Op::Stored(not_null))],
                        neg: vec![part("members outside the range", Op::Or(bins))],
                    },
                }
            }
            Access::Scan => self.computed(Leaf::Scan {
                attr: attribute,
                matcher,
            }),
        }
    }

    /// A value expression bound: names resolved, types checked (errors at the value's
    /// comparison), windows resolved at *now*.
    fn value(&mut self, value: &'a ValueExpr, spans: Option<NodeSpans>) -> Result<BoundValue<'a>> {
        let state = self.state;
        let at = located(spans, whole);
        Ok(match value {
            ValueExpr::Attr(attr) => match state.require_named(attr).map_err(&at)? {
                Named::Attribute(a) => BoundValue::Attr(a),
                Named::Trait(t) if t.holds_at(self.now) => {
                    self.moves |= t.time_dependent;
                    BoundValue::Attr(&t.values)
                }
                Named::Trait(t) => {
                    self.moves = true;
                    self.trait_value(t)?
                }
            },
            ValueExpr::Aggregate(a) => {
                let part = state.events.require(&a.event).map_err(&at)?;
                let within_any = match a.within_any {
                    None => None,
                    Some(_) if a.window.is_some() => {
                        return Err(at(Error::InvalidSegment(
                            "WITHIN ANY looks at every interval of all time: it takes no \
                             other window"
                                .into(),
                        )));
                    }
                    Some(_)
                        if !matches!(
                            a.func,
                            AggFunc::Count | AggFunc::CountDistinct(_) | AggFunc::CountDistinctDays
                        ) =>
                    {
                        return Err(at(Error::InvalidSegment(
                            "WITHIN ANY counts: it goes with COUNT(e ...) and COUNT(DISTINCT \
                             ...) only"
                                .into(),
                        )));
                    }
                    Some((amount, unit)) => Some(
                        crate::segment::window_span(amount, unit)
                            .filter(|&span| span > 0)
                            .ok_or_else(|| {
                                at(Error::InvalidSegment(
                                    "WITHIN ANY needs an interval longer than 0".into(),
                                ))
                            })?,
                    ),
                };
                let window = a
                    .window
                    .as_ref()
                    .map(|w| resolve_window(w, self.now).map_err(&at))
                    .transpose()?;
                let filter = a
                    .filter
                    .as_ref()
                    .map(|f| self.filter(part, f))
                    .transpose()?;
                let func = self.func(part, a).map_err(&at)?;
                BoundValue::Aggregate(BoundAggregate {
                    part,
                    window,
                    events: std::sync::OnceLock::new(),
                    filter,
                    func,
                    within_any,
                    overflow_null: self.in_trait > 0,
                })
            }
            ValueExpr::DaysSince(inner) => {
                let inner = self.value(inner, spans)?;
                if !matches!(inner.data_type(), DataType::Timestamp | DataType::Date) {
                    return Err(at(Error::InvalidSegment(format!(
                        "DAYS SINCE needs a time or a date, not a {} value (a timestamp or \
                         date attribute, FIRST(e), LAST(e), or MIN / MAX of a time property)",
                        inner.data_type()
                    ))));
                }
                BoundValue::DaysSince {
                    inner: Box::new(inner),
                    now: self.now,
                }
            }
            ValueExpr::Bucket { value, cuts } => {
                if matches!(value.as_ref(), ValueExpr::Aggregate(a) if a.within_any.is_some()) {
                    return Err(at(Error::InvalidSegment(
                        "WITHIN ANY is compared directly (with >= or >), not bucketed".into(),
                    )));
                }
                let inner = self.value(value, spans)?;
                if !matches!(inner.data_type(), DataType::Int | DataType::Float) {
                    return Err(at(Error::InvalidSegment(format!(
                        "BUCKET needs a number, not a {} value",
                        inner.data_type()
                    ))));
                }
                let cuts: Vec<f64> = cuts
                    .iter()
                    .map(|c| match c {
                        Value::Int(i) => Some(*i as f64),
                        Value::Float(x) if x.is_finite() => Some(*x),
                        _ => None,
                    })
                    .collect::<Option<_>>()
                    .ok_or_else(|| {
                        at(Error::InvalidSegment(
                            "BUCKET's cut points are numbers".into(),
                        ))
                    })?;
                if cuts.is_empty() || cuts.windows(2).any(|w| w[0] >= w[1]) {
                    return Err(at(Error::InvalidSegment(
                        "BUCKET's cut points must be ascending, each larger than the one \
                         before"
                            .into(),
                    )));
                }
                BoundValue::Bucket {
                    inner: Box::new(inner),
                    cuts,
                }
            }
        })
    }

    /// An aggregate's function with its property's column, its type checked.
    fn func(&self, part: &'a EventPartition, a: &Aggregate) -> Result<BoundFunc<'a>> {
        let schema = &self.state.events.props;
        let prop = |p: &str| -> Result<(Option<&'a Column>, DataType)> {
            let Some(&data_type) = schema.get(p) else {
                let known = schema.keys().map(String::as_str);
                return Err(Error::unknown("event property", p, known));
            };
            Ok((part.props.get(p), data_type))
        };
        let number = |p: &str, what: &str| -> Result<(Option<&'a Column>, DataType)> {
            let (column, data_type) = prop(p)?;
            if !matches!(data_type, DataType::Int | DataType::Float) {
                return Err(Error::InvalidSegment(format!(
                    "{what} needs a number property: '{p}' is {data_type}; {what} works on \
                     integer and float properties (COUNT(DISTINCT {p} OF ...), MIN, MAX, \
                     FIRST and LAST work on any)"
                )));
            }
            Ok((column, data_type))
        };
        Ok(match &a.func {
            AggFunc::Count => BoundFunc::Count,
            AggFunc::CountDistinctDays => BoundFunc::CountDistinctDays,
            AggFunc::CountDistinct(p) => BoundFunc::CountDistinct(prop(p)?.0),
            AggFunc::Sum(p) => {
                let (column, data_type) = number(p, "SUM")?;
                BoundFunc::Sum(column, data_type)
            }
            AggFunc::Avg(p) => BoundFunc::Avg(number(p, "AVG")?.0),
            AggFunc::Min(p) => {
                let (column, data_type) = prop(p)?;
                BoundFunc::Min(column, data_type)
            }
            AggFunc::Max(p) => {
                let (column, data_type) = prop(p)?;
                BoundFunc::Max(column, data_type)
            }
            AggFunc::First(p) => BoundFunc::First(p.as_deref().map(prop).transpose()?),
            AggFunc::Last(p) => BoundFunc::Last(p.as_deref().map(prop).transpose()?),
        })
    }

    /// A `WHERE` filter bound to the partition of its event type.
    fn filter(&mut self, part: &'a EventPartition, filter: &PropFilter) -> Result<BoundFilter<'a>> {
        let spans = self.enter();
        Ok(match filter {
            PropFilter::Prop {
                name: prop,
                predicate,
            } => {
                let schema = &self.state.events.props;
                let Some(&data_type) = schema.get(prop) else {
                    let known = schema.keys().map(String::as_str);
                    return Err(located(spans, name)(Error::unknown(
                        "event property",
                        prop,
                        known,
                    )));
                };
                let column = part.props.get(prop);
                let matcher = match column {
                    Some(c) => compile(predicate, c, prop),
                    None => compile(predicate, &Column::new(data_type), prop),
                }
                .map_err(located(spans, whole))?;
                BoundFilter::Prop { column, matcher }
            }
            PropFilter::And(all) => BoundFilter::And(
                all.iter()
                    .map(|f| self.filter(part, f))
                    .collect::<Result<_>>()?,
            ),
            PropFilter::Or(any) => BoundFilter::Or(
                any.iter()
                    .map(|f| self.filter(part, f))
                    .collect::<Result<_>>()?,
            ),
            PropFilter::Not(inner) => BoundFilter::Not(Box::new(self.filter(part, inner)?)),
        })
    }
}

/// The universe, as the implied first operand of `NOT x` and of an `AND` of negations.
fn universe(of: &Segment) -> Node<'_> {
    Node {
        source: Source::Part {
            of,
            what: "the universe",
        },
        op: Op::Universe,
    }
}

/// `COUNT(IDENTIFIER t) op n` from the levels of type `t` (members holding more than `k`
/// values): at most two stored bitmaps.
fn identifier_count<'a>(
    state: &'a State,
    of: &'a Segment,
    t: crate::identity::graph::TypeId,
    op: crate::segment::CmpOp,
    n: u64,
) -> Op<'a> {
    use crate::segment::CmpOp;
    let node = |op| Node {
        op,
        source: Source::Part {
            of,
            what: "members by identifiers held",
        },
    };
    // Members holding at least `k`.
    let at_least = |k: u64| match k.checked_sub(1) {
        None => Op::Universe,
        Some(k) => state
            .identity
            .more_than(t, k)
            .map_or(Op::Nothing, Op::Stored),
    };
    let below = |k: u64| match at_least(k) {
        Op::Universe => Op::Nothing,
        Op::Nothing => Op::Universe,
        other => Op::And {
            pos: vec![node(Op::Universe)],
            neg: vec![node(other)],
        },
    };
    match op {
        CmpOp::Ge => at_least(n),
        CmpOp::Gt => at_least(n.saturating_add(1)),
        CmpOp::Lt => below(n),
        CmpOp::Le => below(n.saturating_add(1)),
        CmpOp::Eq => match (at_least(n), at_least(n.saturating_add(1))) {
            (Op::Nothing, _) => Op::Nothing,
            (low, Op::Nothing) => low,
            (low, high) => Op::And {
                pos: vec![node(low)],
                neg: vec![node(high)],
            },
        },
        CmpOp::Ne => Op::Or(vec![node(below(n)), node(at_least(n.saturating_add(1)))]),
    }
}
