//! Identities end to end through the crate (DESIGN section 11): profiles merged by shared
//! identifiers are one member for segments and groups, aliases are accepted, limits and
//! blocked values hold, and an unmerge gives each member id its own data back.

use memberdb::{
    ChangeCause, ChangeOp, Database, EntryId, IdentifierDef, MergeRule, Segment, Timestamp, Value,
};

fn def(name: &str, limit: u32, priority: u32, blocked: &[&str]) -> IdentifierDef {
    IdentifierDef {
        name: name.into(),
        limit,
        priority,
        blocked: blocked.iter().map(|s| s.to_string()).collect(),
    }
}

fn ts(text: &str) -> Timestamp {
    Timestamp::parse(text).unwrap()
}

/// A fan of an official account (an OpenID profile) claims a coupon; the same person as a
/// member with a phone redeems it. Linked by the UnionID, they are one member.
fn coupon_db() -> Database {
    coupon_db_in(Database::in_memory())
}

fn coupon_db_in(db: Database) -> Database {
    db.define_identifier(def("unionid", 1, 1, &[])).unwrap();
    db.define_identifier(def("phone", 1, 2, &["13800000000"]))
        .unwrap();
    db.define_identifier(def("openid", 20, 4, &[])).unwrap();
    db.upsert_member(
        "M1",
        &[
            ("city", Some(Value::from("Shanghai"))),
            ("points", Some(Value::Int(100))),
        ],
    )
    .unwrap();
    db.link(Some("M1"), &[("phone", "13911112222")]).unwrap();
    let fan = db.link(None, &[("openid", "oA1")]).unwrap();
    assert_eq!(fan.member_id.as_deref(), Some("openid:oA1"));
    assert!(fan.created);
    db.upsert_member(
        "openid:oA1",
        &[
            ("city", Some(Value::from("Hangzhou"))),
            ("points", Some(Value::Int(5))),
        ],
    )
    .unwrap();
    db.add_tags("openid:oA1", &["photography"]).unwrap();
    db.add_event(
        "openid:oA1",
        "claim_coupon",
        ts("2026-11-20T10:00:00Z"),
        &[],
    )
    .unwrap();
    db.add_event("M1", "redeem_coupon", ts("2026-11-21T10:00:00Z"), &[])
        .unwrap();
    db
}

fn claimed_not_redeemed() -> Segment {
    Segment::from(Segment::did("claim_coupon")).and(!Segment::did("redeem_coupon"))
}

