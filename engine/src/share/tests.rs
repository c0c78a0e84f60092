//! Pools and overlaps through the crate: an identifier type as the key (every value of a
//! profile counts once for it), a masked key refused, suppression at the threshold.

use std::sync::Arc;

use super::*;
use crate::query::{Output, RunOptions};
use crate::{Database, IdentifierDef, Value};

const SECRET: &[u8] = b"sixteen+ bytes of shared secret";

fn run(db: &Database, text: &str, min: u64) -> crate::Result<Output> {
    let statement = crate::query::parse_statement(text).unwrap();
    db.run_with(
        &statement,
        &RunOptions {
            share: Some(ShareOptions {
                secret: Arc::from(SECRET),
                min_group_size: min,
            }),
            ..RunOptions::default()
        },
    )
}

#[test]
fn an_identifier_pool_counts_each_profile_once_and_small_counts_are_suppressed() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::in_memory();
    db.define_identifier(IdentifierDef {
        name: "openid".into(),
        limit: 5,
        priority: 1,
        blocked: vec![],
    })
    .unwrap();
    for m in 0..10 {
        db.upsert_member(
            &format!("M{m}"),
            &[("city", Some(Value::from(if m < 6 { "SH" } else { "BJ" })))],
        )
        .unwrap();
        // two openids each: o<m>a and o<m>b
        db.link(
            Some(&format!("M{m}")),
            &[("openid", &format!("o{m}a")), ("openid", &format!("o{m}b"))],
        )
        .unwrap();
    }
    // The other party knows o0a..o7a and o3b: members M0..M7.
    let other = Database::in_memory();
    for m in 0..8 {
        other
            .upsert_member(
                &format!("X{m}"),
                &[("openid", Some(Value::from(format!("o{m}a"))))],
            )
            .unwrap();
    }
    other
        .upsert_member("X9", &[("openid", Some(Value::from("o3b")))])
        .unwrap();
    let pool = dir.path().join("pool.parquet");
    assert_eq!(
        other.share_export("ALL", "openid", SECRET, &pool).unwrap(),
        9
    );
    let path = pool.display();
    assert_eq!(
        run(&db, &format!("COUNT ALL OVERLAP '{path}'"), 1).unwrap(),
        Output::Overlap {
            columns: vec![],
            total: SharedCount::Count(8),
            lines: vec![]
        }
    );
    let Output::Overlap { lines, .. } =
        run(&db, &format!("BREAKDOWN ALL OVERLAP '{path}' BY city"), 3).unwrap()
    else {
        panic!("an overlap")
    };
    let mut lines: Vec<(Option<Value>, SharedCount)> =
        lines.into_iter().map(|(v, n)| (v[0].clone(), n)).collect();
    lines.sort_by_key(|l| format!("{:?}", l.0));
    assert_eq!(
        lines,
        [
            (Some(Value::from("BJ")), SharedCount::Suppressed),
            (Some(Value::from("SH")), SharedCount::Count(6))
        ]
    );
    // A wrong secret matches nothing (0, under any threshold: suppressed).
    let statement = crate::query::parse_statement(&format!("COUNT ALL OVERLAP '{path}'")).unwrap();
    let wrong = db
        .run_with(
            &statement,
            &RunOptions {
                share: Some(ShareOptions {
                    secret: Arc::from(&b"another secret, sixteen bytes+"[..]),
                    min_group_size: 1,
                }),
                ..RunOptions::default()
            },
        )
        .unwrap();
    assert!(matches!(
        wrong,
        Output::Overlap {
            total: SharedCount::Suppressed,
            ..
        }
    ));
}

#[test]
fn an_overlap_keyed_by_a_masked_field_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::in_memory();
    db.upsert_member("M1", &[("phone", Some(Value::from("13900000001")))])
        .unwrap();
    let pool = dir.path().join("pool.parquet");
    db.share_export("ALL", "phone", SECRET, &pool).unwrap();
    let mut role = crate::Role::builtin("read").unwrap();
    role.masks
        .insert("phone".into(), "partial(3,4)".parse().unwrap());
    let session = db.session(Arc::new(crate::Access::new(
        "cs",
        &[role],
        Arc::from(&b"k"[..]),
    )));
    let statement =
        crate::query::parse_statement(&format!("COUNT ALL OVERLAP '{}'", pool.display())).unwrap();
    let err = session
        .run_with(
            &statement,
            &RunOptions {
                share: Some(ShareOptions {
                    secret: Arc::from(SECRET),
                    min_group_size: 1,
                }),
                ..RunOptions::default()
            },
        )
        .unwrap_err();
    assert!(matches!(err, crate::Error::NoPermission(_)), "{err}");
    // The pool holds no value.
    let bytes = std::fs::read(&pool).unwrap();
    assert!(!bytes.windows(4).any(|w| w == b"1390"));
}
