//! Discovery: what an event type's properties hold (`SHOW EVENT`), an attribute's top values
//! (`SHOW ATTRIBUTE`), members per value of an event property (`BREAKDOWN ... BY p OF e`),
//! and hints for string values no member has (`city = 'shanghai'`: did you mean
//! 'Shanghai'?).

use hashbrown::HashMap;
use roaring::RoaringBitmap;

use super::View;
use super::view::ordered;
use crate::column::Column;
use crate::error::{Error, Result};
use crate::results::BreakdownRow;
use crate::segment::Segment;
use crate::value::{DataType, Value};

/// Top values `SHOW EVENT` lists per property.
const TOP_VALUES: usize = 5;

/// Dictionaries searched for a typo (a case-insensitive match is looked for in any).
const TYPO_SEARCH_VALUES: usize = 10_000;

/// One property of an event type, as `SHOW EVENT` lists it.
#[derive(Clone, Debug, PartialEq)]
pub struct PropertyInfo {
    /// The property.
    pub name: String,
    /// Its type.
    pub data_type: DataType,
    /// Events of the type with a value.
    pub non_null: u64,
    /// Events of the type without one.
    pub nulls: u64,
    /// The most frequent values with their event counts, most frequent first.
    pub top: Vec<(Value, u64)>,
}

impl View<'_> {
    /// The properties of event type `event`: type, NULL counts and top values.
    pub fn event_properties(&self, event: &str) -> Result<Vec<PropertyInfo>> {
        let state = self.state();
        let partition = state.events.require(event)?;
        let events = partition.len() as u64;
        let mut out = Vec::with_capacity(partition.props.len());
        for (name, column) in &partition.props {
            let mut counts: HashMap<u64, (usize, u64)> = HashMap::new();
            let mut non_null = 0;
            for i in 0..column.len() {
                if column.is_valid(i) {
                    non_null += 1;
                    counts.entry(column.group_key(i)).or_insert((i, 0)).1 += 1;
                }
            }
            let lines = counts
                .into_values()
                .map(|(i, count)| BreakdownRow {
                    value: column.get(i),
                    count,
                    more: Vec::new(),
                })
                .collect();
            out.push(PropertyInfo {
                name: name.clone(),
                data_type: column.data_type(),
                non_null,
                nulls: events - non_null,
                top: ordered(lines, Some(TOP_VALUES))
                    .into_iter()
                    .filter_map(|l| Some((l.value?, l.count)))
                    .collect(),
            });
        }
        Ok(out)
    }

    /// Members of `segment` per value of property `property` among their `event` events:
    /// a member counts once under each value it has, so the lines need not add up to the
    /// segment; the NULL line holds members with no such event or only NULL values.
    pub fn breakdown_property(
        &self,
        segment: &Segment,
        property: &str,
        event: &str,
        top: Option<usize>,
    ) -> Result<Vec<BreakdownRow>> {
        self.breakdown_property_of(&self.members(segment)?, property, event, top)
            .map(|(lines, _)| lines)
    }

    /// [`View::breakdown_property`] of the members `segment`, and their number.
    pub(crate) fn breakdown_property_of(
        &self,
        segment: &RoaringBitmap,
        property: &str,
        event: &str,
        top: Option<usize>,
    ) -> Result<(Vec<BreakdownRow>, u64)> {
        let state = self.state();
        let partition = state.events.require(event)?;
        let column = partition.props.get(property).ok_or_else(|| {
            Error::unknown(
                "event property",
                property,
                partition.props.keys().map(String::as_str),
            )
        })?;
        let mut per_value: HashMap<u64, (usize, RoaringBitmap)> = HashMap::new();
        for i in 0..partition.len() {
            let member = partition.members[i];
            if column.is_valid(i) && segment.contains(member) {
                per_value
                    .entry(column.group_key(i))
                    .or_insert_with(|| (i, RoaringBitmap::new()))
                    .1
                    .insert(member);
            }
        }
        let mut with_value = RoaringBitmap::new();
        let mut lines: Vec<BreakdownRow> = per_value
            .into_values()
            .map(|(i, members)| {
                with_value |= &members;
                BreakdownRow {
                    value: column.get(i),
                    count: members.len(),
                    more: Vec::new(),
                }
            })
            .collect();
        let without = segment.len() - segment.intersection_len(&with_value);
        if without > 0 {
            lines.push(BreakdownRow {
                value: None,
                count: without,
                more: Vec::new(),
            });
        }
        Ok((ordered(lines, top), segment.len()))
    }

    /// For a string `value` attribute `attribute` has on no member: the values it does have
    /// that differ only in case or by a typo, best first (empty when the value exists, the
    /// attribute is not text, or nothing is close).
    pub fn value_hint(&self, attribute: &str, value: &str) -> Vec<String> {
        match self.state().attrs.get(attribute) {
            Some(attr) => close_values(&attr.column, value),
            None => Vec::new(),
        }
    }

    /// [`View::value_hint`] for property `property` of event type `event`.
    pub fn property_value_hint(&self, event: &str, property: &str, value: &str) -> Vec<String> {
        let state = self.state();
        let column = state
            .events
            .types
            .get(event)
            .and_then(|p| p.props.get(property));
        column.map_or_else(Vec::new, |c| close_values(c, value))
    }
}

fn close_values(column: &Column, value: &str) -> Vec<String> {
    let Some(dict) = column.dict() else {
        return Vec::new();
    };
    if dict.lookup(value).is_some() {
        return Vec::new();
    }
    let folded = value.to_lowercase();
    // Only a value with letters can differ by case: a phone or a code is not looked for
    // among a million others.
    let cased = folded != value.to_uppercase();
    let same_but_case: Vec<String> = match cased {
        true => dict
            .iter()
            .filter(|v| v.len() == value.len() && v.to_lowercase() == folded)
            .map(str::to_string)
            .collect(),
        false => Vec::new(),
    };
    if !same_but_case.is_empty() || dict.len() > TYPO_SEARCH_VALUES {
        return same_but_case;
    }
    // A typo: at most one edit per four characters (one for short values), case aside.
    let allowed = (value.chars().count() / 4).max(1);
    let mut close: Vec<(usize, &str)> = dict
        .iter()
        .filter_map(|v| {
            let d = strsim::damerau_levenshtein(&folded, &v.to_lowercase());
            (d <= allowed).then_some((d, v))
        })
        .collect();
    close.sort_unstable();
    close
        .into_iter()
        .take(3)
        .map(|(_, v)| v.to_string())
        .collect()
}

impl View<'_> {
    /// Values of text attribute `attribute` starting with `prefix` (any case), in order, at
    /// most `limit`: what the REPL completes after `city = '`.
    pub fn string_values(&self, attribute: &str, prefix: &str, limit: usize) -> Vec<String> {
        let Some(dict) = self
            .state()
            .attrs
            .get(attribute)
            .and_then(|a| a.column.dict())
        else {
            return Vec::new();
        };
        let prefix = prefix.to_lowercase();
        let mut values: Vec<String> = dict
            .iter()
            .filter(|v| v.to_lowercase().starts_with(&prefix))
            .map(str::to_string)
            .collect();
        values.sort_unstable();
        values.truncate(limit);
        values
    }
}
