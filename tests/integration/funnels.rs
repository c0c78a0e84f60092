//! Funnels (DESIGN section 10) against a brute-force evaluator: every chain of steps from
//! every entry tried, not the engine's greedy walk; equal times, repeated step types,
//! several entries per member, filters, ranges and each kind of `BY`.

use std::collections::BTreeMap;

use memberdb::{
    Database, FindOptions, Funnel, FunnelBy, FunnelStep, PropFilter, TimeUnit, Timestamp, Value,
    ValueExpr, Window,
};
use proptest::prelude::*;

const HOUR: i64 = 3_600_000_000;
/// The pinned *now*: 2026-11-01T00:00:00Z.
const NOW: i64 = 20_393 * 24 * HOUR;
const TYPES: [&str; 3] = ["a", "b", "c"];
const TAGS: [&str; 2] = ["x", "y"];

#[derive(Clone, Debug)]
struct Event {
    member: usize,
    event: &'static str,
    /// Hours from now (few distinct values: equal times are common).
    hour: i64,
    tag: Option<&'static str>,
}

#[derive(Clone, Debug)]
struct Case {
    cities: Vec<Option<&'static str>>,
    events: Vec<Event>,
    steps: Vec<(&'static str, Option<&'static str>)>,
    within_hours: u64,
    /// Entries at or after this many hours from now (`None`: any time).
    since: Option<i64>,
    by: u8,
}

fn case() -> impl Strategy<Value = Case> {
    prop::collection::vec(
        prop::option::of(prop::sample::select(vec!["P", "Q"])),
        1..25,
    )
    .prop_flat_map(|cities| {
        let n = cities.len();
        let event = (
            0..n,
            prop::sample::select(&TYPES[..]),
            -30i64..6,
            prop::option::weighted(0.7, prop::sample::select(&TAGS[..])),
        )
            .prop_map(|(member, event, hour, tag)| Event {
                member,
                event,
                hour,
                tag,
            });
        (
            Just(cities),
            prop::collection::vec(event, 0..120),
            prop::collection::vec(
                (
                    prop::sample::select(&TYPES[..]),
                    prop::option::weighted(0.3, prop::sample::select(&TAGS[..])),
                ),
                2..5,
            ),
            1u64..12,
            prop::option::of(-30i64..0),
            0u8..4,
        )
            .prop_map(|(cities, events, steps, within_hours, since, by)| Case {
                cities,
                events,
                steps,
                within_hours,
                since,
                by,
            })
    })
}

fn id(m: usize) -> String {
    format!("M{m}")
}

/// What the brute force finds for one member: its furthest step, the times of the
/// lexicographically first longest chain from its earliest entry reaching it, and its
/// first and last entries' tags.
struct Reached {
    furthest: usize,
    times: Vec<i64>,
    first_tag: Option<&'static str>,
    last_tag: Option<&'static str>,
}

fn brute(case: &Case, member: usize) -> Option<Reached> {
    // in time order, equal times in the order written
    let mut mine: Vec<&Event> = case.events.iter().filter(|e| e.member == member).collect();
    mine.sort_by_key(|e| e.hour);
    let passes = |e: &Event, k: usize| {
        let (event, tag) = case.steps[k];
        e.event == event && tag.is_none_or(|t| e.tag == Some(t))
    };
    let entries: Vec<usize> = (0..mine.len())
        .filter(|&i| passes(mine[i], 0) && case.since.is_none_or(|s| mine[i].hour >= s))
        .collect();
    let (&first, &last) = (entries.first()?, entries.last()?);
    let within = case.within_hours as i64;
    // every chain from an entry: the longest, the lexicographically first of those
    fn chains(
        mine: &[&Event],
        passes: &dyn Fn(&Event, usize) -> bool,
        steps: usize,
        deadline: i64,
        chain: &mut Vec<i64>,
        best: &mut Vec<i64>,
    ) {
        if chain.len() > best.len() || (chain.len() == best.len() && *chain < *best) {
            best.clone_from(chain);
        }
        if chain.len() == steps {
            return;
        }
        let at = *chain.last().expect("an entry");
        for e in mine {
            if e.hour > at && e.hour <= deadline && passes(e, chain.len()) {
                chain.push(e.hour);
                chains(mine, passes, steps, deadline, chain, best);
                chain.pop();
            }
        }
    }
    let mut best: Option<Vec<i64>> = None;
    for &i in &entries {
        let mut found = Vec::new();
        chains(
            &mine,
            &passes,
            case.steps.len(),
            mine[i].hour + within,
            &mut vec![mine[i].hour],
            &mut found,
        );
        if best.as_ref().is_none_or(|b| found.len() > b.len()) {
            best = Some(found);
        }
    }
    let times = best.expect("an entry");
    Some(Reached {
        furthest: times.len(),
        times,
        first_tag: mine[first].tag,
        last_tag: mine[last].tag,
    })
}

fn median(mut v: Vec<i64>) -> Option<f64> {
    v.sort_unstable();
    let n = v.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(v[n / 2] as f64),
        _ => Some((v[n / 2 - 1] + v[n / 2]) as f64 / 2.0),
    }
}

fn funnel_of(case: &Case) -> Funnel {
    let steps = case.steps.iter().map(|(event, tag)| {
        let step = FunnelStep::new(*event);
        match tag {
            Some(t) => step.filter(PropFilter::prop("tag").eq(*t)),
            None => step,
        }
    });
    let mut funnel = Funnel::new(steps, case.within_hours, TimeUnit::Hours);
    if let Some(s) = case.since {
        funnel = funnel.range(Window::Range {
            since: Some(Value::Timestamp(NOW + s * HOUR)),
            before: None,
        });
    }
    match case.by {
        1 => funnel.by(FunnelBy::FirstTouch("tag".into())),
        2 => funnel.by(FunnelBy::LastTouch("tag".into())),
        3 => funnel.by(FunnelBy::Value(ValueExpr::attr("city"))),
        _ => funnel,
    }
}