#[test]
fn linked_profiles_are_one_member_and_an_unmerge_splits_them_back() {
    let db = coupon_db();
    db.define_group("reminder", claimed_not_redeemed()).unwrap();
    assert_eq!(db.count(&claimed_not_redeemed()).unwrap(), 1);
    assert_eq!(db.member_count(), 2);

    // The fan's OpenID and the member's phone seen with one UnionID: both profiles merge.
    db.link(None, &[("openid", "oA1"), ("unionid", "U1")])
        .unwrap();
    let merged = db
        .link(None, &[("phone", "13911112222"), ("unionid", "U1")])
        .unwrap();
    assert_eq!(
        merged.member_id.as_deref(),
        Some("M1"),
        "the member id created first"
    );
    assert_eq!(merged.merged, vec!["openid:oA1".to_string()]);
    assert_eq!(db.count(&claimed_not_redeemed()).unwrap(), 0);
    assert_eq!(db.count(&Segment::tag("photography")).unwrap(), 1);
    assert_eq!(db.count(&Segment::all()).unwrap(), 1);
    // LATEST by write order: the fan's city was written after M1's.
    let m = db.member("openid:oA1").expect("an alias names its profile");
    assert_eq!(m.member_id, "M1");
    assert!(
        m.attributes
            .contains(&("city".into(), Value::from("Hangzhou")))
    );
    assert_eq!(m.aliases, vec!["openid:oA1".to_string()]);
    assert_eq!(
        m.identifiers,
        vec![
            ("unionid".into(), "U1".into()),
            ("phone".into(), "13911112222".into()),
            ("openid".into(), "oA1".into())
        ]
    );
    assert_eq!(
        db.lookup_identifier("openid", "oA1").unwrap().as_deref(),
        Some("M1")
    );
    // The absorbed profile left the group for cause `merge`.
    let entries: Vec<_> = db.changes("reminder", EntryId::ZERO).unwrap().collect();
    let exit = entries.last().unwrap();
    assert_eq!(
        (exit.member_id.as_str(), exit.op, exit.cause),
        ("openid:oA1", ChangeOp::Exit, ChangeCause::Merge)
    );

    // SUM from now on: 100 + 5.
    db.set_merge_rule("points", MergeRule::Sum).unwrap();
    let m = db.member("M1").unwrap();
    assert!(m.attributes.contains(&("points".into(), Value::Int(105))));

    // Undo: the observation that joined the phone to the UnionID.
    let history = db.member_history("M1").unwrap();
    let joining = history
        .iter()
        .find(|h| h.outcome.iter().any(|o| o.starts_with("merged")))
        .expect("the merge is in the history");
    assert_eq!(joining.observation, merged.observation.unwrap());
    db.unmerge("M1", joining.observation).unwrap();
    assert_eq!(db.count(&Segment::all()).unwrap(), 2);
    assert_eq!(db.count(&claimed_not_redeemed()).unwrap(), 1);
    let fan = db.member("openid:oA1").unwrap();
    assert_eq!(fan.member_id, "openid:oA1");
    assert!(
        fan.attributes
            .contains(&("city".into(), Value::from("Hangzhou")))
    );
    assert!(fan.attributes.contains(&("points".into(), Value::Int(5))));
    assert_eq!(fan.tags, vec!["photography".to_string()]);
    let m1 = db.member("M1").unwrap();
    assert!(
        m1.attributes
            .contains(&("city".into(), Value::from("Shanghai")))
    );
    assert!(m1.tags.is_empty());
    assert_eq!(
        db.lookup_identifier("openid", "oA1").unwrap().as_deref(),
        Some("openid:oA1")
    );
    assert_eq!(
        db.lookup_identifier("unionid", "U1").unwrap().as_deref(),
        Some("openid:oA1")
    );
    let entries: Vec<_> = db.changes("reminder", EntryId::ZERO).unwrap().collect();
    let back = entries.last().unwrap();
    assert_eq!(
        (back.member_id.as_str(), back.op, back.cause),
        ("openid:oA1", ChangeOp::Enter, ChangeCause::Merge)
    );
}

#[test]
fn writes_to_an_alias_belong_to_it_and_come_back_with_an_unmerge() {
    let db = coupon_db();
    let m = db.merge_members("M1", "openid:oA1").unwrap();
    assert_eq!(m.member_id.as_deref(), Some("M1"));
    // An event and a tag written to the alias count for the profile.
    db.add_event(
        "openid:oA1",
        "claim_coupon",
        ts("2026-11-25T10:00:00Z"),
        &[],
    )
    .unwrap();
    db.add_tags("openid:oA1", &["vip"]).unwrap();
    let twice: Segment = Segment::did("claim_coupon").at_least(2).into();
    assert_eq!(db.count(&twice).unwrap(), 1);
    assert_eq!(db.count(&Segment::tag("vip")).unwrap(), 1);
    // A tag taken from the profile is taken from every member id of it.
    db.remove_tags("M1", &["photography"]).unwrap();
    assert_eq!(db.count(&Segment::tag("photography")).unwrap(), 0);
    db.unmerge("M1", m.observation.unwrap()).unwrap();
    assert_eq!(
        db.count(&twice).unwrap(),
        1,
        "both claims are the fan's own"
    );
    let fan = db.member("openid:oA1").unwrap();
    assert_eq!(fan.tags, vec!["vip".to_string()]);
    assert_eq!(db.count(&Segment::did("redeem_coupon").into()).unwrap(), 1);
}

