#!/usr/bin/env python3
"""memberdb's answers against its compiled SQL run in ClickHouse (chdb), on the same files.

Loads DATA_DIR (members, events, tags as `memberdb gen` writes them; with --identities also
the identity observations, so answers are over merged profiles) into a database, adds events
with an integer and a time property (some at equal times within a member), defines a few
groups and traits of every kind (a sum, a bucket, QUANTILE of a sum and of a CASE, CASE, FIRST), generates a corpus
of random statements from what the data holds (every form the compiler accepts: comparisons
of each attribute type, IN, BETWEEN, IS NULL, tags, DID with WHERE, counts and windows,
groups, aggregates of every function with WHERE, windows and WITHIN ANY, DAYS SINCE, BUCKET,
traits, sequences with THEN / THEN NOT, WITHIN, MATCHING; AND / OR / NOT; COUNT, FIND with
LIMIT and SHOW of attributes and traits, BREAKDOWN by attributes, traits, computed values and
`p OF e`), runs them in memberdb (`memberdb query --format json`) and compiles them
(`memberdb compile --format json`), runs the SQL in embedded ClickHouse over the database's
Parquet files, and fails if any answer differs. A share of them also runs over MergeTree
tables made by `memberdb compile --schema` (`--tables`). Statements the compiler refuses are
listed, and must be refused with a message naming what does not compile.

    python3 bench/peers/check_compile.py DATA_DIR NOW [--statements N] [--seed S] [--identities]

MEMBERDB_BIN is the memberdb binary (default: target/release/memberdb).
"""
import argparse
import datetime as dt
import json
import os
import random
import re
import subprocess
import sys
import tempfile

import redis
from chdb import session as chs

sys.path.insert(0, os.path.dirname(__file__))
import identity_model  # noqa: E402

parser = argparse.ArgumentParser()
parser.add_argument("data")
parser.add_argument("now")
parser.add_argument("--statements", type=int, default=1200)
parser.add_argument("--seed", type=int, default=20261203)
parser.add_argument("--identities", action="store_true")
ARGS = parser.parse_args()
BIN = os.environ.get("MEMBERDB_BIN", "target/release/memberdb")
rng = random.Random(ARGS.seed)


def memberdb(*args, stdin=None):
    out = subprocess.run([BIN, *args], check=True, capture_output=True, text=True, input=stdin)
    return out.stdout


def q(text):
    """A single-quoted string of the segment language."""
    return "'" + text.replace("'", "''") + "'"


# --- the database -----------------------------------------------------------------------
work = tempfile.mkdtemp(prefix="memberdb-compile-")
# one embedded ClickHouse for everything (chdb allows one per process)
sess = chs.Session(os.path.join(work, "chdb"))


def rows(sql):
    return [json.loads(line) for line in sess.query(sql, "JSONEachRow").bytes().decode().splitlines() if line]


db = os.path.join(work, "db")
d = ARGS.data
memberdb("load", "--db", db, "--members", f"{d}/members.parquet", "--events", f"{d}/events.parquet",
         "--tags", f"{d}/tags.parquet")
# a tag of a few members: its bitmap state takes ClickHouse's small form (32 values or fewer)
few = os.path.join(work, "few.csv")
with open(few, "w") as f:
    f.write("member_id,tag\n" + "".join(f"{m},rare\n" for m in ["M00000003", "M00000010", "M00000042"]))
memberdb("load", "--db", db, "--tags", few)
# a tag every member of which loses it (over a served database, as a marketing system would
# untag): a tag the engine knows with no member, which has no row in the tables' states
gone = os.path.join(work, "gone.csv")
GONE = ["M00000005", "M00000007"]
with open(gone, "w") as f:
    f.write("member_id,tag\n" + "".join(f"{m},gone\n" for m in GONE))
memberdb("load", "--db", db, "--tags", gone)
server = subprocess.Popen([BIN, "serve", "--db", db, "--bind", "127.0.0.1:0", "--log-level", "warn"],
                          stdout=subprocess.PIPE)
client = redis.Redis(port=int(server.stdout.readline().decode().split(":")[-1]))
for m in GONE:
    client.execute_command("TAG.DEL", m, "gone")
