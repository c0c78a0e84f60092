//! `COUNT | BREAKDOWN <segment> OVERLAP 'pool.parquet'` (DESIGN section 12): the statement
//! runs over the members whose key is in the pool, and its counts come back as
//! [`SharedCount`]s, each under the minimum group size suppressed. FIND and EXPORT refuse
//! it: an overlap never yields a member.

use memberdb_query::ast::{Literal, LiteralKind, Statement, StatementKind};

use super::{Output, RunOptions};
use crate::database::View;
use crate::error::{Error, Result};
use crate::share::{Pool, ShareOptions, SharedCount};

/// `view` cut to the members of `pool`, with the share options it was read under.
pub(super) fn overlap_view<'v>(
    view: View<'v>,
    statement: &Statement,
    pool: &Literal,
    options: &RunOptions,
    access: Option<&crate::access::Access>,
) -> Result<(View<'v>, ShareOptions)> {
    match statement.kind {
        StatementKind::Count(_) | StatementKind::Breakdown { .. } => {}
        StatementKind::Find { .. } | StatementKind::Export { .. } => {
            return Err(Error::NoPermission(
                "OVERLAP gives counts only (COUNT, BREAKDOWN): FIND and EXPORT of an overlap \
                 would show the other party's members"
                    .to_string(),
            ));
        }
        _ => {
            return Err(Error::InvalidSegment(
                "OVERLAP follows the segment of COUNT or BREAKDOWN".to_string(),
            ));
        }
    }
    let share = options.share.clone().ok_or_else(|| {
        Error::InvalidSegment(
            "OVERLAP needs the secret shared with the pool's owner: --secret-file with \
             `memberdb query`, or [share] secret_file in the server's config"
                .to_string(),
        )
    })?;
    let LiteralKind::Str(path) = &pool.kind else {
        return Err(Error::InvalidSegment(
            "OVERLAP needs a file name".to_string(),
        ));
    };
    let pool = Pool::read(std::path::Path::new(path))?;
    // Counting by a masked key would probe its values (a pool of one chosen value).
    if access.is_some_and(|a| a.mask_of(&pool.key).is_some()) {
        return Err(Error::NoPermission(format!(
            "the pool is keyed by '{}', which is masked for this user: an overlap on it is              refused like a comparison",
            pool.key
        )));
    }
    let members = pool.members(view.state(), &share.secret)?;
    Ok((view.within(&members), share))
}

/// A COUNT's or BREAKDOWN's output as clean-room counts.
pub(super) fn overlap_output(output: Output, min: u64) -> Output {
    match output {
        Output::Count(n) => Output::Overlap {
            columns: Vec::new(),
            total: SharedCount::of(n, min),
            lines: Vec::new(),
        },
        Output::Breakdown {
            columns,
            total,
            lines,
            ..
        } => Output::Overlap {
            columns,
            total: SharedCount::of(total, min),
            lines: lines
                .into_iter()
                .map(|line| {
                    let mut values = vec![line.value];
                    values.extend(line.more);
                    (values, SharedCount::of(line.count, min))
                })
                .collect(),
        },
        other => other,
    }
}
