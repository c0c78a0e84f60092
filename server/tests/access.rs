//! Governed access over the wire (DESIGN section 12): roles with scopes, masks and command
//! classes from the config; a generated role x command x field matrix (each combination
//! works or is refused with NOPERM), canary values that never reach a masked role, and
//! configs that refuse the start naming the role, the field and the position.

mod support;

use std::collections::HashMap;

use redis::{Value as R, cmd};
use support::Server;

const MEMBERS: usize = 40;

fn phone(m: usize) -> String {
    format!("139{m:08}")
}

fn id_no(m: usize) -> String {
    format!("31010119900101{m:04}")
}

/// A database whose members have a home store, a city, a phone and an id number (the
/// canaries), made before the server starts so the masks name fields that exist.
fn database(dir: &std::path::Path) {
    support::database_of(dir, MEMBERS, |m| {
        let store = if m % 2 == 0 { "S1" } else { "S2" };
        vec![
            ("home_store", memberdb::Value::from(store)),
            ("city", memberdb::Value::from("Shanghai")),
            ("phone", memberdb::Value::from(phone(m))),
            ("id_no", memberdb::Value::from(id_no(m))),
        ]
    });
}

const ROLES: &str = r#"
[roles.store_s1]
scope = "home_store = 'S1'"
mask = { phone = "partial(3,4)", id_no = "hide" }
commands = ["read"]

[roles.store_s1_writer]
scope = "home_store = 'S1'"
commands = ["write"]

[roles.guide]
scope = "ALL"
mask = { phone = "hash", id_no = "hide" }
commands = ["read", "export"]
"#;

/// The users, their roles, and what the test expects of them.
struct User {
    name: &'static str,
    roles: &'static str,
    read: bool,
    write: bool,
    admin: bool,
    export: bool,
    scoped: bool,
    masked: &'static [&'static str],
}

const USERS: &[User] = &[
    User {
        name: "lin",
        roles: r#"["store_s1"]"#,
        read: true,
        write: false,
        admin: false,
        export: false,
        scoped: true,
        masked: &["phone", "id_no"],
    },
    User {
        name: "wang",
        roles: r#"["store_s1_writer"]"#,
        read: true,
        write: true,
        admin: false,
        export: false,
        scoped: true,
        masked: &[],
    },
    User {
        name: "guide",
        roles: r#"["guide"]"#,
        read: true,
        write: false,
        admin: false,
        export: true,
        scoped: false,
        masked: &["phone", "id_no"],
    },
    User {
        name: "reader",
        roles: r#"["read"]"#,
        read: true,
        write: false,
        admin: false,
        export: false,
        scoped: false,
        masked: &[],
    },
    User {
        name: "boss",
        roles: r#"["admin"]"#,
        read: true,
        write: true,
        admin: true,
        export: true,
        scoped: false,
        masked: &[],
    },
];

fn config(dir: &std::path::Path) -> String {
    let key = dir.join("mask.key");
    std::fs::write(&key, b"0123456789abcdef0123456789abcdef").unwrap();
    let exports = dir.join("exports");
    std::fs::create_dir_all(&exports).unwrap();
    let mut text = format!(
        "export_dir = \"{}\"\n[mask]\nsecret_file = \"{}\"\n{ROLES}",
        exports.display(),
        key.display()
    );
    for user in USERS {
        text.push_str(&format!(
            "[[users]]\nname = \"{}\"\npassword_hash = \"{}\"\nroles = {}\n",
            user.name,
            support::password_hash(user.name),
            user.roles
        ));
    }
    text
}

fn login(server: &Server, user: &str) -> redis::Connection {
    server.login(user, user, true).unwrap()
}

