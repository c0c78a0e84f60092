#!/usr/bin/env python3
"""Cross-check memberdb against DuckDB on the same Parquet files.

Runs every named question of bench/src/workloads.rs in memberdb (the `answers` binary) and
the same question written in SQL here, on the same members / events / tags files, and fails
if any answer differs.

    python3 bench/peers/check_duckdb.py DATA_DIR [NOW] [--identities]

The SQL spells out DESIGN section 3: the live members are every member_id in any file; a
comparison never matches NULL, and NOT is a complement, so every predicate is wrapped in
coalesce(..., false) to get two-valued logic; windows are relative to NOW.

With --identities, memberdb declares the identifier types of identity_model.py and loads
DATA_DIR/identities.parquet, so every answer is over merged profiles (DESIGN section 11); here
the model replays the same observations into an id map, and the views below are the files
joined to it: a profile's events and tags are its member ids' together, each attribute by its
merge rule over its member ids in row order (NULL never counts). The profiles themselves
(every live member, the ids merged into it, its identifiers) must be the model's too.
"""
import csv
import json
import os
import subprocess
import sys
import tempfile

import duckdb

import identity_model

ARGS = [a for a in sys.argv[1:] if a != "--identities"]
IDENTITIES = "--identities" in sys.argv[1:]
DATA = ARGS[0]
NOW = ARGS[1] if len(ARGS) > 1 else "2026-11-01T00:00:00Z"
NOW_SQL = f"TIMESTAMPTZ '{NOW.replace('T', ' ').replace('Z', '+00')}'"


def p(cond):
    """A predicate in two-valued logic: NULL counts as false."""
    return f"coalesce(({cond}), false)"


def tag(t):
    return f"member_id IN (SELECT member_id FROM tags WHERE tag = '{t}')"


def did(event, where="true", having="count(*) >= 1", window="true"):
    return (
        f"member_id IN (SELECT member_id FROM events WHERE event = '{event}' "
        f"AND {p(where)} AND ({window}) GROUP BY member_id HAVING {having})"
    )


def last(n, unit):
    return f"ts > {NOW_SQL} - INTERVAL {n} {unit} AND ts <= {NOW_SQL}"


def agg(expr, event, where="true", window="true", empty="NULL"):
    """A member's aggregate of its events (DESIGN section 9): `empty` without any."""
    return (
        f"coalesce((SELECT {expr} FROM events e WHERE e.member_id = members.member_id "
        f"AND e.event = '{event}' AND {p(where)} AND ({window})), {empty})"
    )


def edge(column, event, last=False):
    """FIRST / LAST: the first (last) non-NULL value in time order, equal times in the
    order written (the file's row order)."""
    order = "DESC" if last else "ASC"
    return (
        f"(SELECT e.{column} FROM events e WHERE e.member_id = members.member_id "
        f"AND e.event = '{event}' AND e.{column} IS NOT NULL "
        f"ORDER BY e.ts {order}, e.row {order} LIMIT 1)"
    )


def days_since(t):
    return f"floor((epoch_us({NOW_SQL}) - epoch_us({t})) / 86400000000)"


def bucket(x, cuts):
    return "(1 + " + " + ".join(f"CAST({x} >= {c} AS INTEGER)" for c in cuts) + ")"


LAST_PURCHASE = agg("max(e.ts)", "purchase")

# SQL literals used inside f-strings (Python 3.11 allows no backslash there)
C0 = "city = 'Shanghai'"
C1 = "city = 'Shanghai'"
C2 = "level IN ('gold', 'platinum')"
C3 = "gender = 'F'"
C4 = "birthday >= DATE '1990-01-01'"
C5 = "coupon_id = 'CP-XMAS-50'"
C6 = "store = 'S001'"