client.close()
server.terminate()
server.wait()
# events with an integer and a time property, some at equal times within a member (FIRST and
# LAST take the first / last written of them) and some NULL
NOW = dt.datetime.fromisoformat(ARGS.now.replace("Z", "+00:00"))
points = os.path.join(work, "points.csv")
with open(points, "w") as f:
    f.write("member_id,event,ts,earned,paid_at\n")
    last = None
    for i in range(6000):
        if last and rng.random() < 0.3:
            m, t = last
        else:
            m = f"M{rng.randint(1, 4000):08d}"
            t = (NOW - dt.timedelta(days=rng.randint(-3, 300), hours=rng.choice([0, 6]))).replace(minute=0, second=0, microsecond=0)
        last = (m, t)
        earned = "" if rng.random() < 0.1 else str(rng.randint(-50, 500))
        paid = "" if rng.random() < 0.2 else (t + dt.timedelta(hours=rng.randint(0, 72))).strftime("%Y-%m-%dT%H:%M:%SZ")
        f.write(f"{m},earn_points,{t.strftime('%Y-%m-%dT%H:%M:%SZ')},{earned},{paid}\n")
memberdb("load", "--db", db, "--events", points)
if ARGS.identities:
    memberdb("query", "--db", db, identity_model.setup_statements())
    memberdb("load", "--db", db, "--identities", f"{d}/identities.parquet")

GROUPS = {
    "reminder": "DID claim_coupon AND NOT DID redeem_coupon",
    "recent_buyers": "DID purchase AT LEAST 2 TIMES IN LAST 90 DAYS",
    "vip_recent": "TAG 'vip' AND IN GROUP recent_buyers",
}
memberdb("query", "--db", db, "; ".join(f"DEFINE GROUP {g} AS {t}" for g, t in GROUPS.items()))
# computed traits of every kind, each with the tests it takes (kind, literals)
TRAITS = {
    "ltv": ("SUM(amount OF purchase IN LAST 365 DAYS)", "float", ["0", "500", "1000.5", "2500"]),
    "r": ("BUCKET(DAYS SINCE LAST(purchase), 30, 60, 90, 180, 365)", "int", ["1", "2", "3", "6"]),
    "pts": ("SUM(earned OF earn_points)", "int", ["0", "100", "400", "-10"]),
    "m": ("QUANTILE(3, ltv) OVER DID purchase IN LAST 365 DAYS", "int", ["1", "2", "3"]),
    "top_pts": ("QUANTILE(4, pts DESC) OVER TAG 'vip' OR DID earn_points", "int", ["1", "2", "4"]),
    "stage": ("CASE WHEN NOT DID purchase THEN 'prospect' WHEN DAYS SINCE LAST(purchase) > 120 "
              "THEN 'churned' WHEN COUNT(purchase) = 1 THEN 'new' WHEN ltv > 2000 THEN 'vip' END",
              "str", ["'prospect'", "'churned'", "'new'", "'vip'", "'habit'"]),
    "first_store": ("FIRST(store OF purchase)", "str", []),
    # a QUANTILE of a CASE trait (of numbers: the engine ranks numbers only)
    "tier": ("CASE WHEN TAG 'vip' THEN 3 WHEN COUNT(purchase) >= 2 THEN 2 WHEN DID purchase THEN 1 END",
             "int", ["1", "2", "3"]),
    "tier_q": ("QUANTILE(4, tier DESC) OVER DID purchase OR TAG 'vip'", "int", ["1", "2", "4"]),
}
memberdb("query", "--db", db, "; ".join(f"DEFINE TRAIT {t} AS {d}" for t, (d, _, _) in TRAITS.items()))

# --- what the data holds, for realistic literals: the database's own files, typed as it
# typed them (a checkpoint first: `compile --schema` writes one) --------------------------
SCHEMA = memberdb("compile", "--db", db, "--schema", "--tables", "mdb")
# the --tables path: the DDL of `compile --schema`, loaded from the files it names now (a
# later compile may checkpoint again, and a checkpoint removes the files before it)
for ddl in SCHEMA.split(";\n"):
    body = "\n".join(line for line in ddl.splitlines() if not line.startswith("--")).strip()
    if body:
        sess.query(body)