#[test]
fn limits_blocked_values_and_bad_requests_change_nothing() {
    let db = coupon_db();
    // A blocked phone is reported and ignored.
    let r = db.link(Some("M1"), &[("phone", "13800000000")]).unwrap();
    assert_eq!(r.ignored, vec!["phone '13800000000': blocked".to_string()]);
    assert_eq!(db.lookup_identifier("phone", "13800000000").unwrap(), None);
    // A second phone for M1 breaks LIMIT 1: dropped, reported.
    let r = db.link(Some("M1"), &[("phone", "13999999999")]).unwrap();
    assert_eq!(r.dropped.len(), 1, "{r:?}");
    assert_eq!(db.lookup_identifier("phone", "13999999999").unwrap(), None);
    // Without the member id, M1's OpenID with a new phone: the OpenID (the lowest
    // priority) is dropped and the phone starts a profile named after it, not after the
    // OpenID it does not hold.
    db.link(Some("M1"), &[("openid", "oM1")]).unwrap();
    let r = db
        .link(None, &[("openid", "oM1"), ("phone", "13999999998")])
        .unwrap();
    assert_eq!(r.member_id.as_deref(), Some("phone:13999999998"), "{r:?}");
    assert_eq!(
        db.lookup_identifier("openid", "oM1").unwrap().as_deref(),
        Some("M1")
    );
    db.unmerge("phone:13999999998", r.observation.unwrap())
        .unwrap();
    // Unknown type: the closest is named.
    let e = db.link(None, &[("phnoe", "1")]).unwrap_err().to_string();
    assert!(e.contains("phone"), "{e}");
    // LIMIT 0, a priority used twice.
    assert!(db.define_identifier(def("card", 0, 5, &[])).is_err());
    let e = db
        .define_identifier(def("card", 1, 2, &[]))
        .unwrap_err()
        .to_string();
    assert!(e.contains("PRIORITY 2"), "{e}");
    // Merging a member with itself; a merge breaking a limit.
    assert!(db.merge_members("M1", "M1").is_err());
    db.link(None, &[("openid", "oB"), ("phone", "13700000001")])
        .unwrap();
    let e = db.merge_members("M1", "openid:oB").unwrap_err().to_string();
    assert!(e.contains("LIMIT 1 of identifier 'phone'"), "{e}");
    // An observation that is not the member's.
    let h = db.member_history("openid:oB").unwrap();
    assert!(db.unmerge("M1", h[0].observation).is_err());
    assert_eq!(db.count(&Segment::all()).unwrap(), 3);
}

#[test]
fn identifiers_come_from_attributes_of_the_same_name() {
    let db = Database::in_memory();
    db.upsert_member("A", &[("phone", Some(Value::from("138")))])
        .unwrap();
    db.upsert_member("B", &[("phone", Some(Value::from("139")))])
        .unwrap();
    db.define_identifier(def("phone", 1, 1, &[])).unwrap();
    db.define_identifier(def("email", 3, 2, &[])).unwrap();
    assert_eq!(
        db.lookup_identifier("phone", "138").unwrap().as_deref(),
        Some("A")
    );
    // A group reading identifiers follows the links.
    let both = Segment::has_identifier("phone").and(Segment::has_identifier("email"));
    db.define_group("reachable", both.clone()).unwrap();
    assert_eq!(db.count(&Segment::in_group("reachable")).unwrap(), 0);
    // A later write of the attribute is an observation too.
    db.upsert_member("C", &[("email", Some(Value::from("c@x.cn")))])
        .unwrap();
    db.link(Some("A"), &[("email", "c@x.cn")]).unwrap();
    assert_eq!(db.count(&Segment::all()).unwrap(), 2);
    assert_eq!(db.count(&both).unwrap(), 1);
    assert_eq!(db.count(&Segment::in_group("reachable")).unwrap(), 1);
    let entries: Vec<_> = db.changes("reachable", EntryId::ZERO).unwrap().collect();
    assert_eq!(entries.len(), 1);
    assert_eq!(
        (entries[0].member_id.as_str(), entries[0].op),
        ("A", ChangeOp::Enter)
    );
    let info = db.identifiers();
    assert_eq!(info.len(), 2);
    assert_eq!((info[0].values, info[0].profiles), (2, 2));
}

/// What a test compares across a reopen: counts, members, lookups, history.
fn picture(db: &Database) -> String {
    let m1 = db.member("M1");
    let fan = db.member("openid:oA1");
    format!(
        "{} {} {} {:?} {:?} {:?} {:?}",
        db.count(&Segment::all()).unwrap(),
        db.count(&claimed_not_redeemed()).unwrap(),
        db.count(&Segment::tag("photography")).unwrap(),
        m1,
        fan,
        db.lookup_identifier("unionid", "U1").unwrap(),
        db.member_history("M1").unwrap()
    )
}