/// What one request of the matrix is, and whether `user` may run it with `field`.
fn expected(user: &User, request: &str, field: &str) -> bool {
    let masked = user.masked.contains(&field);
    match request {
        "count_eq" | "breakdown" => user.read && !masked,
        "count_null" | "find" | "get" => user.read,
        "export" => user.export,
        "define" => user.admin,
        // a scoped writer writes members of its scope only (M0 is in S1)
        "set_inside" => user.write,
        "set_outside" => user.write && !user.scoped,
        // a stream, its figures and consumer groups are cut to the scope
        "xlen" | "xinfo" => user.read,
        // an identifier lookup answers within the scope (wechat is masked for nobody)
        "lookup" => user.read,
        _ => unreachable!(),
    }
}

fn request(name: &str, field: &str, n: usize) -> redis::Cmd {
    let query = |text: String| {
        let mut c = cmd("QUERY");
        c.arg(text);
        c
    };
    match name {
        "count_eq" => query(format!("COUNT {field} = '{}'", phone(0))),
        "count_null" => query(format!("COUNT {field} IS NULL")),
        "find" => query(format!("FIND ALL SHOW {field} LIMIT 100")),
        "breakdown" => query(format!("BREAKDOWN ALL BY {field}")),
        "export" => query(format!("EXPORT ALL SHOW {field} TO 'out{n}.csv'")),
        "define" => query(format!("DEFINE GROUP g{n} AS {field} IS NOT NULL")),
        "get" => {
            let mut c = cmd("MEMBER.GET");
            c.arg("M0");
            c
        }
        "set_inside" | "set_outside" => {
            let mut c = cmd("MEMBER.SET");
            c.arg(if name == "set_inside" { "M0" } else { "M1" })
                .arg("note")
                .arg("x");
            c
        }
        "xlen" => {
            let mut c = cmd("XLEN");
            c.arg("group:g0");
            c
        }
        "xinfo" => {
            let mut c = cmd("XINFO");
            c.arg("GROUPS").arg("group:g0");
            c
        }
        "lookup" => {
            let mut c = cmd("ID.LOOKUP");
            c.arg("wechat").arg("x");
            c
        }
        _ => unreachable!(),
    }
}