COUNTS = {
    "q1_two_tags_and_city": f"{tag('vip')} AND NOT {tag('churn_risk')} AND {p(C0)}",
    "q2_claimed_not_redeemed_city": f"{did('claim_coupon')} AND NOT {did('redeem_coupon')} AND {p(C1)}",
    "q3_purchase_30d_level_in": f"{did('purchase', window=last(30, 'DAY'))} AND {p(C2)}",
    "q4_purchase_3_times_90d": did("purchase", having="count(*) >= 3", window=last(90, "DAY")),
    "q5_amount_filter_points_between": f"{did('purchase', where='amount >= 500', window=last(365, 'DAY'))} AND {p('points BETWEEN 1000 AND 5000')}",
    "not_gender_f": f"NOT {p(C3)}",
    "gender_ne_f": p("gender != 'F'"),
    "gender_is_null": "gender IS NULL",
    "birthday_null_or_after_1990": f"birthday IS NULL OR {p(C4)}",
    "birthday_before_timestamp": p("CAST(birthday AS TIMESTAMPTZ) < TIMESTAMPTZ '1990-06-15 12:00:00+00'"),
    "birthday_le_timestamp": p("CAST(birthday AS TIMESTAMPTZ) <= TIMESTAMPTZ '1990-06-15 12:00:00+00'"),
    "joined_since_timestamp": p("joined_at >= TIMESTAMPTZ '2026-06-01 12:00:00+00'"),
    "spend_and_subscribed": f"{p('lifetime_spend > 1000.5')} AND {p('subscribed = true')}",
    "not_subscribed_true": f"NOT {p('subscribed = true')}",
    "points_gt_float": p("points > 999.5"),
    "city_lt_text": p("city < 'Dalian'"),
    "purchase_at_most_2_first_half": did(
        "purchase",
        having="count(*) BETWEEN 1 AND 2",
        window="ts >= TIMESTAMPTZ '2026-01-01 00:00:00+00' AND ts < TIMESTAMPTZ '2026-07-01 00:00:00+00'",
    ),
    "claims_not_xmas_exactly_2": did("claim_coupon", where=f"NOT {p(C5)}", having="count(*) = 2"),
    "purchase_store_or_big": did("purchase", where=f"{p(C6)} OR {p('amount > 2000')}", window=last(52 * 7, "DAY")),
    "scan_qr_last_36_hours": did("scan_qr", window=last(36, "HOUR")),
    "scan_qr_at_least_2_last_36_hours": did("scan_qr", having="count(*) >= 2", window=last(36, "HOUR")),
    "purchase_exactly_1_last_10_days": did("purchase", having="count(*) = 1", window=last(10, "DAY")),
    "never_purchased": f"NOT {did('purchase')}",
    "wide_or_of_tags_not_vip": "(" + " OR ".join(tag(t) for t in ["foodie", "pet_owner", "fitness", "摄影爱好者", "scalper_suspect"]) + f") AND NOT {tag('vip')}",
    "phone_is_not_null_and_email_null": "phone IS NOT NULL AND email IS NULL",
    "all_members": "true",
    "value_spend_365d_ge_1000": agg("sum(e.amount)", "purchase", window=last(365, "DAY"), empty="0") + " >= 1000",
    "value_spend_365d_lt_100": agg("sum(e.amount)", "purchase", window=last(365, "DAY"), empty="0") + " < 100",
    "value_no_big_purchase_90d": agg("count(*)", "purchase", where="e.amount >= 500", window=last(90, "DAY"), empty="0") + " = 0",
    "value_distinct_stores_ge_3": agg("count(DISTINCT e.store)", "purchase", empty="0") + " >= 3",
    "value_login_days_30d_ge_4": agg("count(DISTINCT CAST(e.ts AS DATE))", "login", window=last(30, "DAY"), empty="0") + " >= 4",
    "value_avg_amount_ge_300": p(agg("avg(e.amount)", "purchase") + " >= 300"),
    "value_max_amount_30d_shanghai": f"{p(agg('max(e.amount)', 'purchase', window=last(30, 'DAY')) + ' > 900')} AND {p(C0)}",
    "value_min_store_is_s001": p(agg("min(e.store)", "scan_qr") + " = 'S001'"),
    "value_last_purchase_before_2026": p(LAST_PURCHASE + " < TIMESTAMPTZ '2026-01-01 00:00:00+00'"),
    "value_recency_gt_180": p(days_since(LAST_PURCHASE) + " > 180"),
    "value_recency_bucket_1": p(bucket(days_since(LAST_PURCHASE), [30, 60, 90, 180, 365]) + " = 1"),
    "value_joined_21_to_120_days": p(days_since("joined_at") + " BETWEEN 21 AND 120"),
    "value_first_follow_channel": p(edge("channel", "follow") + " = 'store_qr'"),
    "value_last_redeem_store_is_null": edge("store", "claim_coupon", last=True) + " IS NULL",
    # WITHIN ANY: some interval [t, t + 1 day) starting at an event holds two stores
    "value_two_stores_within_any_day": (
        "member_id IN (SELECT a.member_id FROM events a JOIN events b ON b.member_id = a.member_id "
        "AND b.event = 'purchase' AND b.ts >= a.ts AND b.ts < a.ts + INTERVAL 1 DAY "
        "WHERE a.event = 'purchase' GROUP BY a.member_id, a.row HAVING count(DISTINCT b.store) >= 2)"
    ),
    "value_scalper_rule": (
        "member_id IN (SELECT a.member_id FROM events a JOIN events b ON b.member_id = a.member_id "
        "AND b.event = 'join_campaign' AND b.ts >= a.ts AND b.ts < a.ts + INTERVAL 3 DAY "
        "WHERE a.event = 'join_campaign' GROUP BY a.member_id, a.row HAVING count(DISTINCT b.city) >= 2)"
    ),
    "value_purchase_count_bucket": p(bucket(agg("count(*)", "purchase", empty="0"), [1, 3, 6]) + " IN (2, 3)"),
}