fn load(case: &Case) -> Database {
    let db = Database::in_memory();
    for (m, city) in case.cities.iter().enumerate() {
        db.upsert_member(&id(m), &[("city", city.map(Value::from))])
            .unwrap();
    }
    // the city attribute, every type and the tag property exist
    db.upsert_member("placeholder", &[("city", Some(Value::from("R")))])
        .unwrap();
    for t in TYPES {
        db.add_event(
            "placeholder",
            t,
            Timestamp(0),
            &[("tag", Some(Value::from("x")))],
        )
        .unwrap();
    }
    for e in &case.events {
        db.add_event(
            &id(e.member),
            e.event,
            Timestamp(NOW + e.hour * HOUR),
            &[("tag", e.tag.map(Value::from))],
        )
        .unwrap();
    }
    db
}

/// (bucket, step) -> (members, median seconds).
type Rows = BTreeMap<(Option<String>, usize), (u64, Option<f64>)>;

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, .. ProptestConfig::default() })]

    #[test]
    fn funnels_agree_with_brute_force(case in case()) {
        let db = load(&case);
        let view = db.as_of(Timestamp(NOW));
        let funnel = funnel_of(&case);
        let report = view.funnel(&funnel).unwrap();
        let got: Rows = report
            .rows
            .iter()
            .map(|r| ((r.bucket.as_ref().map(Value::to_string), r.step), (r.members, r.median_seconds)))
            .collect();
        // the brute force's, by bucket
        let n = case.steps.len();
        let mut buckets: BTreeMap<Option<String>, Vec<Reached>> = BTreeMap::new();
        // the placeholder's entry is at the epoch: inside an open range
        let placeholder = case.since.is_none() && case.steps[0].1.is_none_or(|t| t == "x");
        for m in 0..case.cities.len() {
            if let Some(r) = brute(&case, m) {
                let bucket = match case.by {
                    1 => r.first_tag.map(str::to_string),
                    2 => r.last_tag.map(str::to_string),
                    3 => case.cities[m].map(str::to_string),
                    _ => None,
                };
                buckets.entry(bucket).or_default().push(r);
            }
        }
        if placeholder {
            let bucket = match case.by {
                1 | 2 => Some("x".to_string()),
                3 => Some("R".to_string()),
                _ => None,
            };
            buckets.entry(bucket).or_default().push(Reached {
                furthest: 1,
                times: vec![0],
                first_tag: Some("x"),
                last_tag: Some("x"),
            });
        }
        // without BY, the steps are there even when nobody entered
        if case.by == 0 {
            buckets.entry(None).or_default();
        }
        let mut expected = Rows::new();
        for (bucket, reached) in &buckets {
            for k in 0..n {
                let members = reached.iter().filter(|r| r.furthest > k).count() as u64;
                let gaps: Vec<i64> = reached
                    .iter()
                    .filter(|r| r.furthest > k && k > 0)
                    .map(|r| (r.times[k] - r.times[k - 1]) * 3600)
                    .collect();
                expected.insert((bucket.clone(), k + 1), (members, median(gaps)));
            }
        }
        prop_assert_eq!(&got, &expected, "{:?}", case);
        // FIND FUNNEL ... AT STEP k: the members whose furthest step is k
        for k in 1..=n {
            let found = view
                .find_funnel(&funnel, k, &FindOptions { limit: None, ..FindOptions::default() })
                .unwrap();
            let mut ids: Vec<String> = found.rows.into_iter().map(|r| r.member_id).collect();
            ids.sort();
            let mut want: Vec<String> = (0..case.cities.len())
                .filter(|&m| brute(&case, m).is_some_and(|r| r.furthest == k))
                .map(id)
                .collect();
            if placeholder && k == 1 {
                want.push("placeholder".into());
            }
            want.sort();
            prop_assert_eq!(ids, want, "AT STEP {}", k);
        }
    }
}

/// The tie rule and the re-entry rule, by hand: a step at the entry's own time never
/// counts, and a member's furthest step over its entries is what counts.
#[test]
fn equal_times_never_chain_and_a_later_entry_can_go_further() {
    let db = Database::in_memory();
    let at = |h: i64| Timestamp(NOW - 100 * HOUR + h * HOUR);
    // M1: a and b at the same instant: step 1 only
    db.add_event("M1", "a", at(0), &[]).unwrap();
    db.add_event("M1", "b", at(0), &[]).unwrap();
    // M2: an entry that stalls (b too late), then one that completes
    db.add_event("M2", "a", at(0), &[]).unwrap();
    db.add_event("M2", "a", at(10), &[]).unwrap();
    db.add_event("M2", "b", at(12), &[]).unwrap();
    db.add_event("M2", "c", at(13), &[]).unwrap();
    let funnel = Funnel::new(["a", "b", "c"].map(FunnelStep::new), 5, TimeUnit::Hours);
    let report = db.as_of(Timestamp(NOW)).funnel(&funnel).unwrap();
    let members: Vec<u64> = report.rows.iter().map(|r| r.members).collect();
    assert_eq!(members, [2, 1, 1]);
    // timed from M2's second entry: 2 hours to b, 1 to c
    assert_eq!(report.rows[1].median_seconds, Some(7200.0));
    assert_eq!(report.rows[2].median_seconds, Some(3600.0));
    assert_eq!(report.rows[1].share_of_first, 0.5);
    assert_eq!(report.rows[2].share_of_previous, 1.0);
}
