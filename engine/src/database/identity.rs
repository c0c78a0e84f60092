//! Identities through the crate (DESIGN section 11): declaring identifier types and merge
//! rules, observations (`ID.LINK`), lookups, unlink, merge and unmerge, history.

use super::Database;
use crate::error::{Error, Result};
use crate::identity::{HistoryLine, IdentifierDef, IdentityReport, MergeRule};
use crate::wal::change::{Change, Outcome};

/// One identifier type, as `SHOW IDENTIFIERS` lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdentifierInfo {
    /// Its declaration.
    pub def: IdentifierDef,
    /// Values held by a profile.
    pub values: u64,
    /// Profiles holding at least one value.
    pub profiles: u64,
}

fn report(outcome: Outcome) -> IdentityReport {
    match outcome {
        Outcome::Identity(r) => r,
        _ => IdentityReport::default(),
    }
}

impl Database {
    /// `DEFINE IDENTIFIER`: declares an identifier type. Members' values of the attribute of
    /// the same name, if there is one, are observed in row order, and so are later writes
    /// of it. Declaring a type again with other rules is refused.
    pub fn define_identifier(&self, def: IdentifierDef) -> Result<()> {
        self.snapshot().identity.check_declaration(&def)?;
        self.write(Change::DefineIdentifier { def }).map(drop)
    }

    /// `DEFINE ATTRIBUTE name MERGE rule`: how the attribute's values combine when profiles
    /// merge.
    pub fn set_merge_rule(&self, attribute: &str, rule: MergeRule) -> Result<()> {
        self.write(Change::SetMergeRule {
            attribute: attribute.to_string(),
            rule,
        })
        .map(drop)
    }

    /// `ID.LINK`: identifiers seen together, for `member_id` (`None`: find or create).
    pub fn link(&self, member_id: Option<&str>, ids: &[(&str, &str)]) -> Result<IdentityReport> {
        {
            let state = self.snapshot();
            for (t, _) in ids {
                state.identity.require_type(t)?;
            }
        }
        self.write(Change::Link {
            member_id: member_id.map(str::to_string),
            ids: ids
                .iter()
                .map(|(t, v)| (t.to_string(), v.to_string()))
                .collect(),
        })
        .map(report)
    }

    /// `ID.LOOKUP`: the member id of the profile holding `value` of type `id_type`.
    pub fn lookup_identifier(&self, id_type: &str, value: &str) -> Result<Option<String>> {
        let state = self.snapshot();
        let t = state.identity.require_type(id_type)?;
        Ok(state
            .identity
            .lookup(t, value)
            .map(|row| state.members.member_id(row).to_string()))
    }

    /// `ID.UNLINK`: takes an identifier from a member's profile.
    pub fn unlink(&self, member_id: &str, id_type: &str, value: &str) -> Result<IdentityReport> {
        self.write(Change::Unlink {
            member_id: member_id.to_string(),
            id_type: id_type.to_string(),
            value: value.to_string(),
        })
        .map(report)
    }

    /// `MEMBER.MERGE a b`: one profile of two, kept under the member id created first;
    /// refused when the union would break a `LIMIT`.
    pub fn merge_members(&self, a: &str, b: &str) -> Result<IdentityReport> {
        self.write(Change::MergeMembers {
            a: a.to_string(),
            b: b.to_string(),
        })
        .map(report)
    }

    /// `MEMBER.UNMERGE member observation`: as if the observation had never been made.
    pub fn unmerge(&self, member_id: &str, observation: u32) -> Result<IdentityReport> {
        self.write(Change::Unmerge {
            member_id: member_id.to_string(),
            observation,
        })
        .map(report)
    }

    /// `MEMBER.HISTORY`: the observations that made a member's profile, oldest first.
    pub fn member_history(&self, member_id: &str) -> Result<Vec<HistoryLine>> {
        let state = self.snapshot();
        let row = state
            .members
            .lookup(member_id)
            .ok_or_else(|| Error::InvalidSegment(format!("unknown member '{member_id}'")))?;
        Ok(state
            .identity
            .history(row, &|r| state.members.member_id(r).to_string()))
    }

    /// `SHOW IDENTIFIERS`.
    pub fn identifiers(&self) -> Vec<IdentifierInfo> {
        Self::identifiers_of(&self.snapshot())
    }

    pub(crate) fn identifiers_of(state: &crate::state::State) -> Vec<IdentifierInfo> {
        let store = &state.identity;
        store
            .defs()
            .iter()
            .enumerate()
            .map(|(t, def)| {
                let (mut values, mut profiles) = (0, 0);
                for (_, n) in store.counts_of_type(t as u16) {
                    values += u64::from(n);
                    profiles += 1;
                }
                IdentifierInfo {
                    def: def.clone(),
                    values,
                    profiles,
                }
            })
            .collect()
    }
}
