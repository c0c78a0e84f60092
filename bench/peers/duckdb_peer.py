#!/usr/bin/env python3
"""DuckDB's side of the peer harness (`bench/run-peers`).

Started by the `peers` binary with the data directory and *now*; it loads the very same
Parquet files into DuckDB in its best form, then answers requests, one JSON object per line:

    -> {"op": "run", "name": "q1", "reps": 20, "budget_s": 3.0}
    <- {"name": "q1", "samples_us": [...], "answer": 12345}

Best form: an in-memory `members` table with one boolean column per tag (attribute and tag
questions become a scan of one wide table), and an in-memory `events` table sorted by event
type and time, so DuckDB's min/max zone maps skip the row groups outside a type and window.
Dynamic groups are materialised as tables of member ids, as memberdb materialises them.
"""
import json
import os
import sys
import time

import duckdb

from common import Q8_TAGS, serve

DATA, NOW = sys.argv[1], sys.argv[2]
NOW_SQL = f"TIMESTAMPTZ '{NOW.replace('T', ' ').replace('Z', '+00')}'"

def last(days):
    return f"ts > {NOW_SQL} - INTERVAL {days} DAY AND ts <= {NOW_SQL}"


def did(event, extra="true"):
    return f"SELECT member_id FROM events WHERE event = '{event}' AND {extra}"


# The workloads of bench/src/workloads.rs (`peer_workloads`), same names, same questions.
SETUP = [
    "CREATE TABLE grp_xmas_claimers AS SELECT DISTINCT member_id FROM events "
    "WHERE event = 'claim_coupon' AND coupon_id = 'CP-XMAS-50'",
]
QUERIES = {
    "Q1": ("count", "SELECT count(*) FROM members "
           "WHERE vip AND NOT churn_risk AND city = 'Shanghai'"),
    "Q2": ("count", "SELECT count(*) FROM members WHERE city = 'Shanghai' "
           f"AND member_id IN ({did('claim_coupon')}) "
           f"AND member_id NOT IN ({did('redeem_coupon')})"),
    "Q3": ("count", "SELECT count(*) FROM members WHERE level IN ('gold', 'platinum') "
           f"AND member_id IN ({did('purchase', last(30))})"),
    "Q4": ("count", "SELECT count(*) FROM ("
           f"{did('purchase', last(90))} GROUP BY member_id HAVING count(*) >= 3)"),
    "Q5": ("count", "SELECT count(*) FROM members WHERE points BETWEEN 1000 AND 5000 "
           f"AND member_id IN ({did('purchase', 'amount >= 500 AND ' + last(365))})"),
    "Q6": ("breakdown", "SELECT CAST(city AS VARCHAR), count(*) FROM members "
           f"WHERE member_id IN ({did('claim_coupon')}) "
           f"AND member_id NOT IN ({did('redeem_coupon')}) GROUP BY 1"),
    "Q7": ("rows", "SELECT member_id, phone, city FROM members "
           f"WHERE vip AND member_id IN ({did('purchase', last(7))}) ORDER BY ord LIMIT 100"),
    "Q8": ("count", "SELECT count(*) FROM members WHERE ("
           + " OR ".join(f'"{t}"' for t in Q8_TAGS)
           + ") AND member_id NOT IN (SELECT member_id FROM grp_xmas_claimers)"),
    "Q9": ("count", "SELECT count(*) FROM ("
           f"SELECT member_id FROM events WHERE event = 'purchase' AND {last(365)} "
           "GROUP BY member_id HAVING sum(amount) >= 1000)"),
    # some interval [t, t + 3 days) starting at a sign-up holds two cities
    "Q10": ("count", "SELECT count(DISTINCT member_id) FROM ("
            "SELECT a.member_id FROM events a JOIN events b "
            "ON b.member_id = a.member_id AND b.event = 'join_campaign' "
            "AND b.ts >= a.ts AND b.ts < a.ts + INTERVAL 3 DAY "
            "WHERE a.event = 'join_campaign' GROUP BY a.member_id, a.ts "
            "HAVING count(DISTINCT b.city) >= 2)"),
    # the traits of bench/src/workloads.rs TRAIT_DEFINITIONS, computed from the events
    "Q11": ("count", "SELECT count(*) FROM ("
            f"SELECT member_id FROM events WHERE event = 'purchase' AND {last(365)} "
            "GROUP BY member_id HAVING sum(amount) >= 1000)"),
    "Q12": ("count", "SELECT count(*) FROM (SELECT max(ts) AS t FROM events "
            "WHERE event = 'purchase' GROUP BY member_id) "
            f"WHERE floor((epoch_us({NOW_SQL}) - epoch_us(t)) / 86400000000) BETWEEN 241 AND 330"),
    "Q13": ("breakdown", "SELECT concat_ws('|', r, f, m), count(*) FROM ("
            "SELECT 1 + (d >= 30)::INT + (d >= 60)::INT + (d >= 90)::INT + (d >= 180)::INT "
            "+ (d >= 365)::INT AS r, 1 + (n >= 2)::INT + (n >= 4)::INT AS f, "
            "1 + (3 * (rank() OVER (ORDER BY ltv) - 1)) // count(*) OVER () AS m FROM ("
            f"SELECT floor((epoch_us({NOW_SQL}) - epoch_us(max(ts))) / 86400000000) AS d, "
            f"count(*) FILTER (WHERE {last(365)}) AS n, "
            # added in time order, as memberdb does: float sums depend on the order
            f"coalesce(sum(amount ORDER BY ts) FILTER (WHERE {last(365)}), 0) AS ltv "
            "FROM events WHERE event = 'purchase' GROUP BY member_id) WHERE n >= 1) "
            "GROUP BY 1"),
    # sequences and funnels, stepwise: each entry's next step is the earliest later event
    # of its type within the window from the entry; a member at its furthest step
    "Q14": ("funnel", "WITH c1 AS (SELECT DISTINCT member_id, ts AS t1 FROM events "
            f"WHERE event = 'scan_qr' AND {last(90)}), "
            "c2 AS (SELECT c.member_id, c.t1, min(x.ts) AS t2 FROM c1 c LEFT JOIN events x "
            "ON x.member_id = c.member_id AND x.event = 'follow' AND x.ts > c.t1 "
            "AND x.ts <= c.t1 + INTERVAL 14 DAY GROUP BY c.member_id, c.t1), "
            "c3 AS (SELECT c.member_id, c.t1, c.t2, min(x.ts) AS t3 FROM c2 c LEFT JOIN events x "
            "ON x.member_id = c.member_id AND x.event = 'purchase' AND x.ts > c.t2 "
            "AND x.ts <= c.t1 + INTERVAL 14 DAY GROUP BY c.member_id, c.t1, c.t2) "
            "SELECT count(*) FILTER (WHERE level >= 1), count(*) FILTER (WHERE level >= 2), "
            "count(*) FILTER (WHERE level >= 3) FROM (SELECT member_id, "
            "max(1 + (t2 IS NOT NULL)::INT + (t3 IS NOT NULL)::INT) AS level FROM c3 "
            "GROUP BY member_id)"),
    "Q15": ("count", "SELECT count(DISTINCT a.member_id) FROM events a "
            f"WHERE a.event = 'claim_coupon' AND a.ts + INTERVAL 7 DAY <= {NOW_SQL} "
            "AND NOT EXISTS (SELECT 1 FROM events b WHERE b.member_id = a.member_id "
            "AND b.event = 'redeem_coupon' AND b.ts > a.ts AND b.ts <= a.ts + INTERVAL 7 DAY "
            "AND b.coupon_id = a.coupon_id)"),
}