#[test]
fn every_role_command_and_field_works_as_specified_or_is_refused_with_noperm() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    database(&db);
    let config = config(dir.path());
    let server = Server::start(&db, Some(&config));
    let mut admin = login(&server, "boss");
    let _: R = cmd("QUERY")
        .arg("DEFINE GROUP g0 AS home_store = 'S1'")
        .query(&mut admin)
        .unwrap();
    let _: R = cmd("QUERY")
        .arg("DEFINE IDENTIFIER wechat")
        .query(&mut admin)
        .unwrap();
    let canaries: Vec<String> = (0..MEMBERS).flat_map(|m| [phone(m), id_no(m)]).collect();
    let requests = [
        "count_eq",
        "count_null",
        "find",
        "breakdown",
        "export",
        "define",
        "get",
        "set_inside",
        "set_outside",
        "xlen",
        "xinfo",
        "lookup",
    ];
    let mut n = 0;
    let mut replies: HashMap<&str, Vec<String>> = HashMap::new();
    for user in USERS {
        let mut con = login(&server, user.name);
        for field in ["city", "phone", "id_no"] {
            for name in requests {
                n += 1;
                let reply: redis::RedisResult<R> = request(name, field, n).query(&mut con);
                let allowed = expected(user, name, field);
                let what = format!("{} {name} {field}: {reply:?}", user.name);
                match &reply {
                    Err(e) if e.code() == Some("NOPERM") => assert!(!allowed, "{what}"),
                    // allowed: anything but NOPERM (an unknown identifier value is an answer)
                    Err(e) => assert!(
                        allowed && matches!(name, "xlen" | "xinfo" | "lookup"),
                        "{what}: {e}"
                    ),
                    Ok(_) => assert!(allowed, "{what}"),
                }
                replies.entry(user.name).or_default().push(what);
            }
        }
    }
    // canaries never reach a role that masks them: replies, errors, exported files
    for user in USERS.iter().filter(|u| !u.masked.is_empty()) {
        for reply in &replies[user.name] {
            for canary in &canaries {
                assert!(!reply.contains(canary.as_str()), "{reply} shows {canary}");
            }
        }
    }
    for entry in std::fs::read_dir(dir.path().join("exports")).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        if text.contains("member_id,phone") && !text.contains(&phone(0)) {
            // the guide's export: phones as keyed hashes
            assert!(!canaries.iter().any(|c| text.contains(c.as_str())));
        }
    }
    // the store's view: its members only, NOT inside it; outside members do not exist
    let mut lin = login(&server, "lin");
    let count = |con: &mut redis::Connection, segment: &str| -> i64 {
        cmd("QUERY")
            .arg(format!("COUNT {segment}"))
            .query(con)
            .unwrap()
    };
    assert_eq!(count(&mut lin, "ALL"), (MEMBERS / 2) as i64);
    assert_eq!(
        count(&mut lin, "NOT home_store = 'S2'"),
        (MEMBERS / 2) as i64
    );
    assert_eq!(count(&mut lin, "home_store = 'S2'"), 0);
    let outside: R = cmd("MEMBER.GET").arg("M1").query(&mut lin).unwrap();
    let unknown: R = cmd("MEMBER.GET").arg("NOBODY").query(&mut lin).unwrap();
    assert_eq!(outside, unknown);
    let m0: HashMap<String, R> =
        redis::from_redis_value(cmd("MEMBER.GET").arg("M0").query::<R>(&mut lin).unwrap()).unwrap();
    assert_eq!(m0["phone"], R::BulkString(b"139****0000".to_vec()));
    assert!(!m0.contains_key("id_no"));
    // INFO tells a scoped user nothing of the whole database
    let info: String = cmd("INFO").query(&mut lin).unwrap();
    assert!(!info.contains("members:"), "{info}");
    let info: String = cmd("INFO").query(&mut login(&server, "boss")).unwrap();
    assert!(info.contains(&format!("members:{MEMBERS}")), "{info}");
    // a group's stream is cut to the store: its snapshot holds the store's members
    let mut boss = login(&server, "boss");
    let _: R = cmd("QUERY")
        .arg("DEFINE GROUP everyone AS ALL")
        .query(&mut boss)
        .unwrap();
    let (_, members): (String, Vec<String>) = cmd("GROUP.SNAPSHOT")
        .arg("everyone")
        .query(&mut lin)
        .unwrap();
    assert_eq!(members.len(), MEMBERS / 2);
    // the store's writer keeps a consumer group of its own on the group's stream
    let mut wang = login(&server, "wang");
    let () = cmd("XGROUP")
        .arg("CREATE")
        .arg("group:everyone")
        .arg("crm")
        .arg("$")
        .query(&mut wang)
        .unwrap();
    // the writer moves M0 out of its store: M0 leaves its view
    let () = cmd("MEMBER.SET")
        .arg("M0")
        .arg("home_store")
        .arg("S2")
        .query(&mut wang)
        .unwrap();
    assert_eq!(count(&mut wang, "ALL"), (MEMBERS / 2 - 1) as i64);
    // ... and the store's stream of the group: an exit with cause scope, which the
    // admin's stream does not have (M0 is still in the group)
    let range = |con: &mut redis::Connection| support::xrange_fields(con, "group:everyone");
    let seen = range(&mut lin);
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(
        (
            seen[0]["member"].as_str(),
            seen[0]["op"].as_str(),
            seen[0]["cause"].as_str()
        ),
        ("M0", "exit", "scope")
    );
    assert!(range(&mut boss).iter().all(|e| e["member"] != "M0"));
    // ... which the writer's consumer group delivers, and acknowledges
    type Read = Vec<(String, Vec<(String, HashMap<String, String>)>)>;
    let read: Read = cmd("XREADGROUP")
        .arg("GROUP")
        .arg("crm")
        .arg("till-1")
        .arg("STREAMS")
        .arg("group:everyone")
        .arg(">")
        .query(&mut wang)
        .unwrap();
    let (id, fields) = &read[0].1[0];
    assert_eq!(
        (fields["member"].as_str(), fields["cause"].as_str()),
        ("M0", "scope")
    );
    let acked: i64 = cmd("XACK")
        .arg("group:everyone")
        .arg("crm")
        .arg(id)
        .query(&mut wang)
        .unwrap();
    assert_eq!(acked, 1);
    // XINFO: the store's view, its own consumer groups only
    let _: R = cmd("XGROUP")
        .arg("CREATE")
        .arg("group:everyone")
        .arg("hq")
        .arg("$")
        .query(&mut boss)
        .unwrap();
    let info: Vec<HashMap<String, redis::Value>> = cmd("XINFO")
        .arg("GROUPS")
        .arg("group:everyone")
        .query(&mut wang)
        .unwrap();
    let names: Vec<String> = info
        .iter()
        .map(|g| redis::from_redis_value(g["name"].clone()).unwrap())
        .collect();
    assert_eq!(names, ["crm"]);
    let stream: HashMap<String, redis::Value> = cmd("XINFO")
        .arg("STREAM")
        .arg("group:everyone")
        .query(&mut lin)
        .unwrap();
    assert_eq!(stream["length"], redis::Value::Int(1));
    let e = cmd("TAG.ADD")
        .arg("M0")
        .arg("vip")
        .query::<R>(&mut wang)
        .unwrap_err();
    assert_eq!(e.code(), Some("NOPERM"));
    let (_, log) = server.stop();
    for canary in &canaries {
        assert!(
            !log.contains(canary.as_str()),
            "the log shows {canary}: {log}"
        );
    }
}