#[test]
fn identities_survive_a_checkpoint_and_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let db = coupon_db_in(Database::open(dir.path()).unwrap());
    db.link(None, &[("openid", "oA1"), ("unionid", "U1")])
        .unwrap();
    db.link(None, &[("phone", "13911112222"), ("unionid", "U1")])
        .unwrap();
    db.set_merge_rule("points", MergeRule::Sum).unwrap();
    let merged = picture(&db);
    // From the log alone.
    drop(db);
    let db = Database::open(dir.path()).unwrap();
    assert_eq!(picture(&db), merged);
    // From a checkpoint, then more in the log after it.
    db.checkpoint().unwrap();
    let history = db.member_history("M1").unwrap();
    let joining = history
        .iter()
        .rev()
        .find(|h| !h.outcome.is_empty())
        .unwrap()
        .observation;
    drop(db);
    let db = Database::open(dir.path()).unwrap();
    assert_eq!(picture(&db), merged);
    db.unmerge("M1", joining).unwrap();
    let split = picture(&db);
    assert_ne!(split, merged);
    drop(db);
    let db = Database::open(dir.path()).unwrap();
    assert_eq!(picture(&db), split);
    db.checkpoint().unwrap();
    drop(db);
    let db = Database::open(dir.path()).unwrap();
    assert_eq!(picture(&db), split);
}

/// The replay rules of DESIGN section 11, written from the text alone, as small as can be:
/// profiles are sets of rows and of (type, value); an observation is matched, trimmed by
/// the limits (the identifier of the lowest priority dropped first, the last of equals),
/// then starts, joins or merges profiles.
mod model {
    use std::collections::BTreeSet;

    pub const TYPES: [(&str, usize, u32); 3] =
        [("unionid", 1, 1), ("phone", 1, 2), ("openid", 3, 4)];
    pub const BLOCKED: &str = "blocked";

    #[derive(Clone, Debug, Default)]
    pub struct Profile {
        pub rows: BTreeSet<usize>,
        pub values: BTreeSet<(usize, String)>,
    }

    #[derive(Clone, Debug, Default)]
    pub struct Model {
        pub profiles: Vec<Profile>,
        pub rows: usize,
    }

    impl Model {
        pub fn new(rows: usize) -> Model {
            Model {
                profiles: Vec::new(),
                rows,
            }
        }

        fn over_limit(values: &BTreeSet<(usize, String)>) -> bool {
            (0..TYPES.len()).any(|t| values.iter().filter(|v| v.0 == t).count() > TYPES[t].1)
        }

        /// Returns whether the observation was logged (something left after ignoring).
        pub fn observe(&mut self, member: Option<usize>, ids: &[(usize, String)]) -> bool {
            let mut kept: Vec<(usize, String)> = Vec::new();
            for id in ids {
                if id.1 != BLOCKED && !kept.contains(id) {
                    kept.push(id.clone());
                }
            }
            if kept.is_empty() {
                return false;
            }
            loop {
                let matched: Vec<usize> = (0..self.profiles.len())
                    .filter(|&i| {
                        let p = &self.profiles[i];
                        member.is_some_and(|m| p.rows.contains(&m))
                            || kept.iter().any(|v| p.values.contains(v))
                    })
                    .collect();
                let mut union: BTreeSet<(usize, String)> = kept.iter().cloned().collect();
                for &i in &matched {
                    union.extend(self.profiles[i].values.iter().cloned());
                }
                if Model::over_limit(&union) {
                    let victim = (0..kept.len())
                        .max_by_key(|&i| (TYPES[kept[i].0].2, i))
                        .expect("an identifier overflows");
                    kept.remove(victim);
                    continue;
                }
                let mut merged = Profile {
                    values: union,
                    ..Profile::default()
                };
                for &i in matched.iter().rev() {
                    merged.rows.extend(self.profiles.remove(i).rows);
                }
                if let Some(m) = member {
                    merged.rows.insert(m);
                }
                if merged.rows.is_empty() {
                    if merged.values.is_empty() {
                        return true;
                    }
                    merged.rows.insert(self.rows);
                    self.rows += 1;
                }
                self.profiles.push(merged);
                return true;
            }
        }

        /// The values held with `(t, v)`, if a profile holds it.
        pub fn profile_of(&self, t: usize, v: &str) -> Option<&Profile> {
            self.profiles
                .iter()
                .find(|p| p.values.contains(&(t, v.to_string())))
        }

        pub fn with_count(&self, t: usize, at_least: usize) -> usize {
            self.profiles
                .iter()
                .filter(|p| p.values.iter().filter(|v| v.0 == t).count() >= at_least)
                .count()
        }