BREAKDOWNS = {
    "q6_breakdown_claimed_not_redeemed_by_city": (f"{did('claim_coupon')} AND NOT {did('redeem_coupon')}", "city"),
    "breakdown_vip_by_gender": (tag("vip"), "gender"),
}


# BREAKDOWN by several columns or values (bench/src/workloads.rs `breakdown_statements`): a
# row per member of the segment with its columns, grouped.
RECENCY = bucket(days_since(LAST_PURCHASE), [30, 90, 180])
FREQUENCY = bucket(agg("count(*)", "purchase", window=last(365, "DAY"), empty="0"), [2, 5])
SPEND = bucket(agg("sum(e.amount)", "purchase", window=last(365, "DAY"), empty="0"), [500, 2000, 5000])
BREAKDOWN_STATEMENTS = {
    "breakdown_recency_by_frequency": ([RECENCY, FREQUENCY], did("purchase", window=last(365, "DAY"))),
    "breakdown_vip_by_gender_level": (["gender", "level"], tag("vip")),
    "breakdown_all_by_spend": ([SPEND], "true"),
}


# Traits of bench/src/workloads.rs `TRAIT_DEFINITIONS`, kept by the engine across a clock
# move, written here from DESIGN section 9 (QUANTILE with SQL's rank(): 1 + the number of
# strictly smaller values, ties sharing it).
PURCHASE_365 = did("purchase", window=last(365, "DAY"))
LTV = agg("sum(e.amount)", "purchase", window=last(365, "DAY"), empty="0")
COUNT_365 = agg("count(*)", "purchase", window=last(365, "DAY"), empty="0")
FIRST_PURCHASE = agg("min(e.ts)", "purchase")
TRAIT_R = bucket(days_since(LAST_PURCHASE), [30, 60, 90, 180, 365])
TRAIT_F = bucket(COUNT_365, [2, 4])
TRAIT_M = "(SELECT s.score FROM m_scores s WHERE s.member_id = members.member_id)"
TRAIT_Q4 = "(SELECT s.score FROM q4_scores s WHERE s.member_id = members.member_id)"
TRAIT_STAGE = (
    f"CASE WHEN NOT {did('purchase')} THEN 'prospect' "
    f"WHEN {p(days_since(LAST_PURCHASE) + ' > 330')} THEN 'churned' "
    f"WHEN {p(days_since(LAST_PURCHASE) + ' > 240')} THEN 'dormant' "
    f"WHEN {p(agg('count(*)', 'purchase', empty='0') + ' = 1')} "
    f"AND {p(days_since(FIRST_PURCHASE) + ' <= 120')} THEN 'second_purchase_window' "
    "ELSE 'habit' END"
)
SCORES = {
    "m_scores": (3, LTV, "ASC", PURCHASE_365),
    "q4_scores": (4, COUNT_365, "DESC", "true"),
}
TRAIT_STATEMENTS = {
    "trait_rfm": ([TRAIT_R, TRAIT_F, TRAIT_M], PURCHASE_365),
    "trait_stage": ([TRAIT_STAGE], "true"),
    "trait_q4": ([TRAIT_Q4], "true"),
}
TRAIT_COUNTS = {
    "trait_ltv_ge_1000": p(LTV + " >= 1000"),
    "trait_dormant_shanghai": p(TRAIT_STAGE + " = 'dormant'") + f" AND {p(C0)}",
    "trait_group_loyal": f"{p(TRAIT_M + ' = 3')} AND {p(TRAIT_F + ' >= 2')}",
    "trait_loyal": f"{p(TRAIT_M + ' = 3')} AND {p(TRAIT_F + ' >= 2')}",
}