def newest(kind_):
    names = [n for n in os.listdir(db) if n.startswith(kind_ + "-") and n.endswith(".parquet")]
    return os.path.join(db, max(names, key=lambda n: int(n.split("-")[1].split(".")[0])))


members = f"file('{newest('members')}')"
events = f"file('{newest('events')}')"
types = {r["name"]: r["type"] for r in rows(f"DESCRIBE {members}")}
attrs = {n: t for n, t in types.items() if n not in ("member_id", "member_row", "live")}
ev_types = {r["name"]: r["type"] for r in rows(f"DESCRIBE {events}")}
props = {n: t for n, t in ev_types.items() if n not in ("member_id", "event", "ts", "member_row")}
event_names = [r["event"] for r in rows(f"SELECT DISTINCT event FROM {events} ORDER BY event")]
tag_names = [r["tag"] for r in rows(f"SELECT DISTINCT tag FROM file('{newest('tags')}') ORDER BY tag")]
# the emptied tag is in no file; statements still name it
tag_names_in_files = list(tag_names)
tag_names.append("gone")
# the properties each event type has values of
event_props = {e: [] for e in event_names}
for p in props:
    for r in rows(f"SELECT DISTINCT event FROM {events} WHERE `{p}` IS NOT NULL ORDER BY event"):
        event_props[r["event"]].append(p)
with_props = [e for e in event_names if event_props[e]]


def samples(table, column, n=12):
    sql = (f"SELECT DISTINCT toString({column}) AS v FROM {table} WHERE {column} IS NOT NULL "
           f"ORDER BY cityHash64(v) LIMIT {n}")
    return [r["v"] for r in rows(sql)]


attr_values = {a: samples(members, f"`{a}`") for a in attrs}
prop_values = {p: samples(events, f"`{p}`") for p in props}


def kind(ch_type):
    t = ch_type.replace("Nullable(", "")
    for k, prefix in [("ts", "DateTime64"), ("date", "Date32"), ("date", "Date"), ("int", "Int"),
                      ("float", "Float"), ("bool", "Bool"), ("str", "String")]:
        if t.startswith(prefix):
            return k
    return "str"


def literal(k, values):
    """A literal for a column of kind `k`, near the values it holds."""
    v = rng.choice(values) if values else None
    if k == "str":
        return q(v if v is not None and rng.random() < 0.9 else rng.choice(["O'Brien", "zz", ""]))
    if k == "bool":
        return rng.choice(["TRUE", "FALSE"])
    if k == "int":
        base = int(float(v)) if v is not None else 0
        x = base + rng.choice([0, 0, 1, -1, 7])
        return str(x) if rng.random() < 0.8 else f"{x}.5"
    if k == "float":
        base = float(v) if v is not None else 0.0
        return rng.choice([f"{base}", f"{round(base)}", f"{base + 0.25}"])
    if k == "date":
        day = dt.date.fromisoformat(v[:10]) if v else dt.date(2026, 1, 1)
        day += dt.timedelta(days=rng.choice([0, 0, 3, -30]))
        if rng.random() < 0.2:
            return q(f"{day.isoformat()}T{rng.choice(['00:00:00', '12:30:00'])}Z")
        return q(day.isoformat())
    # timestamps
    t = dt.datetime.fromisoformat(v.replace(" ", "T")[:19]) if v else dt.datetime(2026, 1, 1)
    t += dt.timedelta(hours=rng.choice([0, 1, -48]))
    return q(t.strftime("%Y-%m-%d")) if rng.random() < 0.25 else q(t.strftime("%Y-%m-%dT%H:%M:%SZ"))


def test_of(name, k, values):
    """`name <test>` for a value of kind `k`."""
    r = rng.random()
    if r < 0.1:
        return f"{name} IS NULL"
    if r < 0.18:
        return f"{name} IS NOT NULL"
    if k == "bool":
        return f"{name} {rng.choice(['=', '!='])} {literal(k, values)}"
    if r < 0.32:
        return f"{name} IN ({', '.join(literal(k, values) for _ in range(rng.randint(1, 4)))})"
    if r < 0.42 and k != "str":
        a, b = literal(k, values), literal(k, values)
        return f"{name} BETWEEN {a} AND {b}"
    return f"{name} {rng.choice(['=', '!=', '<', '<=', '>', '>='])} {literal(k, values)}"


