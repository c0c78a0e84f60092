//! [`View`]: the read side of a database at one *now*, over a consistent snapshot.

use std::collections::HashMap;
use std::sync::{Arc, RwLockReadGuard};
use std::time::Instant;

use roaring::RoaringBitmap;

use crate::access::Mask;
use crate::attributes::slot_of;
use crate::bitmap::{Bitmap, Chunks};
use crate::column::ColumnData;
use crate::error::{Error, Result};
use crate::plan::{self, NodeSpans, Plan, Universe, check_deadline};
use crate::query::FunnelSpans;
use crate::results::{BreakdownRow, FindOptions, FindResult, FoundMember};
use crate::segment::Segment;
use crate::sequence::funnel::BoundFunnel;
use crate::sequence::{Funnel, FunnelReport};
use crate::state::State;
use crate::value::Value;

/// A session's masks by field, and the key of `hash`.
type Masks = (std::collections::BTreeMap<String, Mask>, Arc<[u8]>);

/// The read side of a database at one *now*: COUNT, FIND, BREAKDOWN.
///
/// A view reads a consistent snapshot: every write acknowledged before it was taken and
/// none that is half applied. Views run in parallel; a writer applies its changes once the
/// views of the moment are dropped, so keep a view only as long as its reads.
#[derive(Debug)]
pub struct View<'db> {
    state: RwLockReadGuard<'db, State>,
    now: i64,
    pub(super) deadline: Option<Instant>,
    /// Threads a statement may split its chunks across (`None`: the machine's cores).
    threads: Option<usize>,
    /// A session's scope: the members every plan of this view runs over (`None`: every
    /// live member).
    scope: Option<Arc<Chunks>>,
    /// A session's masks and their key: FIND builds masked values straight from the
    /// stored text and leaves hidden fields out.
    masks: Option<Masks>,
}

impl<'db> View<'db> {
    pub(crate) fn new(state: RwLockReadGuard<'db, State>, now: i64) -> Self {
        View {
            state,
            now,
            deadline: None,
            threads: None,
            scope: None,
            masks: None,
        }
    }

    /// FIND of this view shows fields as `access` masks them.
    pub(crate) fn with_masks(mut self, access: Option<&crate::access::Access>) -> Self {
        self.masks = access
            .filter(|a| a.masks_anything())
            .map(|a| (a.masks.clone(), a.secret.clone()));
        self
    }

    /// Plans of this view run over the members of `scope` (a session's scope) instead of
    /// every live member: its `ALL`, what `NOT` complements within, every answer's bound.
    /// The scope is bound like any segment; one that does not bind (it names an attribute
    /// that does not exist yet) selects nobody. A scope that is one stored bitmap (an
    /// attribute value, a tag, a group) is used as it is kept.
    pub(crate) fn with_scope(mut self, scope: Option<&Segment>) -> Result<Self> {
        self.scope = match scope {
            None => None,
            Some(segment) => Some(match plan::bind(&self.state, segment, self.now, None) {
                Ok(plan) => plan.chunks(Universe::live(&self.state), self.deadline)?,
                Err(_) => Arc::new(Chunks::empty()),
            }),
        };
        Ok(self)
    }

    /// Plans of this view run over those of its members that are in `members` too (the
    /// members an OVERLAP found).
    pub(crate) fn within(mut self, members: &roaring::RoaringBitmap) -> Self {
        let base = match &self.scope {
            None => self.state.members.live().as_ref() & members,
            Some(scope) => scope.to_roaring() & members,
        };
        self.scope = Some(Arc::new(Chunks::from_roaring(&base)));
        self
    }

    /// Whether member `row` is live and inside this view's scope.
    pub(crate) fn in_scope(&self, row: u32) -> bool {
        match &self.scope {
            None => self.state.members.live().contains(row),
            Some(scope) => scope.contains(row),
        }
    }

    /// Members the view's plans run over.
    pub(crate) fn universe_len(&self) -> u64 {
        match &self.scope {
            None => self.state.members.live().len(),
            Some(scope) => scope.len(),
        }
    }

    /// Statements of this view over large universes (4M member rows or more) split their
    /// chunks across at most `threads` threads; `None` (the default) uses the machine's
    /// cores (up to 8), `Some(1)` keeps every statement on the caller's thread (a server
    /// that already runs one statement per core may prefer it).
    pub fn with_threads(mut self, threads: Option<usize>) -> Self {
        self.threads = threads;
        self
    }

    /// Reads of this view stop with [`Error::DeadlineExceeded`] once `deadline` has passed
    /// (checked before every step of an evaluation and every 65,536 members of a
    /// breakdown), so a server can bound the time one statement takes.
    pub fn with_deadline(mut self, deadline: Option<Instant>) -> Self {
        self.deadline = deadline;
        self
    }