        /// Live members: rows never merged away.
        pub fn live(&self) -> usize {
            let merged_away: usize = self.profiles.iter().map(|p| p.rows.len() - 1).sum();
            self.rows - merged_away
        }
    }
}

mod against_the_model {
    use super::def;
    use super::model::{BLOCKED, Model, TYPES};
    use memberdb::{Database, Segment};
    use proptest::prelude::*;

    type Obs = (Option<usize>, Vec<(usize, String)>);

    fn observation() -> impl Strategy<Value = Obs> {
        let value = prop_oneof![
            8 => (0u8..5).prop_map(|v| format!("v{v}")),
            1 => Just(BLOCKED.to_string()),
        ];
        (
            proptest::option::weighted(0.3, 0usize..4),
            proptest::collection::vec((0usize..3, value), 1..4),
        )
    }

    fn database() -> Database {
        let db = Database::in_memory();
        for (name, limit, priority) in TYPES {
            db.define_identifier(def(name, limit as u32, priority, &[BLOCKED]))
                .unwrap();
        }
        for m in 0..4 {
            db.upsert_member(&format!("M{m}"), &[]).unwrap();
        }
        db
    }

    /// Runs `stream` (skipping observation `skip`) on a model.
    fn model_of(stream: &[Obs], skip: Option<usize>) -> Model {
        let mut model = Model::new(4);
        for (i, (member, ids)) in stream.iter().enumerate() {
            if Some(i) != skip {
                model.observe(*member, ids);
            }
        }
        model
    }

    /// The engine agrees with the model on every value's profile (by the values it holds
    /// with it), on the explicit members' profiles, on the live members and on
    /// `COUNT(IDENTIFIER t)`.
    fn agree(db: &Database, model: &Model, context: &str) {
        for (t, (type_name, _, _)) in TYPES.iter().enumerate() {
            for v in 0..5 {
                let v = format!("v{v}");
                let found = db.lookup_identifier(type_name, &v).unwrap();
                let expected = model.profile_of(t, &v);
                assert_eq!(
                    found.is_some(),
                    expected.is_some(),
                    "{context}: {} {v}",
                    type_name
                );
                if let (Some(id), Some(p)) = (found, expected) {
                    let mut held = db.member(&id).unwrap().identifiers;
                    held.sort();
                    let mut want: Vec<(String, String)> = p
                        .values
                        .iter()
                        .map(|(t, v)| (TYPES[*t].0.to_string(), v.clone()))
                        .collect();
                    want.sort();
                    assert_eq!(held, want, "{context}: profile of {} {v}", type_name);
                }
            }
            for n in 1..=3 {
                let segment = Segment::identifier_count(*type_name, memberdb::CmpOp::Ge, n as u64);
                assert_eq!(
                    db.count(&segment).unwrap(),
                    model.with_count(t, n) as u64,
                    "{context}: COUNT(IDENTIFIER {}) >= {n}",
                    type_name
                );
            }
        }
        assert_eq!(
            db.count(&Segment::all()).unwrap(),
            model.live() as u64,
            "{context}: live"
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        #[test]
        fn profiles_lookups_and_unmerge_follow_the_rules(
            stream in proptest::collection::vec(observation(), 1..12),
            undo in any::<proptest::sample::Index>(),
        ) {
            let db = database();
            let mut logged = Vec::new();
            for (i, (member, ids)) in stream.iter().enumerate() {
                let member_id = member.map(|m| format!("M{m}"));
                let ids: Vec<(&str, &str)> = ids.iter().map(|(t, v)| (TYPES[*t].0, v.as_str())).collect();
                let report = db.link(member_id.as_deref(), &ids).unwrap();
                if let (Some(obs), Some(member)) = (report.observation, report.member_id) {
                    logged.push((i, obs, member));
                }
            }
            let model = model_of(&stream, None);
            agree(&db, &model, "after the stream");
            if logged.is_empty() {
                return Ok(());
            }
            let (i, obs, member) = logged[undo.index(logged.len())].clone();
            db.unmerge(&member, obs).unwrap();
            agree(&db, &model_of(&stream, Some(i)), &format!("after undoing observation {obs}"));
        }
    }
}

/// A store's shared tablet registers walk-in customers with the assistant's phone; a QA
/// team signs up with one test e-mail. Blocked, those values merge nobody. And a phone seen
/// with another fan's OpenID does not merge two profiles that each hold a phone: LIMIT 1
/// drops the observation's lower-priority identifier (the OpenID), which the history
/// shows.
#[test]
fn a_shared_device_and_a_test_email_merge_nobody() {
    let db = Database::in_memory();
    db.define_identifier(def("phone", 1, 1, &["13800000000"]))
        .unwrap();
    db.define_identifier(def("email", 2, 2, &["test@example.com"]))
        .unwrap();
    db.define_identifier(def("openid", 20, 3, &[])).unwrap();
    for (fan, own) in [
        ("oF1", "13911110001"),
        ("oF2", "13911110002"),
        ("oF3", "13911110003"),
    ] {
        let r = db
            .link(
                None,
                &[
                    ("openid", fan),
                    ("phone", "13800000000"),
                    ("email", "test@example.com"),
                ],
            )
            .unwrap();
        assert_eq!(r.ignored.len(), 2, "{r:?}");
        assert!(r.merged.is_empty());
        db.link(None, &[("openid", fan), ("phone", own)]).unwrap();
    }
    assert_eq!(db.count(&Segment::all()).unwrap(), 3);
    assert_eq!(db.lookup_identifier("phone", "13800000000").unwrap(), None);

    // Fan 2 seen with fan 1's phone: merging would give one profile two phones, so the
    // OpenID (priority 3, below phone's 1) is dropped and the observation only confirms
    // fan 1's phone.
    let db = Database::in_memory();
    db.define_identifier(def("phone", 1, 1, &[])).unwrap();
    db.define_identifier(def("openid", 20, 3, &[])).unwrap();
    db.link(None, &[("openid", "oF1"), ("phone", "13911110001")])
        .unwrap();
    db.link(None, &[("openid", "oF2"), ("phone", "13911110002")])
        .unwrap();
    let r = db
        .link(None, &[("openid", "oF2"), ("phone", "13911110001")])
        .unwrap();
    assert!(
        r.merged.is_empty(),
        "two phones in one profile would break LIMIT 1: {r:?}"
    );
    assert_eq!(r.dropped.len(), 1, "{r:?}");
    assert_eq!(db.count(&Segment::all()).unwrap(), 2);
    let history = db.member_history("openid:oF1").unwrap();
    assert!(
        history
            .iter()
            .any(|h| h.outcome.iter().any(|o| o.contains("LIMIT 1 of phone"))),
        "{history:?}"
    );
}

/// Events over merged profiles: random events on six member ids, random merges and
/// unmerges; after each step, per-profile counts (all time, per window, per day repeats,
/// equal) answer as a naive count over the union of each profile's member ids' events.
mod events_over_profiles {
    use std::collections::{BTreeMap, BTreeSet};