def filter_expr(depth=0):
    if depth < 2 and rng.random() < 0.3:
        parts = [filter_expr(depth + 1) for _ in range(rng.randint(2, 3))]
        return "(" + f" {rng.choice(['AND', 'OR'])} ".join(parts) + ")"
    if depth < 2 and rng.random() < 0.15:
        return f"NOT ({filter_expr(depth + 1)})"
    p = rng.choice(list(props))
    return test_of(p, kind(props[p]), prop_values[p])


def window():
    r = rng.random()
    if r < 0.45:
        return f" IN LAST {rng.choice([1, 7, 30, 90, 365, 1000])} {rng.choice(['DAYS', 'HOURS', 'WEEKS'])}"
    now = dt.datetime.fromisoformat(ARGS.now.replace("Z", "+00:00"))
    since = (now - dt.timedelta(days=rng.randint(1, 400), hours=rng.randint(0, 23))).strftime("%Y-%m-%dT%H:%M:%SZ")
    before = (now - dt.timedelta(days=rng.randint(0, 60))).strftime("%Y-%m-%d")
    if r < 0.65:
        return f" SINCE {q(since)}"
    if r < 0.8:
        return f" BEFORE {q(before)}"
    return f" SINCE {q(since)} BEFORE {q(before)}"


def did():
    text = f"DID {rng.choice(event_names)}"
    if rng.random() < 0.4:
        f = filter_expr()
        text += f" WHERE {f if f.startswith('(') else '(' + f + ')'}"
    if rng.random() < 0.35:
        text += f" {rng.choice(['AT LEAST', 'AT MOST', 'EXACTLY'])} {rng.choice([1, 2, 3, 5])} TIMES"
    if rng.random() < 0.6:
        text += window()
    return text




def tail(e, counting):
    """An aggregate's WHERE and window (or, counting, sometimes WITHIN ANY)."""
    text = ""
    if rng.random() < 0.3:
        f = filter_expr()
        text += f" WHERE {f if f.startswith('(') else '(' + f + ')'}"
    if counting and rng.random() < 0.2:
        return text + f" WITHIN ANY {rng.choice([1, 3, 7])} {rng.choice(['DAYS', 'HOURS', 'WEEKS'])}", True
    if rng.random() < 0.5:
        text += window()
    return text, False


def aggregate():
    """(value text, kind of its values, sliding)"""
    e = rng.choice(with_props if rng.random() < 0.8 else event_names)
    ps = event_props[e] or list(props)
    r = rng.random()
    if r < 0.2:
        t, sliding = tail(e, True)
        return f"COUNT({e}{t})", "count", sliding
    if r < 0.35:
        what = rng.choice(["DAYS"] + ps)
        t, sliding = tail(e, True)
        return f"COUNT(DISTINCT {what} OF {e}{t})", "count", sliding
    numeric = [p for p in ps if kind(props[p]) in ("int", "float")]
    t, _ = tail(e, False)
    if r < 0.6 and numeric:
        p = rng.choice(numeric)
        f = rng.choice(["SUM", "SUM", "AVG", "MIN", "MAX"])
        return f"{f}({p} OF {e}{t})", ("sum" if f == "SUM" else kind(props[p])) + ":" + p, False
    if r < 0.8:
        p = rng.choice(ps)
        f = rng.choice(["FIRST", "LAST", "MIN", "MAX"])
        return f"{f}({p} OF {e}{t})", kind(props[p]) + ":" + p, False
    return f"{rng.choice(['FIRST', 'LAST'])}({e}{t})", "ts", False


def number_test(name, values, ops=("=", "!=", "<", "<=", ">", ">=")):
    r = rng.random()
    if r < 0.1:
        return f"{name} IN ({', '.join(rng.sample(values, min(len(values), 2)))})"
    if r < 0.2:
        a, b = sorted(rng.sample(values, 2), key=float)
        return f"{name} BETWEEN {a} AND {b}"
    if r < 0.25:
        return f"{name} {rng.choice(['IS NULL', 'IS NOT NULL'])}"
    return f"{name} {rng.choice(ops)} {rng.choice(values)}"