    pub(crate) fn state(&self) -> &State {
        &self.state
    }

    /// The *now* of this view, microseconds since the epoch.
    pub fn now(&self) -> crate::value::Timestamp {
        crate::value::Timestamp(self.now)
    }

    /// `segment` bound to this view's state at its *now*; with the statement's `spans`,
    /// errors point at their part of the text.
    pub(crate) fn bind<'v>(
        &'v self,
        segment: &'v Segment,
        spans: Option<&[NodeSpans]>,
    ) -> Result<Plan<'v>> {
        plan::bind(&self.state, segment, self.now, spans)
    }

    /// The members plans run over: every live member.
    pub(crate) fn universe(&self) -> Universe<'_> {
        let live = match &self.scope {
            None => Universe::live(&self.state),
            Some(scope) => Universe::of(scope),
        };
        match self.threads {
            Some(n) => live.with_threads(n),
            None => live,
        }
    }

    /// The members `plan` selects.
    pub(crate) fn select(&self, plan: &Plan<'_>) -> Result<RoaringBitmap> {
        plan.bitmap(self.universe(), self.deadline)
    }

    /// How many members `plan` selects.
    pub(crate) fn count_plan(&self, plan: &Plan<'_>) -> Result<u64> {
        plan.count(self.universe(), self.deadline)
    }

    /// Members in `segment`.
    pub fn count(&self, segment: &Segment) -> Result<u64> {
        self.count_plan(&self.bind(segment, None)?)
    }

    /// The members of `segment` as a bitmap of row ids (for embedders that combine results).
    pub fn members(&self, segment: &Segment) -> Result<RoaringBitmap> {
        self.select(&self.bind(segment, None)?)
    }

    /// Members of `segment` with the requested attributes, in row-id order (the order the
    /// members were first seen), paged by `offset` / `limit`.
    pub fn find(&self, segment: &Segment, options: &FindOptions) -> Result<FindResult> {
        self.find_plan(&self.bind(segment, None)?, options)
    }

    /// [`View::find`] of a bound plan: only the page's chunks are built, the rest counted.
    pub(crate) fn find_plan(&self, plan: &Plan<'_>, options: &FindOptions) -> Result<FindResult> {
        // Unknown attributes are refused before the plan runs.
        for c in &options.columns {
            self.state.column_at(c, self.now)?;
        }
        let limit = options.limit.map_or(u64::MAX, |l| l as u64);
        let (page, total) =
            plan.page(self.universe(), self.deadline, options.offset as u64, limit)?;
        self.found(page, total, options)
    }

    /// The members `page` with the attributes `options` asks for, of `total` found.
    fn found(&self, page: Vec<u32>, total: u64, options: &FindOptions) -> Result<FindResult> {
        let mask = |c: &str| self.masks.as_ref().and_then(|(m, _)| m.get(c).copied());
        let key: &[u8] = self.masks.as_ref().map_or(&[], |(_, k)| k);
        // hidden fields are not read at all
        let shown: Vec<&String> = options
            .columns
            .iter()
            .filter(|c| mask(c) != Some(Mask::Hide))
            .collect();
        let attrs: Vec<_> = shown
            .iter()
            .map(|c| Ok((self.state.column_at(c, self.now)?, mask(c))))
            .collect::<Result<_>>()?;
        // column by column (each column's loop and mask chosen once), then row by row
        let mut values: Vec<_> = attrs
            .iter()
            .map(|(a, mask)| a.column.read_page(&page, *mask, key).into_iter())
            .collect();
        let rows = page
            .into_iter()
            .map(|row| FoundMember {
                member_id: self.state.members.member_id(row).to_string(),
                values: values.iter_mut().map(|v| v.next().flatten()).collect(),
            })
            .collect();
        let mut columns = vec!["member_id".to_string()];
        columns.extend(shown.into_iter().cloned());
        Ok(FindResult {
            columns,
            types: attrs
                .iter()
                .map(|(a, mask)| match mask {
                    None => a.column.data_type(),
                    Some(_) => crate::value::DataType::String,
                })
                .collect(),
            rows,
            total,
        })
    }

    /// A funnel's members per step (per bucket with `BY`): see [`Funnel`].
    pub fn funnel(&self, funnel: &Funnel) -> Result<FunnelReport> {
        let by = funnel.by.as_ref().map(crate::query::funnel_by_text);
        self.funnel_spanned(funnel, None, by)
    }

    /// The members of a funnel whose furthest step is `step` (from 1), with the
    /// attributes `options` asks for, paged like [`View::find`].
    pub fn find_funnel(
        &self,
        funnel: &Funnel,
        step: usize,
        options: &FindOptions,
    ) -> Result<FindResult> {
        self.find_funnel_spanned(funnel, step, options, None)
    }

    /// How a funnel walk runs: this view's threads and deadline.
    fn pace(&self) -> crate::sequence::funnel::Pace {
        crate::sequence::funnel::Pace {
            threads: self.threads.unwrap_or_else(plan::default_threads),
            deadline: self.deadline,
        }
    }

    /// The members with an entry into `funnel` (a first-step event in its range, within
    /// its `FOR` segment), and the funnel bound.
    fn funnel_entries<'v>(
        &'v self,
        funnel: &'v Funnel,
        entry: &'v Segment,
        spans: Option<&FunnelSpans>,
    ) -> Result<(BoundFunnel<'v>, RoaringBitmap)> {
        let at = |e: Error| match spans {
            Some(s) => e.at(s.whole),
            None => e,
        };
        let bound = plan::bind_funnel(
            &self.state,
            funnel,
            self.now,
            spans.map(|s| s.steps.as_slice()),
        )
        .map_err(at)?;
        let plan = self.bind(entry, spans.map(|s| s.entry.as_slice()))?;
        let entered = self.select(&plan)?;
        Ok((bound, entered))
    }

    /// [`View::funnel`] with a statement's spans and `BY` text.
    pub(crate) fn funnel_spanned(
        &self,
        funnel: &Funnel,
        spans: Option<&FunnelSpans>,
        by: Option<String>,
    ) -> Result<FunnelReport> {
        let entry = funnel.entry_segment();
        let (bound, entered) = self.funnel_entries(funnel, &entry, spans)?;
        bound.report(&entered, by, self.pace())
    }

    /// [`View::find_funnel`] with a statement's spans.
    pub(crate) fn find_funnel_spanned(
        &self,
        funnel: &Funnel,
        step: usize,
        options: &FindOptions,
        spans: Option<&FunnelSpans>,
    ) -> Result<FindResult> {
        funnel.check_step(step).map_err(|e| match spans {
            Some(s) => e.at(s.step),
            None => e,
        })?;
        for c in &options.columns {
            self.state.column_at(c, self.now)?;
        }
        let entry = funnel.entry_segment();
        let (bound, entered) = self.funnel_entries(funnel, &entry, spans)?;
        let members = bound.at_step(&entered, step, self.pace())?;
        let limit = options.limit.unwrap_or(usize::MAX);
        let page = members.iter().skip(options.offset).take(limit).collect();
        self.found(page, members.len(), options)
    }

    /// Counts of `segment` per value of `attribute`, NULL included, largest first (ties by
    /// value). With `top`, only the first `top` lines.
    pub fn breakdown(
        &self,
        segment: &Segment,
        attribute: &str,
        top: Option<usize>,
    ) -> Result<Vec<BreakdownRow>> {
        self.breakdown_of(&self.members(segment)?, attribute, top)
            .map(|(lines, _)| lines)
    }

    /// [`View::breakdown`] of the members `bitmap`, and their number.
    pub(crate) fn breakdown_of(
        &self,
        bitmap: &RoaringBitmap,
        attribute: &str,
        top: Option<usize>,
    ) -> Result<(Vec<BreakdownRow>, u64)> {
        let attr = self.state.column_at(attribute, self.now)?;
        let column = &attr.column;
        let mut lines: Vec<BreakdownRow> = Vec::new();
        // Members held mostly in array containers (a sparse answer: a scoped session's,
        // a small segment's) are counted by their values' codes, one pass over them:
        // intersecting each value's bitmap with arrays merges arrays value after value
        // (a BREAKDOWN BY city under a city scope took 2.3 times the admin's). Dense
        // answers intersect bitmap containers, cheaper than reading every member's code.
        let sparse = || {
            let stats = bitmap.statistics();
            stats.n_values_array_containers as u64 > stats.n_values_bitset_containers
        };
        if let Some(values) = &attr.index.values {
            let slots = if sparse() {
                tally_slots(column, bitmap.iter(), self.deadline)?
            } else {
                // Rows whose index entries wait are counted by their column values.
                let waiting = attr.index.pending().map(|rows| bitmap & &**rows);
                let waiting_slots = match &waiting {
                    Some(rows) => tally_slots(column, rows.iter(), self.deadline)?,
                    None => Vec::new(),
                };
                let empty = Bitmap::default();
                (0..values.len().max(waiting_slots.len()))
                    .map(|slot| {
                        let members = values.get(slot).unwrap_or(&empty);
                        let count = bitmap.intersection_len(members);
                        match &waiting {
                            Some(waiting) => {
                                count - waiting.intersection_len(members)
                                    + waiting_slots.get(slot).copied().unwrap_or(0)
                            }
                            None => count,
                        }
                    })
                    .collect()
            };
            for (slot, count) in slots.into_iter().enumerate() {
                if count == 0 {
                    continue;
                }
                let value = match &column.data {
                    ColumnData::Bool(_) => Value::Bool(slot == 1),
                    ColumnData::Str { dict, .. } => Value::Str(dict.get(slot as u32).to_string()),
                    _ => {
                        return Err(Error::Internal(
                            "value bitmaps on an ordered column".to_string(),
                        ));
                    }
                };
                lines.push(BreakdownRow {
                    value: Some(value),
                    count,
                    more: Vec::new(),
                });
            }
        } else {
            let mut counts: HashMap<u64, (u32, u64)> = HashMap::new();
            for (i, row) in bitmap.iter().enumerate() {
                if i % 65_536 == 65_535 {
                    check_deadline(self.deadline)?;
                }
                let r = row as usize;
                if !column.is_valid(r) {
                    continue;
                }
                counts.entry(column.group_key(r)).or_insert((row, 0)).1 += 1;
            }
            lines = counts
                .into_values()
                .map(|(row, count)| BreakdownRow {
                    value: column.get(row as usize),
                    count,
                    more: Vec::new(),
                })
                .collect();
        }
        let with_value: u64 = lines.iter().map(|l| l.count).sum();
        if bitmap.len() > with_value {
            lines.push(BreakdownRow {
                value: None,
                count: bitmap.len() - with_value,
                more: Vec::new(),
            });
        }
        Ok((ordered(lines, top), bitmap.len()))
    }
}