# Sequences and funnels (DESIGN section 10), asked at NOW and 20 days before it
# (bench/src/workloads.rs `sequence_statements`, `funnel_statements`). `now` is an SQL
# timestamp; a `WHERE` names its columns as `{e}.column`.
def then(first, second, within=None, matching=None, first_where="true", second_where="true",
         first_window=None, negated=False):
    """DID first ... THEN [NOT] second ...: pairs of events, written from DESIGN."""
    def build(now):
        w = f"INTERVAL {within}" if within else None
        a_where = p(first_where.format(e="a"))
        b_where = p(second_where.format(e="b"))
        a_window = first_window(now, "a.ts") if first_window else "true"
        match = f"AND coalesce(a.{matching} = b.{matching}, false)" if matching else ""
        if not negated:
            upto = f"AND b.ts <= a.ts + {w}" if w else ""
            return (
                f"member_id IN (SELECT a.member_id FROM events a JOIN events b "
                f"ON b.member_id = a.member_id AND b.event = '{second}' AND {b_where} "
                f"AND b.ts > a.ts {upto} {match} "
                f"WHERE a.event = '{first}' AND {a_where} AND ({a_window}))"
            )
        end = f"a.ts + {w}" if w else now
        closed = f"a.ts + {w} <= {now}" if w else f"a.ts <= {now}"
        return (
            f"member_id IN (SELECT a.member_id FROM events a WHERE a.event = '{first}' "
            f"AND {a_where} AND ({a_window}) AND {closed} AND NOT EXISTS (SELECT 1 FROM events b "
            f"WHERE b.member_id = a.member_id AND b.event = '{second}' AND {b_where} "
            f"AND b.ts > a.ts AND b.ts <= {end} {match}))"
        )
    return build


def last_at(n, unit):
    return lambda now, ts: f"{ts} > {now} - INTERVAL {n} {unit} AND {ts} <= {now}"


SEQUENCES = {
    "seq_claim_then_redeem_7d_matching": then("claim_coupon", "redeem_coupon", "7 DAY", "coupon_id"),
    "seq_claim_30d_then_not_redeem_7d_matching": then(
        "claim_coupon", "redeem_coupon", "7 DAY", "coupon_id", first_window=last_at(30, "DAY"), negated=True),
    "seq_claim_then_not_redeem_14d": then("claim_coupon", "redeem_coupon", "14 DAY", negated=True),
    "seq_claim_then_not_redeem_ever_matching": then("claim_coupon", "redeem_coupon", None, "coupon_id", negated=True),
    "seq_follow_then_register_1h": then("follow", "register", "1 HOUR"),
    "seq_scan_then_purchase_same_store": then(
        "scan_qr", "purchase", "3 DAY", "store", second_where="{e}.amount >= 100"),
    "seq_claim_then_not_redeem_same_store": lambda now: (
        then("claim_coupon", "redeem_coupon", "7 DAY", "store", negated=True)(now) + f" AND {p(C0)}"),
    "seq_purchase_then_purchase_1d": then("purchase", "purchase", "1 DAY"),
}

# name: (steps as (event, where on x), within, entry window (now, ts) -> SQL, FOR, BY)
# BY: ("value", column of members) or ("first" | "last", property of the entry event)
FUNNELS = {
    "funnel_scan_follow_purchase": (
        [("scan_qr", "true"), ("follow", "true"), ("purchase", "true")], "14 DAY",
        last_at(90, "DAY"), "true", None),
    "funnel_scan_purchase_by_qr_first_touch": (
        [("scan_qr", "true"), ("purchase", "x.amount > 0")], "7 DAY",
        last_at(60, "DAY"), "true", ("first", "qr_code")),
    "funnel_claim_redeem_purchase_by_city": (
        [("claim_coupon", "true"), ("redeem_coupon", "true"), ("purchase", "true")], "14 DAY",
        None, "level IN ('gold', 'platinum')", ("value", "city")),
    "funnel_follow_register_purchase_last_touch": (
        [("follow", "true"), ("register", "true"), ("purchase", "true"), ("purchase", "true")], "30 DAY",
        lambda now, ts: f"{ts} >= TIMESTAMPTZ '2025-06-01 00:00:00+00'", "true", ("last", "channel")),
}


