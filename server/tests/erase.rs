//! `MEMBER.ERASE` over the wire (DESIGN section 12): admins only; afterwards no file of the
//! database directory, the audit log included, holds a value of the member; the audit and
//! the group's change stream show it as `(erased)`, with cause `erase`.

mod support;

use redis::{Value as R, cmd};
use support::{Server, q};

const PLANTED: &[&str] = &[
    "PLANTED-9",
    "+86-13987650009",
    "planted9@example.org",
    "ORD-PLANTED-9",
];

fn config() -> String {
    let mut text = String::from("[audit]\nfields = [\"phone\"]\n");
    for (user, role) in [("boss", "admin"), ("clerk", "write")] {
        text.push_str(&format!(
            "[[users]]\nname = \"{user}\"\npassword_hash = \"{}\"\nroles = [\"{role}\"]\n",
            support::password_hash(user)
        ));
    }
    text
}

fn login(server: &Server, user: &str) -> redis::Connection {
    server.login(user, user, false).unwrap()
}

/// Planted values found in any file under `dir`.
fn found_in(dir: &std::path::Path) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        for value in PLANTED {
            if bytes.windows(value.len()).any(|w| w == value.as_bytes()) {
                found.push(format!("{value} in {}", path.display()));
            }
        }
    }
    found
}

#[test]
fn an_admin_erases_a_member_and_nothing_of_it_is_left_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    support::database_of(&db, 5, |m| {
        vec![
            ("phone", memberdb::Value::from(format!("+86-1380000000{m}"))),
            ("email", memberdb::Value::from(format!("m{m}@example.com"))),
        ]
    });
    let server = Server::start(&db, Some(&config()));
    let mut boss = login(&server, "boss");
    let mut clerk = login(&server, "clerk");
    let () = cmd("MEMBER.SET")
        .arg("PLANTED-9")
        .arg("phone")
        .arg("+86-13987650009")
        .arg("email")
        .arg("planted9@example.org")
        .query(&mut clerk)
        .unwrap();
    let () = cmd("TAG.ADD")
        .arg("PLANTED-9")
        .arg("vip")
        .query(&mut clerk)
        .unwrap();
    let () = cmd("EVENT.ADD")
        .arg("PLANTED-9")
        .arg("purchase")
        .arg("2026-11-01T08:00:00Z")
        .arg("order_id")
        .arg("ORD-PLANTED-9")
        .query(&mut clerk)
        .unwrap();
    q(&mut boss, "DEFINE GROUP vips AS TAG 'vip'").unwrap();
    let () = cmd("TAG.ADD")
        .arg("M1")
        .arg("vip")
        .query(&mut clerk)
        .unwrap();
    // An audited read of the member's phone: the audit names its row.
    let _: R = q(&mut boss, "FIND TAG 'vip' SHOW phone").unwrap();
    assert!(
        !found_in(&db).is_empty(),
        "planted values are on disk before"
    );

    let e = cmd("MEMBER.ERASE")
        .arg("PLANTED-9")
        .query::<R>(&mut clerk)
        .unwrap_err();
    assert_eq!(e.code(), Some("NOPERM"), "{e}");
    let e = cmd("MEMBER.ERASE")
        .arg("PLANTED-9")
        .arg("BECAUSE")
        .arg("x")
        .query::<R>(&mut boss)
        .unwrap_err();
    assert!(
        e.to_string()
            .contains("MEMBER.ERASE <member_id> [REASON <text>]"),
        "{e}"
    );
    let e = cmd("MEMBER.ERASE")
        .arg("NOBODY")
        .query::<R>(&mut boss)
        .unwrap_err();
    assert!(e.to_string().contains("unknown member 'NOBODY'"), "{e}");

    let n: i64 = cmd("MEMBER.ERASE")
        .arg("PLANTED-9")
        .arg("REASON")
        .arg("PIPL art. 47 request 2026-118")
        .query(&mut boss)
        .unwrap();
    assert_eq!(n, 1);
    assert_eq!(found_in(&db), Vec::<String>::new());

    let got: R = cmd("MEMBER.GET").arg("PLANTED-9").query(&mut boss).unwrap();
    assert_eq!(got, R::Nil);
    assert_eq!(support::count(&mut boss, "TAG 'vip'"), 1);
    assert_eq!(support::count(&mut boss, "ALL"), 5);

    // The audit: the read and the erasure name the member as (erased).
    let records = support::xrange_fields(&mut boss, "audit");
    let read = records.iter().find(|r| r["action"] == "read").unwrap();
    assert_eq!(read["members"], "M1,(erased)");
    let erase = records.last().unwrap();
    assert_eq!(erase["action"], "erase");
    assert_eq!(erase["user"], "boss");
    assert_eq!(erase["members"], "(erased)");
    assert_eq!(erase["statement"], "MEMBER.ERASE ? REASON ?");
    assert_eq!(erase["detail"], "reason: PIPL art. 47 request 2026-118");
    let verified: String = cmd("AUDIT.VERIFY").query(&mut boss).unwrap();
    assert!(verified.starts_with("OK"), "{verified}");

    // The group's stream: the member's exit, cause erase.
    let entries = support::xrange_fields(&mut boss, "group:vips");
    let last = entries.last().unwrap();
    assert_eq!(
        (
            last["member"].as_str(),
            last["op"].as_str(),
            last["cause"].as_str()
        ),
        ("(erased)", "exit", "erase"),
        "{entries:?}"
    );
    drop(server);
    assert_eq!(found_in(&db), Vec::<String>::new());
}
