//! The whole in-memory state of a database: members, attributes, tags, events, groups and
//! traits; the one place it changes (`apply.rs`), what changes touched (`touched.rs`), and
//! the groups and traits brought up to date from that, as writes arrive (`refresh.rs`) and
//! as the clock moves (`clock.rs`), each change of a group's members published on its
//! stream.

pub(crate) mod apply;
mod clock;
pub(crate) mod erase;
pub(crate) mod identity;
mod refresh;
mod touched;

pub(crate) use touched::Touched;

use roaring::RoaringBitmap;

use crate::attributes::AttributeStore;
use crate::bitmap::Chunks;
use crate::error::Result;
use crate::events::EventStore;
use crate::groups::GroupStore;
use crate::members::MemberDict;
use crate::plan::{self, Universe};
use crate::value::DAY_MICROS;

/// Everything a query reads. Invariant: every bitmap holds only live members, and every
/// attribute column has one row per assigned member id.
#[derive(Clone, Debug, Default)]
pub(crate) struct State {
    pub(crate) members: MemberDict,
    pub(crate) attrs: AttributeStore,
    pub(crate) tags: crate::tags::TagStore,
    pub(crate) events: EventStore,
    pub(crate) groups: GroupStore,
    /// Every load applied, oldest first (`SHOW LOADS`); shared between snapshots.
    pub(crate) loads: std::sync::Arc<Vec<crate::ingest::LoadInfo>>,
    /// The engine's clock, in microseconds since the epoch: the instant the groups are
    /// current at, and the *now* of the last change applied. It only moves forward.
    pub(crate) clock: i64,
    /// The consumer groups of the change streams.
    pub(crate) consumers: crate::groups::consumers::ConsumerGroups,
    /// The computed traits.
    pub(crate) traits: crate::traits::TraitStore,
    /// Identifier types, the observation log and the profiles it gives (DESIGN section
    /// 11); shared copy-on-write.
    pub(crate) identity: std::sync::Arc<crate::identity::IdentityStore>,
}

/// What a name compared like an attribute refers to.
#[derive(Clone, Copy)]
pub(crate) enum Named<'a> {
    Attribute(&'a crate::attributes::Attribute),
    Trait(&'a crate::traits::Trait),
}

impl State {
    /// The attribute or trait `name`, or an error naming the closest of both.
    pub(crate) fn require_named(&self, name: &str) -> Result<Named<'_>> {
        if let Some(a) = self.attrs.get(name) {
            return Ok(Named::Attribute(a));
        }
        if let Some(t) = self.traits.get(name) {
            return Ok(Named::Trait(t));
        }
        let known = self.attrs.names().chain(self.traits.names());
        Err(crate::error::Error::unknown("attribute", name, known))
    }

    /// Groups and traits in the order they were defined (each reads only earlier ones).
    pub(crate) fn derived_order(&self) -> Vec<crate::traits::Derived> {
        use crate::traits::Derived;
        let groups = &self.groups.groups;
        let traits = &self.traits.traits;
        let mut out = Vec::with_capacity(groups.len() + traits.len());
        let (mut g, mut t) = (0, 0);
        while g < groups.len() || t < traits.len() {
            let take_group =
                t >= traits.len() || (g < groups.len() && groups[g].seq < traits[t].seq);
            if take_group {
                out.push(Derived::Group(g));
                g += 1;
            } else {
                out.push(Derived::Trait(t));
                t += 1;
            }
        }
        out
    }

    /// The place in the definition order the next group or trait gets: after every one.
    pub(crate) fn next_seq(&self) -> u64 {
        let groups = self.groups.groups.iter().map(|g| g.seq);
        let traits = self.traits.traits.iter().map(|t| t.seq);
        groups.chain(traits).max().map_or(0, |s| s + 1)
    }

    /// The next instant a group or a trait changes without new data (`i64::MAX`: none).
    pub(crate) fn next_time_change(&self) -> i64 {
        let groups = self.groups.groups.iter().filter(|g| g.time_dependent);
        let traits = self.traits.traits.iter().filter(|t| t.time_dependent);
        groups
            .map(|g| g.next_change)
            .chain(traits.map(|t| t.next_change))
            .min()
            .unwrap_or(i64::MAX)
    }

    /// Recomputes when group `i`, which moves with time, next changes without new data.
    fn note_next_change(&mut self, i: usize, touched: Option<&Touched>) {
        let group = &self.groups.groups[i];
        let next = self.next_change_of(&group.windows, group.next_change, touched);
        self.groups.groups[i].next_change = next;
    }

    /// The next time-driven change of what reads `windows`, after a write that touched
    /// `touched`: with only events added one by one and no date attribute read, the
    /// earlier of `current` and their own instants (adding events only adds instants);
    /// else found again from all the events.
    pub(super) fn next_change_of(
        &self,
        windows: &[crate::groups::time::WindowRead],
        current: i64,
        touched: Option<&Touched>,
    ) -> i64 {
        use crate::groups::time::{WindowRead, next_boundary, next_instant};
        let times = touched.and_then(|t| {
            let attributes = windows.iter().any(
                |w| matches!(w, WindowRead::Attribute { name, .. } if t.attributes.contains(name)),
            );
            t.event_times
                .as_ref()
                .filter(|_| !attributes && current != i64::MAX)
        });
        match times {
            Some(times) => times.iter().fold(current, |next, (event, ts)| {
                windows
                    .iter()
                    .filter(|w| w.event() == Some(event.as_str()))
                    .map(|w| next_instant(w, *ts, self.clock))
                    .fold(next, i64::min)
            }),
            None => next_boundary(self, windows, self.clock),
        }
    }

    /// Evaluates group `i` at `now` over `members`.
    fn evaluate_group(&self, i: usize, now: i64, members: &RoaringBitmap) -> Result<RoaringBitmap> {
        if members.is_empty() {
            return Ok(RoaringBitmap::new());
        }
        let plan = plan::bind(self, &self.groups.groups[i].definition, now, None)?;
        let chunks = Chunks::from_roaring(members);
        plan.bitmap(Universe::of(&chunks), None)
    }

    /// Drops the entries each group keeps no longer (older than its retention at the
    /// clock).
    pub(crate) fn trim_streams(&mut self) {
        let clock = self.clock;
        for group in &mut self.groups.groups {
            let keep = i64::from(group.keep_days).saturating_mul(DAY_MICROS);
            group.stream.trim_before(clock.saturating_sub(keep));
        }
        self.consumers.forget_trimmed(&self.groups);
    }
}
