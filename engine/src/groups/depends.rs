//! The dependency index: from each tag, attribute (or trait), event type and group to the
//! groups (or traits: one index each) whose definitions read it, so a write finds what it
//! may change without looking at every definition (`State::refresh_derived`).

use hashbrown::HashMap;

use super::Group;
use crate::segment::Segment;

/// The groups (by index in definition order) that read each name.
#[derive(Clone, Debug, Default)]
pub(crate) struct Dependents {
    pub(crate) tags: HashMap<String, Vec<usize>>,
    pub(crate) attributes: HashMap<String, Vec<usize>>,
    pub(crate) events: HashMap<String, Vec<usize>>,
    pub(crate) groups: HashMap<String, Vec<usize>>,
    /// Groups that move with time, by the event types of the windows they read (through
    /// the groups they refer to too): new events of those types can move their next change.
    pub(crate) window_events: HashMap<String, Vec<usize>>,
    /// The same by the date and time attributes their `DAYS SINCE` reads.
    pub(crate) window_attributes: HashMap<String, Vec<usize>>,
}

impl Dependents {
    /// The index of `groups`.
    pub(crate) fn of(groups: &[Group]) -> Self {
        Self::build(groups.iter().map(|g| {
            let mut reads = Reads::default();
            reads.of(&g.definition);
            (reads, g.windows.as_slice())
        }))
    }

    /// The index of `traits`.
    pub(crate) fn of_traits(traits: &[crate::traits::Trait]) -> Self {
        Self::build(traits.iter().map(|t| {
            let mut reads = Reads::default();
            if let Some(v) = t.definition.value() {
                reads.value(v);
            }
            for s in t.definition.segments() {
                reads.of(s);
            }
            (reads, t.windows.as_slice())
        }))
    }

    fn build<'a>(items: impl Iterator<Item = (Reads<'a>, &'a [super::time::WindowRead])>) -> Self {
        let mut index = Dependents::default();
        for (i, (reads, windows)) in items.enumerate() {
            let add = |map: &mut HashMap<String, Vec<usize>>, names: Vec<&str>| {
                for name in names {
                    let users = map.entry(name.to_string()).or_default();
                    if users.last() != Some(&i) {
                        users.push(i);
                    }
                }
            };
            add(&mut index.tags, reads.tags);
            add(&mut index.attributes, reads.attributes);
            add(&mut index.events, reads.events);
            add(&mut index.groups, reads.groups);
            add(
                &mut index.window_events,
                windows.iter().filter_map(|w| w.event()).collect(),
            );
            add(
                &mut index.window_attributes,
                windows
                    .iter()
                    .filter_map(|w| match w {
                        super::time::WindowRead::Attribute { name, .. } => Some(name.as_str()),
                        _ => None,
                    })
                    .collect(),
            );
        }
        index
    }
}

/// The names a definition reads.
#[derive(Default)]
struct Reads<'a> {
    tags: Vec<&'a str>,
    attributes: Vec<&'a str>,
    events: Vec<&'a str>,
    groups: Vec<&'a str>,
}

impl<'a> Reads<'a> {
    fn value(&mut self, value: &'a crate::computed::ValueExpr) {
        self.events
            .extend(value.aggregates().iter().map(|a| a.event.as_str()));
        self.attributes.extend(value.attributes());
    }

    fn of(&mut self, segment: &'a Segment) {
        match segment {
            Segment::All => {}
            Segment::Tag(t) => self.tags.push(t),
            Segment::InGroup(g) => self.groups.push(g),
            Segment::Attr { name, .. } => self.attributes.push(name),
            Segment::Did(did) => self.events.push(&did.event),
            Segment::Sequence(s) => {
                self.events.push(&s.first.event);
                self.events.push(&s.then);
            }
            Segment::Value { value, .. } => self.value(value),
            // Identifier types are read like attributes of their name: the identity
            // changes note them touched.
            Segment::Identifiers { id_type, .. } => self.attributes.push(id_type),
            Segment::And(children) | Segment::Or(children) => {
                children.iter().for_each(|c| self.of(c))
            }
            Segment::Not(inner) => self.of(inner),
        }
    }
}
