//! Time windows of `DID`, resolved against *now* into a half-open microsecond range.

use super::{TimeUnit, Window};
use crate::error::{Error, Result};
use crate::value::{DAY_MICROS, HOUR_MICROS, Value, parse_timestamp};

/// The microseconds of `IN LAST amount unit`, if they fit.
pub(crate) fn span(amount: u64, unit: TimeUnit) -> Option<i64> {
    let unit_micros = match unit {
        TimeUnit::Hours => HOUR_MICROS,
        TimeUnit::Days => DAY_MICROS,
        TimeUnit::Weeks => 7 * DAY_MICROS,
    };
    i64::try_from(amount).ok()?.checked_mul(unit_micros)
}

/// What a `WITHIN` bounds: the second event of a sequence, or a funnel's next steps.
#[derive(Clone, Copy)]
pub(crate) enum Within {
    Event,
    Step,
}

/// The microseconds of `WITHIN amount unit` (a sequence's or a funnel's): 0 holds nothing,
/// each next event being strictly later.
pub(crate) fn within(amount: u64, unit: TimeUnit, of: Within) -> Result<i64> {
    match span(amount, unit) {
        Some(0) => Err(Error::InvalidSegment(match of {
            Within::Event => "WITHIN 0 holds no event: a second event is strictly later than \
                              the first; write WITHIN 1 HOURS or more"
                .into(),
            Within::Step => "WITHIN 0 holds no step: each step is strictly later than the one \
                             before; write WITHIN 1 HOURS or more"
                .into(),
        })),
        Some(w) => Ok(w),
        None => Err(Error::InvalidSegment(format!(
            "WITHIN {amount} {unit:?} is too long"
        ))),
    }
}

/// `[lo, hi)` in microseconds, the events a window selects.
pub(crate) fn resolve(window: &Window, now: i64) -> Result<(i64, i64)> {
    match window {
        Window::Last { amount, unit } => {
            let span = span(*amount, *unit).ok_or_else(|| {
                Error::InvalidSegment(format!("window of {amount} {unit:?} is too long"))
            })?;
            // now - span < ts <= now
            Ok((
                now.saturating_sub(span).saturating_add(1),
                now.saturating_add(1),
            ))
        }
        Window::Range { since, before } => {
            let lo = since
                .as_ref()
                .map(|v| instant(v, "SINCE"))
                .transpose()?
                .unwrap_or(i64::MIN);
            let hi = before
                .as_ref()
                .map(|v| instant(v, "BEFORE"))
                .transpose()?
                .unwrap_or(i64::MAX);
            Ok((lo, hi))
        }
    }
}

fn instant(value: &Value, clause: &str) -> Result<i64> {
    match value {
        Value::Timestamp(t) => Ok(*t),
        Value::Date(d) => Ok(i64::from(*d) * DAY_MICROS),
        Value::Str(s) => parse_timestamp(s).ok_or_else(|| {
            Error::InvalidSegment(format!(
                "{clause} needs a date or timestamp such as '2026-11-01' or \
                 '2026-11-01T08:00:00Z', not '{s}'"
            ))
        }),
        other => Err(Error::InvalidSegment(format!(
            "{clause} needs a date or timestamp string, not {other}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_days_excludes_the_start_and_includes_now() {
        let (lo, hi) = resolve(
            &Window::Last {
                amount: 1,
                unit: TimeUnit::Days,
            },
            DAY_MICROS * 10,
        )
        .unwrap();
        assert_eq!((lo, hi), (DAY_MICROS * 9 + 1, DAY_MICROS * 10 + 1));
    }

    #[test]
    fn since_before_are_inclusive_exclusive() {
        let w = Window::Range {
            since: Some("1970-01-02".into()),
            before: Some("1970-01-03".into()),
        };
        assert_eq!(resolve(&w, 0).unwrap(), (DAY_MICROS, 2 * DAY_MICROS));
        let bad = Window::Range {
            since: Some("soon".into()),
            before: None,
        };
        assert!(resolve(&bad, 0).is_err());
    }
}