/// Members of `rows` (ascending) per value slot of `column` (its codes; bools 0 and 1).
fn tally_slots(
    column: &crate::column::Column,
    rows: impl Iterator<Item = u32>,
    deadline: Option<Instant>,
) -> Result<Vec<u64>> {
    if let ColumnData::Str { codes, dict } = &column.data {
        // A string column's codes read a chunk slice at a time (the rows of one roaring
        // container share one), the slots sized once.
        let mut slots: Vec<u64> = vec![0; dict.len().max(1)];
        let mut chunk: (usize, &[u32]) = (usize::MAX, &[]);
        for (i, row) in rows.enumerate() {
            if i % 65_536 == 65_535 {
                check_deadline(deadline)?;
            }
            let row = row as usize;
            if !column.is_valid(row) {
                continue;
            }
            let k = row >> crate::util::chunked::CHUNK_SHIFT;
            if chunk.0 != k {
                let start = k << crate::util::chunked::CHUNK_SHIFT;
                let end = (start + crate::util::chunked::CHUNK_LEN).min(codes.len());
                chunk = (k, codes.slices(start..end).next().unwrap_or(&[]));
            }
            let code = chunk.1[row & (crate::util::chunked::CHUNK_LEN - 1)] as usize;
            if let Some(n) = slots.get_mut(code) {
                *n += 1;
            }
        }
        return Ok(slots);
    }
    let mut slots: Vec<u64> = Vec::new();
    for (i, row) in rows.enumerate() {
        if i % 65_536 == 65_535 {
            check_deadline(deadline)?;
        }
        if let Some(slot) = slot_of(column, row as usize) {
            if slots.len() <= slot {
                slots.resize(slot + 1, 0);
            }
            slots[slot] += 1;
        }
    }
    Ok(slots)
}

/// Breakdown lines by count, largest first, ties by value (column by column) with NULL
/// last; the first `top`.
pub(super) fn ordered(mut lines: Vec<BreakdownRow>, top: Option<usize>) -> Vec<BreakdownRow> {
    lines.sort_by(|a, b| {
        b.count
            .cmp(&a.count)
            .then_with(|| cmp_values(&a.value, &b.value))
            .then_with(|| {
                a.more
                    .iter()
                    .zip(&b.more)
                    .map(|(x, y)| cmp_values(x, y))
                    .find(|o| o.is_ne())
                    .unwrap_or(std::cmp::Ordering::Equal)
            })
    });
    if let Some(top) = top {
        lines.truncate(top);
    }
    lines
}

/// Order of values in ties: by value, NULL last.
pub(crate) fn cmp_values(a: &Option<Value>, b: &Option<Value>) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    match (a, b) {
        (None, None) => Ordering::Equal,
        (None, _) => Ordering::Greater,
        (_, None) => Ordering::Less,
        (Some(x), Some(y)) => x.order(y).unwrap_or(Ordering::Equal),
    }
}