    use memberdb::{Database, Segment, TimeUnit, Timestamp};
    use proptest::prelude::*;

    const IDS: usize = 6;
    const NOW: &str = "2026-11-30T00:00:00Z";

    #[derive(Clone, Debug)]
    enum Op {
        Event(usize, i64),
        Merge(usize, usize),
        UnmergeLast,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            6 => (0..IDS, 0i64..40 * 24).prop_map(|(m, h)| Op::Event(m, h)),
            2 => (0..IDS, 0..IDS).prop_map(|(a, b)| Op::Merge(a, b)),
            1 => Just(Op::UnmergeLast),
        ]
    }

    /// Union-find over member ids, replayed from the merges still in force.
    fn profiles(merges: &[(usize, usize)]) -> Vec<BTreeSet<usize>> {
        let mut of: Vec<usize> = (0..IDS).collect();
        for &(a, b) in merges {
            let (ra, rb) = (of[a], of[b]);
            for x in of.iter_mut() {
                if *x == rb {
                    *x = ra;
                }
            }
        }
        let mut groups: BTreeMap<usize, BTreeSet<usize>> = BTreeMap::new();
        for (m, r) in of.iter().enumerate() {
            groups.entry(*r).or_default().insert(m);
        }
        groups.into_values().collect()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(96))]
        #[test]
        fn counts_are_of_the_union(ops in proptest::collection::vec(op(), 1..40)) {
            let db = Database::in_memory();
            let now = Timestamp::parse(NOW).unwrap();
            let start = now.micros() - 40 * 24 * 3_600_000_000;
            for m in 0..IDS {
                db.upsert_member(&format!("M{m}"), &[]).unwrap();
            }
            // One event from the start, so the type exists.
            db.add_event("M0", "purchase", Timestamp(start), &[]).unwrap();
            let mut events: Vec<(usize, i64)> = vec![(0, start)];
            let mut merges: Vec<(usize, usize, u32)> = Vec::new();
            for op in &ops {
                match *op {
                    Op::Event(m, h) => {
                        let ts = start + h * 3_600_000_000;
                        db.add_event(&format!("M{m}"), "purchase", Timestamp(ts), &[]).unwrap();
                        events.push((m, ts));
                    }
                    Op::Merge(a, b) => {
                        if let Ok(r) = db.merge_members(&format!("M{a}"), &format!("M{b}")) {
                            merges.push((a, b, r.observation.unwrap()));
                        }
                    }
                    Op::UnmergeLast => {
                        if let Some((a, _, obs)) = merges.pop() {
                            db.unmerge(&format!("M{a}"), obs).unwrap();
                        }
                    }
                }
                let pairs: Vec<(usize, usize)> = merges.iter().map(|(a, b, _)| (*a, *b)).collect();
                let groups = profiles(&pairs);
                prop_assert_eq!(db.count(&Segment::all()).unwrap(), groups.len() as u64);
                let view = db.as_of(now);
                for (k, days) in [(1u64, None), (2, None), (3, Some(10u64)), (2, Some(3))] {
                    let expected = groups
                        .iter()
                        .filter(|g| {
                            let n = events
                                .iter()
                                .filter(|(m, ts)| {
                                    g.contains(m)
                                        && days.is_none_or(|d| {
                                            // IN LAST: now - n < ts <= now
                                            *ts > now.micros() - d as i64 * 86_400_000_000
                                        })
                                })
                                .count() as u64;
                            n >= k
                        })
                        .count() as u64;
                    let mut did = Segment::did("purchase").at_least(k);
                    if let Some(d) = days {
                        did = did.in_last(d, TimeUnit::Days);
                    }
                    prop_assert_eq!(view.count(&did.into()).unwrap(), expected, "at least {} in {:?} days", k, days);
                }
                // Exactly 2 in the last 7 days: the day bitmaps' repeat levels, exactly.
                let twice = groups
                    .iter()
                    .filter(|g| {
                        let mut per_day: BTreeMap<i64, u64> = BTreeMap::new();
                        for (m, ts) in &events {
                            if g.contains(m) && *ts > now.micros() - 7 * 86_400_000_000 {
                                *per_day.entry(ts.div_euclid(86_400_000_000)).or_default() += 1;
                            }
                        }
                        per_day.values().sum::<u64>() == 2
                    })
                    .count() as u64;
                let exactly: Segment = Segment::did("purchase").exactly(2).in_last(7, TimeUnit::Days).into();
                prop_assert_eq!(view.count(&exactly).unwrap(), twice);
            }
        }
    }
}