def funnel_rows(con, funnel, now):
    """[bucket, step, members, median seconds] per step: from each entry, each next step's
    earliest event strictly after the step before and at most W after the entry (stepwise
    correlated minimums); a member at its furthest step over its entries, timed from its
    earliest entry reaching it."""
    steps, within, window, members_for, by = funnel
    entry_window = window(now, "ts") if window else "true"
    touch = by[1] if by and by[0] in ("first", "last") else None
    ctes = [
        f"c1 AS (SELECT member_id, ts AS t1, row AS r1, {touch or 'NULL'} AS touch FROM events "
        f"WHERE event = '{steps[0][0]}' AND {p(steps[0][1].replace('x.', ''))} AND ({entry_window}) "
        f"AND member_id IN (SELECT member_id FROM members WHERE {p(members_for)}))"
    ]
    for k, (event, where) in enumerate(steps[1:], start=2):
        ctes.append(
            f"c{k} AS (SELECT c.*, (SELECT min(x.ts) FROM events x WHERE x.member_id = c.member_id "
            f"AND x.event = '{event}' AND {p(where)} AND x.ts > c.t{k - 1} "
            f"AND x.ts <= c.t1 + INTERVAL {within}) AS t{k} FROM c{k - 1} c)"
        )
    n = len(steps)
    level = " + ".join(["1"] + [f"CAST(t{k} IS NOT NULL AS INTEGER)" for k in range(2, n + 1)])
    ctes.append(f"lv AS (SELECT *, {level} AS level FROM c{n})")
    order = "t1 DESC, r1 DESC" if by and by[0] == "last" else "t1, r1"
    ctes.append(
        "touches AS (SELECT member_id, touch FROM c1 QUALIFY row_number() OVER "
        f"(PARTITION BY member_id ORDER BY {order}) = 1)"
    )
    ctes.append(
        "chosen AS (SELECT * FROM lv QUALIFY row_number() OVER "
        "(PARTITION BY member_id ORDER BY level DESC, t1, r1) = 1)"
    )
    bucket = {
        None: "NULL",
        "value": f"(SELECT CAST(m.{by[1]} AS VARCHAR) FROM members m WHERE m.member_id = chosen.member_id)"
        if by else "NULL",
    }.get(by[0] if by else None, "(SELECT CAST(t.touch AS VARCHAR) FROM touches t WHERE t.member_id = chosen.member_id)")
    gaps = ", ".join(
        f"median(CASE WHEN level >= {k} THEN (epoch_us(t{k}) - epoch_us(t{k - 1})) / 1e6 END)"
        for k in range(2, n + 1)
    )
    reached = ", ".join(f"count(*) FILTER (WHERE level >= {k})" for k in range(1, n + 1))
    sql = (
        "WITH " + ", ".join(ctes) +
        f" SELECT {bucket} AS bucket, {reached}, {gaps} FROM chosen GROUP BY 1"
    )
    rows = []
    for r in con.execute(sql).fetchall():
        for k in range(n):
            median = None if k == 0 else r[1 + n + k - 1]
            rows.append([r[0], k + 1, r[1 + k], median])
    return rows


def file_views(con):
    """The files as they are: members, events (`row`: the file's row order, the order
    events of equal time were written in) and tags; every member_id seen anywhere is a live
    member, one without a members row has NULLs."""
    con.execute(f"CREATE VIEW members_file AS SELECT * FROM read_parquet('{DATA}/members.parquet')")
    con.execute(
        f"CREATE VIEW events AS SELECT * EXCLUDE (file_row_number), file_row_number AS row "
        f"FROM read_parquet('{DATA}/events.parquet', file_row_number = true)"
    )
    con.execute(f"CREATE VIEW tags AS SELECT * FROM read_parquet('{DATA}/tags.parquet')")
    con.execute(
        "CREATE VIEW members AS SELECT l.member_id, m.* EXCLUDE (member_id) FROM "
        "(SELECT member_id FROM members_file UNION SELECT member_id FROM events "
        "UNION SELECT member_id FROM tags) l LEFT JOIN members_file m USING (member_id)"
    )


