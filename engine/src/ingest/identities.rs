//! `memberdb load --identities F`: each row one observation (DESIGN section 11): an
//! optional `member_id`, then one column per declared identifier type; empty values are
//! skipped, blocked ones ignored and counted.

use arrow_array::{Array, RecordBatch, StringArray};
use arrow_schema::DataType as ArrowType;

use super::IngestReport;
use crate::error::{Error, Result};
use crate::identity::graph::TypeId;
use crate::identity::log::ObsKind;
use crate::state::{State, Touched};

/// One batch of an identities file: the member ids (if the file has them) and each
/// type's column as text.
struct IdentityBatch {
    members: Option<StringArray>,
    columns: Vec<(TypeId, StringArray)>,
}

/// The observations of an identities file, checked against the declared types.
pub(crate) struct StagedIdentities {
    batches: Vec<IdentityBatch>,
}

fn text_column(array: &dyn Array, source: &str, column: &str) -> Result<StringArray> {
    let cast = arrow_cast::cast(array, &ArrowType::Utf8).map_err(|e| {
        Error::bad_input(
            source,
            None,
            Some(column),
            format!("cannot be read as text: {e}"),
        )
    })?;
    Ok(cast
        .as_any()
        .downcast_ref::<StringArray>()
        .expect("cast to Utf8")
        .clone())
}

impl StagedIdentities {
    pub(crate) fn stage(state: &State, batches: &[RecordBatch], source: &str) -> Result<Self> {
        let mut staged = StagedIdentities {
            batches: Vec::new(),
        };
        for batch in batches {
            let mut members = None;
            let mut columns = Vec::new();
            for (field, array) in batch.schema().fields().iter().zip(batch.columns()) {
                let name = field.name();
                if name == "member_id" {
                    members = Some(text_column(array, source, name)?);
                    continue;
                }
                let t = state.identity.require_type(name).map_err(|e| {
                    Error::bad_input(
                        source,
                        None,
                        Some(name),
                        format!(
                            "{e}: an identities file has an optional member_id column, then one \
                             column per identifier type (DEFINE IDENTIFIER declares them)"
                        ),
                    )
                })?;
                columns.push((t, text_column(array, source, name)?));
            }
            if columns.is_empty() {
                return Err(Error::bad_input(
                    source,
                    None,
                    None,
                    "an identities file needs a column per identifier type (its name), besides \
                     member_id",
                ));
            }
            staged.batches.push(IdentityBatch { members, columns });
        }
        Ok(staged)
    }

    /// Observes every row in order.
    pub(crate) fn apply(self, state: &mut State, touched: &mut Touched) -> Result<IngestReport> {
        let mut report = IngestReport::default();
        let mut ignored = 0u64;
        for IdentityBatch { members, columns } in self.batches {
            for row in 0..columns[0].1.len() {
                report.rows += 1;
                let mut ids: Vec<(TypeId, &str)> = Vec::new();
                for (t, column) in &columns {
                    if column.is_null(row) || column.value(row).trim().is_empty() {
                        continue;
                    }
                    let value = column.value(row);
                    if state.identity.ignored(*t, value) {
                        ignored += 1;
                    } else {
                        ids.push((*t, value));
                    }
                }
                let member = match &members {
                    Some(m) if m.is_valid(row) && !m.value(row).is_empty() => {
                        let id = m.value(row);
                        Some(match state.members.own_row(id) {
                            Some(r) => r,
                            None => {
                                let (r, _) = state.members.resolve_or_create(id)?;
                                report.new_members += 1;
                                touched.members(&[r], true);
                                state.attrs.grow(state.members.len());
                                r
                            }
                        })
                    }
                    _ => None,
                };
                if ids.is_empty() {
                    continue;
                }
                let members: Vec<u32> = member.into_iter().collect();
                let observed = crate::state::identity::observe(
                    state,
                    ObsKind::Link,
                    &members,
                    &ids,
                    0,
                    touched,
                )?;
                // A profile started by an observation is a new member (`openid:o...`).
                report.new_members += u64::from(observed.step.created);
            }
        }
        if ignored > 0 {
            report
                .warnings
                .push(format!("{ignored} blocked values were ignored"));
        }
        Ok(report)
    }
}