def load(con):
    started = time.perf_counter()
    con.execute("SET TimeZone = 'UTC'")
    # Bounded, so that DuckDB and memberdb fit side by side at 10M members (DuckDB spills
    # its load-time sort to disk rather than failing).
    con.execute(f"SET memory_limit = '{os.environ.get('DUCKDB_MEMORY_LIMIT', '12GB')}'")
    con.execute(
        f"CREATE TABLE events AS SELECT * FROM read_parquet('{DATA}/events.parquet') "
        "ORDER BY event, ts"
    )
    tags = [r[0] for r in con.execute(
        f"SELECT DISTINCT tag FROM read_parquet('{DATA}/tags.parquet') ORDER BY 1"
    ).fetchall()]
    flags = ", ".join(f"bool_or(tag = '{t}') AS \"{t}\"" for t in tags)
    coalesced = ", ".join(f"coalesce(t.\"{t}\", false) AS \"{t}\"" for t in tags)
    # Every member_id seen in any file is a member (DESIGN section 2); `ord` keeps the order
    # members were first seen, memberdb's row order, which FIND follows.
    con.execute(
        f"CREATE TABLE members AS WITH m AS (SELECT *, row_number() OVER () AS ord "
        f"FROM read_parquet('{DATA}/members.parquet')), "
        f"t AS (SELECT member_id, {flags} FROM read_parquet('{DATA}/tags.parquet') "
        f"GROUP BY member_id) "
        f"SELECT m.*, {coalesced} FROM m LEFT JOIN t USING (member_id) ORDER BY ord"
    )
    extra = con.execute(
        "SELECT count(*) FROM (SELECT member_id FROM events UNION "
        f"SELECT member_id FROM read_parquet('{DATA}/tags.parquet')) "
        "WHERE member_id NOT IN (SELECT member_id FROM members)"
    ).fetchone()[0]
    if extra:
        sys.exit(f"{extra} members appear only in events or tags; the harness expects "
                 "every member in members.parquet")
    for statement in SETUP:
        con.execute(statement)
    return time.perf_counter() - started


def answer(kind, rows):
    if kind == "count":
        return rows[0][0]
    if kind == "breakdown":
        return sorted(([v, c] for v, c in rows), key=lambda r: (r[0] is None, r[0] or ""))
    if kind == "funnel":
        return list(rows[0])
    return [[None if v is None else str(v) for v in row] for row in rows]


def run(con, name, reps, budget_s):
    kind, sql = QUERIES[name]
    samples = []
    started = time.perf_counter()
    rows = None
    while len(samples) < reps or (time.perf_counter() - started < budget_s and len(samples) < 10 * reps):
        t0 = time.perf_counter_ns()
        rows = con.execute(sql).fetchall()
        samples.append((time.perf_counter_ns() - t0) / 1000)
    return {"name": name, "samples_us": samples, "answer": answer(kind, rows)}


def main():
    con = duckdb.connect()
    seconds = load(con)
    threads = con.execute("SELECT current_setting('threads')").fetchone()[0]

    def handle(request):
        name = request["name"]
        for _ in range(request.get("warmup", 2)):
            con.execute(QUERIES[name][1]).fetchall()
        return run(con, name, request["reps"], request["budget_s"])

    serve({"ready": True, "load_s": seconds, "version": duckdb.__version__,
           "threads": threads}, handle)


if __name__ == "__main__":
    main()