def profile_views(con, workdir):
    """The files joined to the model's id map: a live member per profile. Returns the model."""
    for name in ["members", "events", "tags", "identities"]:
        con.execute(
            f"CREATE VIEW {name}_rows AS SELECT * FROM "
            f"read_parquet('{DATA}/{name}.parquet', file_row_number = true)"
        )
    model = identity_model.replay(con)
    path = os.path.join(workdir, "idmap.csv")
    with open(path, "w", newline="") as f:
        csv.writer(f).writerows(model.id_map())
    con.execute(
        f"CREATE TABLE idmap AS SELECT * FROM read_csv('{path}', header = false, "
        "columns = {'member_id': 'VARCHAR', 'profile': 'VARCHAR', 'row': 'BIGINT'})"
    )
    con.execute(
        "CREATE VIEW events AS SELECT m.profile AS member_id, e.* EXCLUDE (member_id, file_row_number), "
        "e.file_row_number AS row FROM events_rows e JOIN idmap m ON m.member_id = e.member_id"
    )
    con.execute(
        "CREATE VIEW tags AS SELECT DISTINCT m.profile AS member_id, t.tag "
        "FROM tags_rows t JOIN idmap m ON m.member_id = t.member_id"
    )
    rules = {
        "LATEST": "arg_max(f.{c}, m.row) FILTER (WHERE f.{c} IS NOT NULL)",
        "EARLIEST": "arg_min(f.{c}, m.row) FILTER (WHERE f.{c} IS NOT NULL)",
        "MIN": "min(f.{c})",
        "MAX": "max(f.{c})",
        "SUM": "sum(f.{c})",
    }
    columns = [
        r[0] for r in con.execute("DESCRIBE members_rows").fetchall()
        if r[0] not in ("member_id", "file_row_number")
    ]
    merged = ", ".join(
        rules[identity_model.MERGE_RULES.get(c, "LATEST")].format(c=c) + f" AS {c}" for c in columns
    )
    con.execute(
        f"CREATE VIEW members AS SELECT m.profile AS member_id, {merged} "
        "FROM idmap m LEFT JOIN members_rows f ON f.member_id = m.member_id GROUP BY m.profile"
    )
    return model


def main():
    with tempfile.TemporaryDirectory() as workdir:
        check(workdir)


