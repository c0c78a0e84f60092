//! The audit log over the wire (DESIGN section 12): reads of unmasked audited fields,
//! exports, failed AUTH and starts recorded before the reply, hash-chained; `XRANGE audit`
//! for admins only; `AUDIT.VERIFY` and `memberdb audit verify` find a changed record.

mod support;

use redis::{Value as R, cmd};
use support::Server;

fn database(dir: &std::path::Path) {
    support::database_of(dir, 5, |m| {
        vec![
            ("city", memberdb::Value::from("Shanghai")),
            ("passport_no", memberdb::Value::from(format!("E{m:08}"))),
        ]
    });
}

fn config(dir: &std::path::Path) -> String {
    let exports = dir.join("exports");
    std::fs::create_dir_all(&exports).unwrap();
    let mut text = format!(
        "export_dir = \"{}\"\n[audit]\nfields = [\"passport_no\"]\n\
         [roles.service]\nscope = \"ALL\"\nmask = {{ passport_no = \"partial(1,2)\" }}\n\
         commands = [\"read\"]\n",
        exports.display()
    );
    for (user, roles) in [("boss", "[\"admin\"]"), ("cs", "[\"service\"]")] {
        text.push_str(&format!(
            "[[users]]\nname = \"{user}\"\npassword_hash = \"{}\"\nroles = {roles}\n",
            support::password_hash(user)
        ));
    }
    text
}

fn login(server: &Server, user: &str, pass: &str) -> redis::RedisResult<redis::Connection> {
    server.login(user, pass, false)
}

/// `XRANGE audit - +` as field maps.
fn records(con: &mut redis::Connection) -> Vec<std::collections::HashMap<String, String>> {
    support::xrange_fields(con, "audit")
}

#[test]
fn audited_reads_are_recorded_chained_and_tampering_is_found() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    database(&db);
    let server = Server::start(&db, Some(&config(dir.path())));
    let mut boss = login(&server, "boss", "boss").unwrap();
    let mut cs = login(&server, "cs", "cs").unwrap();
    assert!(login(&server, "cs", "wrong").is_err());

    // an unmasked audited read is recorded with its members; a masked one is not
    let _: R = cmd("QUERY")
        .arg("FIND city = 'Shanghai' SHOW passport_no LIMIT 2")
        .query(&mut boss)
        .unwrap();
    let _: R = cmd("QUERY")
        .arg("FIND ALL SHOW passport_no LIMIT 5")
        .query(&mut cs)
        .unwrap();
    let _: R = cmd("MEMBER.GET").arg("M3").query(&mut boss).unwrap();
    let _: R = cmd("QUERY")
        .arg("FIND ALL SHOW city LIMIT 5")
        .query(&mut boss)
        .unwrap();
    let n: i64 = cmd("QUERY")
        .arg("EXPORT ALL SHOW city TO 'all.csv'")
        .query(&mut boss)
        .unwrap();
    assert_eq!(n, 5);
    // the audit stream is the admins'
    let e = cmd("XRANGE")
        .arg("audit")
        .arg("-")
        .arg("+")
        .query::<R>(&mut cs)
        .unwrap_err();
    assert_eq!(e.code(), Some("NOPERM"));
    let all = records(&mut boss);
    let actions: Vec<&str> = all.iter().map(|r| r["action"].as_str()).collect();
    assert_eq!(actions, ["start", "read", "read", "export"], "{all:?}");
    let read = &all[1];
    assert_eq!(read["user"], "boss");
    assert_eq!(read["fields"], "passport_no");
    assert_eq!(read["members"], "M0,M1");
    assert_eq!(read["statement"], "FIND city = ? SHOW passport_no LIMIT ?");
    assert!(all[0]["detail"].starts_with("config sha256 "));
    assert_eq!(all[2]["members"], "M3");
    assert_eq!(all[3]["rows"], "5");
    // the export's members as a hash of its ids, as the file lists them
    let csv = std::fs::read_to_string(dir.path().join("exports/all.csv")).unwrap();
    let ids: String = csv
        .lines()
        .skip(1)
        .map(|l| format!("{}\n", l.split(',').next().unwrap()))
        .collect();
    assert_eq!(
        all[3]["detail"],
        format!(
            "members sha256 {}",
            memberdb::audit::sha256_hex(ids.as_bytes())
        )
    );
    assert!(all.windows(2).all(|w| w[1]["prev_hash"] == w[0]["hash"]));
    let ok: String = cmd("AUDIT.VERIFY").query(&mut boss).unwrap();
    assert!(ok.starts_with("OK 4 records"), "{ok}");
    // no audit record holds a value that was read
    let log = std::fs::read_to_string(db.join("audit.log")).unwrap();
    assert!(!log.contains("E0000000"), "{log}");
    let (_, stderr) = server.stop();
    // the failed AUTH burst is recorded when the server stops
    let log = std::fs::read_to_string(db.join("audit.log")).unwrap();
    assert!(
        log.contains("\"auth_failed\"") && log.contains("\"user\":\"cs\""),
        "{stderr}"
    );

    // one changed record: verify names it
    let out = support::binary::memberdb(&["audit", "verify", "--db", db.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        support::binary::text(&out.stderr)
    );
    let tampered = log.replacen("\"members\":[0,1]", "\"members\":[0,2]", 1);
    assert_ne!(tampered, log);
    std::fs::write(db.join("audit.log"), tampered).unwrap();
    let out = support::binary::memberdb(&["audit", "verify", "--db", db.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = support::binary::text(&out.stderr);
    assert!(
        err.contains("audit record 2") && err.contains("hash"),
        "{err}"
    );
    // and the server refuses to start on it
    let err = Server::try_start(&db, Some(&config(dir.path())))
        .err()
        .unwrap();
    assert!(err.contains("audit record 2"), "{err}");
}