def value_leaf():
    """A comparison of a computed value or a trait."""
    r = rng.random()
    if r < 0.2:
        t = rng.choice(list(TRAITS))
        _, k, lits = TRAITS[t]
        if not lits:
            return test_of(t, "str", prop_values["store"])
        if k == "str":
            return rng.choice([f"{t} = {rng.choice(lits)}", f"{t} != {rng.choice(lits)}",
                               f"{t} IN ({', '.join(rng.sample(lits, 2))})", f"{t} IS NULL"])
        return number_test(t, lits)
    if r < 0.35:
        times = [a for a in attrs if kind(attrs[a]) in ("date", "ts")]
        x = rng.choice([f"LAST({rng.choice(event_names)})", f"FIRST({rng.choice(event_names)})",
                        "MAX(paid_at OF earn_points)", rng.choice(times)])
        days = ["0", "1", "7", "30", "90", "180", "365", "-1"]
        if rng.random() < 0.3:
            return number_test(f"BUCKET(DAYS SINCE {x}, 7, 30, 90, 365)", ["1", "2", "3", "4", "5"])
        return number_test(f"DAYS SINCE {x}", days)
    value, k, sliding = aggregate()
    if sliding:
        return f"{value} {rng.choice(['>=', '>'])} {rng.choice([0, 1, 2, 3])}"
    if k == "count":
        return number_test(value, ["0", "1", "2", "3", "5", "1.5"])
    if k.startswith("sum:"):
        p = k[4:]
        lits = ["0", "100", "250.5", "1000", "5000"] if kind(props[p]) == "float" else ["0", "100", "500", "-5"]
        if rng.random() < 0.2:
            return number_test(f"BUCKET({value}, 0, 100, 1000)", ["1", "2", "3", "4"])
        return number_test(value, lits)
    if k == "ts":
        return test_of(value, "ts", [str(NOW - dt.timedelta(days=d)) for d in (1, 10, 60, 200)])
    kk, p = k.split(":")
    return test_of(value, kk, prop_values[p])


SEQUENCE_PAIRS = [("claim_coupon", "redeem_coupon", "coupon_id"), ("scan_qr", "purchase", "store"),
                  ("view_product", "add_cart", None), ("add_cart", "purchase", None),
                  ("register", "follow", "channel"), ("earn_points", "earn_points", "earned"),
                  ("join_campaign", "booking", "city")]


def sequence():
    a, b, p = rng.choice(SEQUENCE_PAIRS)
    text = f"DID {a}"
    if rng.random() < 0.2:
        f = filter_expr()
        text += f" WHERE {f if f.startswith('(') else '(' + f + ')'}"
    if rng.random() < 0.4:
        text += window()
    text += f" THEN {'NOT ' if rng.random() < 0.4 else ''}{b}"
    if rng.random() < 0.2:
        f = filter_expr()
        text += f" WHERE {f if f.startswith('(') else '(' + f + ')'}"
    if rng.random() < 0.7:
        text += f" WITHIN {rng.choice([1, 2, 7, 30])} {rng.choice(['DAYS', 'HOURS', 'WEEKS'])}"
    if p and rng.random() < 0.5:
        text += f" MATCHING {p}"
    return text


def leaf():
    r = rng.random()
    if r < 0.15:
        return f"TAG {q(rng.choice(tag_names))}"
    if r < 0.35:
        a = rng.choice(list(attrs))
        return test_of(a, kind(attrs[a]), attr_values[a])
    if r < 0.58:
        return did()
    if r < 0.8:
        return value_leaf()
    if r < 0.92:
        return sequence()
    if r < 0.98:
        return f"IN GROUP {rng.choice(list(GROUPS))}"
    return "ALL"


def segment(depth=0):
    r = rng.random()
    if depth < 3 and r < 0.45:
        parts = [segment(depth + 1) for _ in range(rng.randint(2, 3))]
        return "(" + f" {rng.choice(['AND', 'OR'])} ".join(parts) + ")"
    if depth < 3 and r < 0.6:
        return f"NOT {segment(depth + 1)}"
    return leaf()