def check(workdir):
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    model = profile_views(con, workdir) if IDENTITIES else None
    if not IDENTITIES:
        file_views(con)
    for view, (k, x, order, over) in SCORES.items():
        con.execute(
            f"CREATE VIEW {view} AS SELECT member_id, "
            f"1 + ({k} * (rank() OVER (ORDER BY x {order}) - 1)) // count(*) OVER () AS score "
            f"FROM (SELECT member_id, {x} AS x FROM members WHERE {over}) WHERE x IS NOT NULL"
        )
    # A built `answers` binary (CI passes the one run-peers built), or cargo run.
    answers = os.environ.get("MEMBERDB_ANSWERS_BIN")
    profile = ["--release"] if os.environ.get("MEMBERDB_RELEASE") else []
    setup = ["--identities", identity_model.setup_statements()] if IDENTITIES else []
    command = (
        [answers, DATA, NOW, *setup]
        if answers
        else ["cargo", "run", "-q", *profile, "-p", "memberdb-bench", "--bin", "answers", "--", DATA, NOW, *setup]
    )
    out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    ours = {a["name"]: a for a in map(json.loads, out.splitlines())}
    failures = 0
    if IDENTITIES:
        mine = {
            m: (sorted(aliases), sorted(tuple(i) for i in ids))
            for m, aliases, ids in ours.pop("profiles")["profiles"]
        }
        theirs = model.profiles()
        merged = sum(1 for aliases, _ in theirs.values() if aliases)
        ok = mine == theirs
        failures += not ok
        print(f"{'ok  ' if ok else 'FAIL'} profiles: memberdb {len(mine)} live, model {len(theirs)} "
              f"({merged} merged profiles, {sum(len(a) for a, _ in theirs.values())} aliases, "
              f"{sum(len(i) for _, i in theirs.values())} identifiers)")
        if not ok:
            differ = sorted(k for k in set(mine) | set(theirs) if mine.get(k) != theirs.get(k))
            for k in differ[:10]:
                print(f"  {k}: memberdb {mine.get(k)}, model {theirs.get(k)}")
    for name, cond in {**COUNTS, **TRAIT_COUNTS}.items():
        theirs = con.execute(f"SELECT count(*) FROM members WHERE {cond}").fetchone()[0]
        mine = ours[name]["count"]
        ok = mine == theirs
        failures += not ok
        print(f"{'ok  ' if ok else 'FAIL'} {name}: memberdb {mine}, duckdb {theirs}")
    for name, (cond, attr) in BREAKDOWNS.items():
        rows = con.execute(
            f"SELECT CAST({attr} AS VARCHAR), count(*) FROM members WHERE {cond} GROUP BY 1"
        ).fetchall()
        theirs = sorted(((v, c) for v, c in rows), key=str)
        mine = sorted(((v, c) for v, c in ours[name]["breakdown"]), key=str)
        ok = theirs == mine
        failures += not ok
        print(f"{'ok  ' if ok else 'FAIL'} {name}: {len(mine)} lines")
        if not ok:
            print("  memberdb", mine, "\n  duckdb  ", theirs)
    for name, (columns, cond) in {**BREAKDOWN_STATEMENTS, **TRAIT_STATEMENTS}.items():
        cast = ", ".join(f"CAST({c} AS VARCHAR)" for c in columns)
        groups = ", ".join(str(k + 1) for k in range(len(columns)))
        rows = con.execute(
            f"SELECT {cast}, count(*) FROM members WHERE {cond} GROUP BY {groups}"
        ).fetchall()
        theirs = sorted(((list(r[:-1]), r[-1]) for r in rows), key=str)
        mine = sorted(((v, c) for v, c in ours[name]["lines"]), key=str)
        ok = theirs == mine
        failures += not ok
        print(f"{'ok  ' if ok else 'FAIL'} {name}: {len(mine)} lines")
        if not ok:
            print("  memberdb", mine[:10], "\n  duckdb  ", theirs[:10])
    for at in ["", "@-20d"]:
        now = NOW_SQL if not at else f"({NOW_SQL} - INTERVAL 20 DAY)"
        for name, build in SEQUENCES.items():
            theirs = con.execute(f"SELECT count(*) FROM members WHERE {build(now)}").fetchone()[0]
            mine = ours[name + at]["count"]
            ok = mine == theirs
            failures += not ok
            print(f"{'ok  ' if ok else 'FAIL'} {name}{at}: memberdb {mine}, duckdb {theirs}")
        for name, funnel in FUNNELS.items():
            theirs = funnel_rows(con, funnel, now)
            mine = ours[name + at]["funnel"]
            key = lambda r: (str(r[0]), r[1])
            theirs, mine = sorted(theirs, key=key), sorted(mine, key=key)
            ok = len(theirs) == len(mine) and all(
                t[:3] == m[:3] and (t[3] is None) == (m[3] is None)
                and (t[3] is None or abs(t[3] - m[3]) <= 1e-6 * max(1.0, abs(t[3])))
                for t, m in zip(theirs, mine)
            )
            failures += not ok
            print(f"{'ok  ' if ok else 'FAIL'} {name}{at}: {len(mine)} rows")
            if not ok:
                print("  memberdb", mine[:12], "\n  duckdb  ", theirs[:12])
    seen = {name.split("@")[0] for name in ours}
    missing = (
        seen - set(SEQUENCES) - set(FUNNELS) - set(COUNTS) - set(BREAKDOWNS) - set(BREAKDOWN_STATEMENTS)
        - set(TRAIT_STATEMENTS) - set(TRAIT_COUNTS)
    )
    if missing:
        print("FAIL no SQL for", sorted(missing))
        failures += 1
    if failures:
        sys.exit(f"{failures} answers differ from DuckDB")
    total = (
        len(COUNTS) + len(BREAKDOWNS) + len(BREAKDOWN_STATEMENTS)
        + len(TRAIT_STATEMENTS) + len(TRAIT_COUNTS) + 2 * (len(SEQUENCES) + len(FUNNELS))
    )
    over = " over merged profiles (and the profiles with the model's)" if IDENTITIES else ""
    print(f"all {total} answers agree with DuckDB {duckdb.__version__}{over}")


if __name__ == "__main__":
    main()