#[test]
fn groups_reading_nothing_of_a_merge_still_lose_the_absorbed_id() {
    // `ALL` and a group on an attribute neither profile changes: an absorbed member id is
    // no longer live, so it leaves both (cause merge) and comes back with the unmerge.
    let db = Database::in_memory();
    db.define_identifier(def("phone", 1, 1, &[])).unwrap();
    db.upsert_member("A", &[("city", Some(Value::from("Shanghai")))])
        .unwrap();
    db.upsert_member("B", &[("city", Some(Value::from("Shanghai")))])
        .unwrap();
    db.define_group("everyone", Segment::all()).unwrap();
    db.define_group("shanghai", Segment::attr("city").eq("Shanghai"))
        .unwrap();
    let stream = |group: &str| -> Vec<String> {
        db.changes(group, EntryId::ZERO)
            .unwrap()
            .map(|e| format!("{} {} {}", e.member_id, e.op.as_str(), e.cause.as_str()))
            .collect()
    };
    let merge = db.merge_members("A", "B").unwrap();
    assert_eq!(db.count(&Segment::in_group("everyone")).unwrap(), 1);
    assert_eq!(db.count(&Segment::in_group("shanghai")).unwrap(), 1);
    db.unmerge("A", merge.observation.unwrap()).unwrap();
    for group in ["everyone", "shanghai"] {
        assert_eq!(db.count(&Segment::in_group(group)).unwrap(), 2, "{group}");
        assert_eq!(stream(group), ["B exit merge", "B enter merge"], "{group}");
    }
}