FUNNELS = [["scan_qr", "follow", "purchase"], ["claim_coupon", "redeem_coupon"],
           ["view_product", "add_cart", "purchase"], ["register", "follow", "purchase", "purchase"],
           ["earn_points", "earn_points", "earn_points"], ["login", "view_product", "add_cart", "purchase"],
           ["claim_coupon", "redeem_coupon", "claim_coupon"]]


def funnel():
    steps = []
    for e in rng.choice(FUNNELS):
        if event_props[e] and rng.random() < 0.2:
            p = rng.choice(event_props[e])
            steps.append(f"{e} WHERE {test_of(p, kind(props[p]), prop_values[p])}")
        else:
            steps.append(e)
    text = f"FUNNEL {', '.join(steps)} WITHIN {rng.choice([1, 3, 7, 30])} {rng.choice(['HOURS', 'DAYS', 'WEEKS'])}"
    if rng.random() < 0.6:
        text += window()
    if rng.random() < 0.3:
        text += f" FOR {segment(2)}"
    return text, steps[0].split()[0], len(steps)


def funnel_statement():
    text, first, n = funnel()
    if rng.random() < 0.3:
        shown = rng.sample(list(attrs) + list(TRAITS), rng.randint(0, 2))
        show = f" SHOW {', '.join(shown)}" if shown else ""
        return f"FIND {text} AT STEP {rng.randint(1, n)}{show} LIMIT {rng.choice([5, 50])}"
    r = rng.random()
    if r < 0.3:
        by = rng.choice([a for a in attrs if kind(attrs[a]) in ("str", "bool", "int")] + ["r", "stage", "m"]
                        + ["BUCKET(COUNT(purchase IN LAST 90 DAYS), 1, 3)"])
        text += f" BY {by}"
    elif r < 0.5 and event_props[first]:
        text += f" BY {rng.choice(event_props[first])} {rng.choice(['FIRST', 'LAST'])} TOUCH"
    return text


def statement():
    r = rng.random()
    if r < 0.08:
        return funnel_statement()
    s = segment()
    if r < 0.7:
        return f"COUNT {s}"
    if r < 0.82:
        shown = rng.sample(list(attrs) + list(TRAITS), rng.randint(0, 3))
        show = f" SHOW {', '.join(shown)}" if shown else ""
        offset = f" OFFSET {rng.choice([0, 3])}" if rng.random() < 0.3 else ""
        return f"FIND {s}{show} LIMIT {rng.choice([1, 5, 20, 200])}{offset}"
    top = f" TOP {rng.choice([3, 10])}" if rng.random() < 0.6 else ""
    columns = [a for a in attrs if kind(attrs[a]) in ("str", "bool", "int", "date")] + \
        [t for t in TRAITS if t != "ltv"] + \
        ["BUCKET(DAYS SINCE LAST(purchase), 30, 90, 180)", "BUCKET(COUNT(purchase IN LAST 365 DAYS), 2, 5)",
         "COUNT(DISTINCT store OF scan_qr)", "LAST(coupon_id OF claim_coupon)", "MIN(earned OF earn_points)",
         "BUCKET(SUM(amount OF purchase), 100, 1000)"]
    r = rng.random()
    if r < 0.15:
        e = rng.choice(with_props)
        return f"BREAKDOWN {s} BY {rng.choice(event_props[e])} OF {e}{top}"
    by = rng.sample(columns, 1 if r < 0.7 else 2)
    return f"BREAKDOWN {s} BY {', '.join(by)}{top}"


# the emptied tag, alone, negated and in a FIND, where statements also run over --tables
FIXED = {0: "COUNT TAG 'gone'", 3: "COUNT NOT TAG 'gone' AND TAG 'vip'",
         6: "FIND TAG 'gone' OR TAG 'rare' SHOW city LIMIT 10"}
corpus = []
seen = set()
while len(corpus) < ARGS.statements:
    s = FIXED.get(len(corpus)) or statement()
    if s not in seen:
        seen.add(s)
        corpus.append(s)
# constructs that do not compile: each refused, naming itself
REFUSED = [
    "COUNT TAG 'vip' OVERLAP 'pool.parquet'",
    "DEFINE GROUP x AS TAG 'vip'",
]
if ARGS.identities:
    REFUSED.append("COUNT HAS IDENTIFIER phone")

