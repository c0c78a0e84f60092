//! Sequences as SQL (DESIGN section 10): `DID a ... THEN [NOT] b ...` is an `ASOF JOIN` of
//! the first part's events with the second type's, each first event meeting the earliest
//! second event strictly after it (of the same member, with `MATCHING`, of the same
//! non-NULL value): some B in `(A.ts, A.ts + n]` exists exactly when that earliest one lies
//! there. `THEN NOT` keeps the first events whose window has closed and that meet none.

use super::literal::ident;
use super::segment::{Kind, Parts};
use crate::error::Result;
use crate::sequence::Sequence;

/// A span longer than this (about 126,000 years) bounds nothing: no time lies beyond it.
pub(super) const UNBOUNDED: i64 = 4_000_000_000_000_000_000;

impl Parts<'_> {
    /// The members for whom `sequence` holds.
    pub(super) fn sequence(&mut self, sequence: &Sequence, comment: String) -> Result<String> {
        let first = &sequence.first;
        let first =
            self.event_conditions(&first.event, first.window.as_ref(), first.filter.as_ref())?;
        let then = self.event_conditions(&sequence.then, None, sequence.then_filter.as_ref())?;
        let events = &self.tables.events;
        let now = self.now;
        let span = sequence.within.map(|(amount, unit)| {
            crate::segment::window_span(amount, unit)
                .filter(|&span| span <= UNBOUNDED)
                .unwrap_or(i64::MAX)
        });
        let (key, on_key, b_key) = match &sequence.matching {
            Some(p) => {
                let p = ident(p);
                (
                    format!(", {p} AS k"),
                    " AND a.k = b.k".to_string(),
                    format!(" AND {p} IS NOT NULL"),
                )
            }
            None => Default::default(),
        };
        let a = format!(
            "SELECT member_row, toUnixTimestamp64Micro(ts) AS t{key} FROM {events} WHERE {first}"
        );
        let b = format!(
            "SELECT member_row, toUnixTimestamp64Micro(ts) AS t, 1 AS hit{key} FROM {events} \
             WHERE {then}{b_key}"
        );
        let join = format!(
            "({a}) AS a\n{} ({b}) AS b ON a.member_row = b.member_row{on_key} AND b.t > a.t",
            if sequence.negated {
                "ASOF LEFT JOIN"
            } else {
                "ASOF JOIN"
            }
        );
        let condition = match (sequence.negated, span) {
            (false, None) => String::new(),
            (false, Some(i64::MAX)) => String::new(),
            (false, Some(n)) => format!("\nWHERE b.t <= a.t + {n}"),
            // the window has not closed by now, nor will it in any time held
            (true, Some(i64::MAX)) => "\nWHERE 0".to_string(),
            (true, Some(n)) => {
                format!("\nWHERE a.t + {n} <= {now} AND (b.hit = 0 OR b.t > a.t + {n})")
            }
            (true, None) => format!("\nWHERE a.t <= {now} AND (b.hit = 0 OR b.t > {now})"),
        };
        let sql = format!("SELECT a.member_row AS member_row FROM {join}{condition}");
        let agg = "groupBitmapState(member_row)".to_string();
        self.add_over(Kind::Relation, "then", comment, sql, agg)
    }
}