#[test]
fn configs_with_bad_roles_refuse_the_start_naming_role_field_and_position() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    database(&db);
    let user = |roles: &str| {
        format!(
            "[[users]]\nname = \"lin\"\npassword_hash = \"{}\"\nroles = {roles}\n",
            "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaA"
        )
    };
    for (config, words) in [
        (
            format!(
                "[roles.s1]\nscope = \"home_store = \"\ncommands = [\"read\"]\n{}",
                user("[\"s1\"]")
            ),
            vec!["role 's1'", "scope", "at character 14"],
        ),
        (
            format!(
                "[roles.s1]\nscope = \"home_stroe = 'S1'\"\ncommands = [\"read\"]\n{}",
                user("[\"s1\"]")
            ),
            vec!["role 's1'", "home_stroe", "home_store"],
        ),
        (
            format!(
                "[roles.s1]\nscope = \"ALL\"\nmask = {{ phone = \"stars\" }}\n{}",
                user("[\"s1\"]")
            ),
            vec!["role 's1'", "field 'phone'", "unknown mask 'stars'"],
        ),
        (
            format!(
                "[roles.s1]\nscope = \"ALL\"\nmask = {{ fone = \"hide\" }}\n{}",
                user("[\"s1\"]")
            ),
            vec!["role 's1'", "field 'fone'"],
        ),
        (
            format!(
                "[roles.s1]\nscope = \"ALL\"\nmask = {{ phone = \"hash\" }}\n{}",
                user("[\"s1\"]")
            ),
            vec!["role 's1'", "secret_file"],
        ),
        (
            format!(
                "[roles.s1]\nscope = \"ALL\"\ncommands = [\"read\", \"root\"]\n{}",
                user("[\"s1\"]")
            ),
            vec!["role 's1'", "commands[1]", "root"],
        ),
        (
            user("[\"read\", \"s9\"]"),
            vec!["user 'lin'", "roles[1]", "s9"],
        ),
    ] {
        let err = Server::try_start(&db, Some(&config)).err().expect(&config);
        for word in words {
            assert!(err.contains(word), "{config}\n-> {err}\nmissing {word}");
        }
    }
}