script = os.path.join(work, "corpus.mql")
with open(script, "w") as f:
    f.write(";\n".join(corpus))
ours = [json.loads(line) for line in memberdb("query", "--db", db, "--now", ARGS.now, "--format", "json",
                                                "--file", script).splitlines()]
assert len(ours) == len(corpus), f"{len(ours)} answers for {len(corpus)} statements"
tables = [json.loads(line) for line in memberdb("compile", "--db", db, "--now", ARGS.now, "--format", "json",
                                                  "--tables", "mdb", "--file", script).splitlines()]
# last: the SQL over the files names the newest checkpoint's (a compile checkpoints first when
# the log holds changes, e.g. a group's time-driven changes logged at open, and a checkpoint
# removes the files before it)
compiled = [json.loads(line) for line in memberdb("compile", "--db", db, "--now", ARGS.now, "--format", "json",
                                                    "--file", script).splitlines()]


# --- answers in a common shape ------------------------------------------------------------
def norm(v):
    if v is None or isinstance(v, bool):
        return v
    if isinstance(v, (int, float)):
        return float(v)
    s = str(v)
    m = re.fullmatch(r"(\d{4}-\d\d-\d\d)[T ](\d\d:\d\d:\d\d)(\.\d+)?Z?", s)
    if m:
        frac = (m.group(3) or ".0").rstrip("0").rstrip(".")
        return f"{m.group(1)}T{m.group(2)}{frac}"
    try:
        return float(s)
    except ValueError:
        return s


def mine(statement, answer):
    if "funnel" in answer:
        return ("funnel", [[norm(x) for x in row.values()] for row in answer["funnel"]])
    if "count" in answer:
        return ("count", answer["count"])
    if "members" in answer:
        return ("find", [[norm(x) for x in m.values()] for m in answer["members"]])
    lines = answer["breakdown"]
    return ("breakdown", [[norm(x) for x in line.values()] for line in lines])


def theirs(statement, result):
    if statement.startswith("FUNNEL"):
        return ("funnel", [[norm(x) for x in r.values()] for r in result])
    if statement.startswith("COUNT"):
        return ("count", int(result[0]["count"]))
    if statement.startswith("FIND"):
        return ("find", [[norm(x) for x in r.values()] for r in result])
    return ("breakdown", [[norm(x) for x in r.values()][:-1] + [float(r["count"])] for r in result])


def fix_breakdown(answer):
    kind_, lines = answer
    if kind_ == "breakdown":
        return kind_, [line[:-1] + [float(line[-1])] for line in lines]
    return answer


SETTINGS = {"output_format_json_quote_64bit_integers": 0, "date_time_output_format": "iso"}


def run(sess, sql):
    sql = sql.rstrip().rstrip(";")
    sql += ", " + ", ".join(f"{k} = {v!r}" for k, v in SETTINGS.items())
    try:
        out = sess.query(sql, "JSONEachRow").bytes().decode()
    except Exception as e:
        print(f"FAIL in chdb: {e}\n  sql {sql}")
        raise
    return [json.loads(line) for line in out.splitlines() if line]


failures = 0
kinds = {}
gone_over_tables = 0
for i, (statement, answer, c, t) in enumerate(zip(corpus, ours, compiled, tables)):
    if "error" in c:
        failures += 1
        print(f"FAIL does not compile: {statement}\n  {c['error']}")
        continue
    want = fix_breakdown(mine(statement, answer))
    got = theirs(statement, run(sess, c["sql"]))
    if i % 3 == 0:
        via_tables = theirs(statement, run(sess, t["sql"]))
        if via_tables != got:
            failures += 1
            print(f"FAIL over --tables: {statement}\n  files {got}\n  tables {via_tables}")
        gone_over_tables += "TAG 'gone'" in statement
    kinds[want[0]] = kinds.get(want[0], 0) + 1
    if want[1]:
        kinds["non-empty"] = kinds.get("non-empty", 0) + 1
    if want != got:
        failures += 1
        print(f"FAIL {statement}\n  memberdb {str(want)[:400]}\n  chdb     {str(got)[:400]}\n  sql {c['sql']}")

refused_ok = 0
path = os.path.join(work, "refused.mql")
for statement in REFUSED:
    with open(path, "w") as f:
        f.write(statement)
    (line,) = memberdb("compile", "--db", db, "--now", ARGS.now, "--format", "json", "--file", path).splitlines()
    answer = json.loads(line)
    ok = "error" in answer and ("does not compile" in answer["error"] or "only COUNT" in answer["error"])
    refused_ok += ok
    failures += not ok
    print(f"{'ok  ' if ok else 'FAIL'} refused: {statement}: {answer.get('error', answer.get('sql', '')[:80])}")

# --- export-bitmaps: every tag's state equals the tags file's bitmap, loaded either way;
# every group's equals memberdb's count, alone and with a tag ------------------------------
out = os.path.join(work, "bitmaps")
memberdb("export-bitmaps", "--db", db, "--out", out)
STATE = "AggregateFunction(groupBitmap, UInt32)"
tsv = (f"SELECT name, CAST(unhex(state) AS {STATE}) AS b FROM file('{{}}', TSV, 'name String, state String')")
rb = f"SELECT name, members AS b FROM file('{{}}', RowBinary, 'name String, members {STATE}')"
tags_file = newest("tags")
tag_check = rows(
    f"SELECT t.name AS name, bitmapCardinality(t.b) AS n, bitmapCardinality(r.b) AS via_rowbinary, "
    f"bitmapXorCardinality(t.b, p.b) AS differ FROM ({tsv.format(out + '/tags.tsv')}) t "
    f"JOIN ({rb.format(out + '/tags.rowbinary')}) r ON r.name = t.name "
    f"JOIN (SELECT tag AS name, groupBitmapState(member_row) AS b FROM file('{tags_file}') GROUP BY tag) p "
    f"ON p.name = t.name"
)
bad = [r for r in tag_check if r["differ"] != 0 or r["n"] != r["via_rowbinary"]]
small = [r["name"] for r in tag_check if r["n"] <= 32]
if bad or len(tag_check) != len(tag_names_in_files) or not small:
    failures += 1
    print(f"FAIL tag bitmap states: {bad[:5]}, {len(tag_check)} of {len(tag_names_in_files)} tags, small {small}")
group_check = {r["name"]: r for r in rows(
    f"SELECT g.name AS name, bitmapCardinality(g.b) AS n, bitmapAndCardinality(g.b, t.b) AS vip "
    f"FROM ({tsv.format(out + '/groups.tsv')}) g, ({tsv.format(out + '/tags.tsv')}) t WHERE t.name = 'vip'"
)}
counts = [json.loads(line)["count"] for line in memberdb(
    "query", "--db", db, "--format", "json",
    "; ".join(f"COUNT IN GROUP {g}; COUNT IN GROUP {g} AND TAG 'vip'" for g in GROUPS)).splitlines()]
for i, g in enumerate(GROUPS):
    got = (group_check.get(g, {}).get("n"), group_check.get(g, {}).get("vip"))
    if got != (counts[2 * i], counts[2 * i + 1]):
        failures += 1
        print(f"FAIL group {g}: states {got}, memberdb {counts[2 * i]}, with vip {counts[2 * i + 1]}")
print(f"bitmap states: {len(tag_check)} tags ({len(small)} in the small form) equal the tags file, "
      f"loaded from TSV and RowBinary; {len(GROUPS)} groups equal memberdb's counts, alone and with a tag")

if not gone_over_tables:
    failures += 1
    print("FAIL no statement over --tables named the emptied tag")
shape = ", ".join(f"{n} {k}" for k, n in sorted(kinds.items()))
# a corpus of empty answers would prove little
if kinds.get("non-empty", 0) < len(corpus) // 2:
    failures += 1
    print(f"FAIL only {kinds.get('non-empty', 0)} of {len(corpus)} answers are not empty or zero")
print(f"{len(corpus)} statements ({shape}) equal in memberdb and as compiled SQL in chdb "
      f"(every 3rd also over --tables, {gone_over_tables} of them naming the emptied tag), {refused_ok} of {len(REFUSED)} refused as they should"
      if not failures else f"{failures} failures")
sys.exit(1 if failures else 0)
