#!/usr/bin/env python3
"""ClickHouse's side of the peer harness (`bench/run-peers`), embedded through chdb.

Started by the `peers` binary with the data directory and *now*; it loads the very same
Parquet files into ClickHouse in two forms and answers requests, one JSON object per line
(the protocol of `duckdb_peer.py`, plus the system):

    -> {"op": "run", "name": "Q1", "system": "wide", "reps": 20, "budget_s": 3.0}
    <- {"name": "Q1", "samples_us": [...], "answer": 12345}

- `wide`: MergeTree tables, `members` with one Bool column per tag, ordered by the order the
  members come in (memberdb's row order, which FIND follows), and `events` ordered by
  (event, ts), so a type and a window read only their granules; every workload Q1..Q8.
- `bitmap`: ClickHouse's bitmap functions over dense ids of its own (the members' order,
  as UInt32): a `groupBitmap` state per tag, per city and per event type, built from the
  same files; Q1 and Q2 become `bitmapAndnotCardinality(bitmapAnd(...), ...)`.
"""
import csv
import io
import shutil
import sys
import tempfile
import time

import chdb
from chdb import session as chs

from common import Q8_TAGS, serve

DATA, NOW = sys.argv[1], sys.argv[2]
NOW_SQL = f"parseDateTime64BestEffort('{NOW}', 6, 'UTC')"
READ = "SETTINGS max_threads = 1, input_format_parquet_preserve_order = 1"

def last(days):
    return f"ts > {NOW_SQL} - INTERVAL {days} DAY AND ts <= {NOW_SQL}"


def did(event, extra="true"):
    return f"SELECT member_id FROM events WHERE event = '{event}' AND {extra}"


def q(name):
    return f"`{name}`"


# The workloads of bench/src/workloads.rs (`peer_workloads`), same names, same questions.
WIDE = {
    "Q1": ("count", "SELECT count() FROM members "
           "WHERE vip AND NOT churn_risk AND city = 'Shanghai'"),
    "Q2": ("count", "SELECT count() FROM members WHERE city = 'Shanghai' "
           f"AND member_id IN ({did('claim_coupon')}) "
           f"AND member_id NOT IN ({did('redeem_coupon')})"),
    "Q3": ("count", "SELECT count() FROM members WHERE level IN ('gold', 'platinum') "
           f"AND member_id IN ({did('purchase', last(30))})"),
    "Q4": ("count", "SELECT count() FROM ("
           f"{did('purchase', last(90))} GROUP BY member_id HAVING count() >= 3)"),
    "Q5": ("count", "SELECT count() FROM members WHERE points BETWEEN 1000 AND 5000 "
           f"AND member_id IN ({did('purchase', 'amount >= 500 AND ' + last(365))})"),
    "Q6": ("breakdown", "SELECT city, count() FROM members "
           f"WHERE member_id IN ({did('claim_coupon')}) "
           f"AND member_id NOT IN ({did('redeem_coupon')}) GROUP BY city"),
    "Q7": ("rows", "SELECT member_id, phone, city FROM members "
           f"WHERE vip AND member_id IN ({did('purchase', last(7))}) ORDER BY ord LIMIT 100"),
    "Q8": ("count", "SELECT count() FROM members WHERE ("
           + " OR ".join(q(t) for t in Q8_TAGS)
           + ") AND member_id NOT IN (SELECT member_id FROM grp_xmas_claimers)"),
    "Q9": ("count", "SELECT count() FROM ("
           f"SELECT member_id FROM events WHERE event = 'purchase' AND {last(365)} "
           "GROUP BY member_id HAVING sum(amount) >= 1000)"),
    # each member's sign-ups in time order; some interval [t, t + 3 days) starting at one
    # holds two cities
    "Q10": ("count", "SELECT count() FROM ("
            "SELECT arraySort(x -> x.1, groupArray((ts, city))) AS ev FROM events "
            "WHERE event = 'join_campaign' AND city IS NOT NULL GROUP BY member_id) "
            "WHERE arrayExists(e -> length(arrayDistinct(arrayMap(f -> f.2, arrayFilter("
            "f -> f.1 >= e.1 AND f.1 < e.1 + toIntervalDay(3), ev)))) >= 2, ev)"),
    # the traits of bench/src/workloads.rs TRAIT_DEFINITIONS, computed from the events
    "Q11": ("count", "SELECT count() FROM ("
            f"SELECT member_id FROM events WHERE event = 'purchase' AND {last(365)} "
            "GROUP BY member_id HAVING sum(amount) >= 1000)"),
    "Q12": ("count", "SELECT count() FROM (SELECT max(ts) AS t FROM events "
            "WHERE event = 'purchase' GROUP BY member_id) "
            f"WHERE intDiv(toUnixTimestamp64Micro({NOW_SQL}) - toUnixTimestamp64Micro(t), "
            "86400000000) BETWEEN 241 AND 330"),
    "Q13": ("breakdown", "SELECT concat(toString(r), '|', toString(f), '|', toString(m)), "
            "count() FROM (SELECT 1 + (d >= 30) + (d >= 60) + (d >= 90) + (d >= 180) "
            "+ (d >= 365) AS r, 1 + (n >= 2) + (n >= 4) AS f, "
            "1 + intDiv(3 * (rank() OVER (ORDER BY ltv) - 1), count() OVER ()) AS m FROM ("
            f"SELECT intDiv(toUnixTimestamp64Micro({NOW_SQL}) - toUnixTimestamp64Micro(max(ts)), "
            f"86400000000) AS d, countIf({last(365)}) AS n, "
            # added in time order, as memberdb does: float sums depend on the order
            "coalesce(arraySum(x -> assumeNotNull(x.2), arraySort(x -> x.1, "
            f"groupArrayIf((ts, amount), {last(365)} AND amount IS NOT NULL))), 0) AS ltv "
            "FROM events WHERE event = 'purchase' GROUP BY member_id) WHERE n >= 1) "
            "GROUP BY 1"),
    # sequences and funnels: windowFunnel (strict_increase: equal times never chain) per
    # member, its window in the timestamp's unit (microseconds); arrays for THEN NOT
    "Q14": ("funnel", "SELECT countIf(level >= 1), countIf(level >= 2), countIf(level >= 3) "
            "FROM (SELECT windowFunnel(1209600000000, 'strict_increase')(toUInt64(toUnixTimestamp64Micro(ts)), "
            f"event = 'scan_qr' AND {last(90)}, event = 'follow', event = 'purchase') AS level "
            "FROM events WHERE event IN ('scan_qr', 'follow', 'purchase') "
            f"AND ts > {NOW_SQL} - INTERVAL 90 DAY AND ts <= {NOW_SQL} + INTERVAL 14 DAY "
            "GROUP BY member_id)"),
    "Q15": ("count", "SELECT count() FROM (SELECT "
            "groupArrayIf((ts, coupon_id), event = 'claim_coupon') AS claims, "
            "groupArrayIf((ts, coupon_id), event = 'redeem_coupon') AS redeems "
            "FROM events WHERE event IN ('claim_coupon', 'redeem_coupon') GROUP BY member_id) "
            f"WHERE arrayExists(c -> c.1 + toIntervalDay(7) <= {NOW_SQL} AND NOT arrayExists("
            "r -> r.2 = c.2 AND r.1 > c.1 AND r.1 <= c.1 + toIntervalDay(7), redeems), claims)"),
}


def bm(table, key, value):
    return f"(SELECT bm FROM {table} WHERE {key} = '{value}')"


BITMAP = {
    "Q1": ("count", "SELECT bitmapAndnotCardinality(bitmapAnd("
           f"{bm('tag_bm', 'tag', 'vip')}, {bm('city_bm', 'city', 'Shanghai')}), "
           f"{bm('tag_bm', 'tag', 'churn_risk')})"),
    "Q2": ("count", "SELECT bitmapAndnotCardinality(bitmapAnd("
           f"{bm('event_bm', 'event', 'claim_coupon')}, {bm('city_bm', 'city', 'Shanghai')}), "
           f"{bm('event_bm', 'event', 'redeem_coupon')})"),
}


def load(sess):
    started = time.perf_counter()
    tags = [r[0] for r in rows(sess, f"SELECT DISTINCT tag FROM file('{DATA}/tags.parquet') "
                                    "ORDER BY tag")]
    flags = ", ".join(f"has(t.tags, '{t}') AS {q(t)}" for t in tags)
    sess.query("CREATE TABLE tagsets ENGINE = MergeTree ORDER BY member_id AS "
               "SELECT member_id, groupArray(tag) AS tags "
               f"FROM file('{DATA}/tags.parquet') GROUP BY member_id")
    sess.query("CREATE TABLE members_in ENGINE = MergeTree ORDER BY ord AS "
               "SELECT *, toUInt32(rowNumberInAllBlocks()) AS ord "
               f"FROM file('{DATA}/members.parquet') {READ}")
    sess.query("CREATE TABLE members ENGINE = MergeTree ORDER BY ord AS "
               f"SELECT m.*, {flags} FROM members_in AS m "
               "LEFT JOIN tagsets AS t ON m.member_id = t.member_id")
    sess.query("CREATE TABLE events ENGINE = MergeTree ORDER BY (event, ts) AS "
               f"SELECT * FROM file('{DATA}/events.parquet')")
    sess.query("CREATE TABLE grp_xmas_claimers ENGINE = MergeTree ORDER BY member_id AS "
               "SELECT DISTINCT member_id FROM events "
               "WHERE event = 'claim_coupon' AND coupon_id = 'CP-XMAS-50'")
    wide = time.perf_counter() - started
    sess.query("CREATE TABLE tag_bm ENGINE = Memory AS "
               "SELECT tag, groupBitmapState(m.ord) AS bm "
               f"FROM file('{DATA}/tags.parquet') AS t "
               "JOIN members_in AS m ON t.member_id = m.member_id GROUP BY tag")
    sess.query("CREATE TABLE city_bm ENGINE = Memory AS "
               "SELECT assumeNotNull(city) AS city, groupBitmapState(ord) AS bm "
               "FROM members_in WHERE city IS NOT NULL GROUP BY city")
    sess.query("CREATE TABLE event_bm ENGINE = Memory AS "
               "SELECT e.event AS event, groupBitmapState(m.ord) AS bm FROM events AS e "
               "JOIN members_in AS m ON e.member_id = m.member_id GROUP BY e.event")
    return wide, time.perf_counter() - started - wide


def rows(sess, sql):
    text = sess.query(sql, "CSV").bytes().decode()
    return [[None if v == "\\N" else v for v in r] for r in csv.reader(io.StringIO(text))]


def answer(kind, result):
    if kind == "count":
        return int(result[0][0])
    if kind == "breakdown":
        # several value columns (compiled SQL): joined by '|', as memberdb's answer is
        lines = [[r[0] if len(r) == 2 else "|".join("NULL" if v is None else v for v in r[:-1]),
                  int(r[-1])] for r in result]
        return sorted(lines, key=lambda r: (r[0] is None, r[0] or ""))
    if kind == "funnel":
        return [int(v) for v in result[0]]
    if kind == "funnel_report":
        # compiled FUNNEL: a row per step, members third
        return [int(r[2]) for r in result]
    return result


# `memberdb compile --tables mdb` of the workloads (the `compiled` system), set by the
# `compiled` request: name -> (kind, sql)
COMPILED = {}


def load_compiled(sess, request):
    """Creates and loads the tables of `compile --schema`, keeps the compiled queries."""
    started = time.perf_counter()
    for ddl in request["ddl"].split(";\n"):
        body = "\n".join(line for line in ddl.splitlines() if not line.startswith("--")).strip()
        if body:
            sess.query(body)
    COMPILED.update({name: (kind, sql.rstrip().rstrip(";"))
                     for name, (kind, sql) in request["queries"].items()})
    return {"load_s": time.perf_counter() - started}


def run(sess, name, system, reps, budget_s):
    queries = {"wide": WIDE, "bitmap": BITMAP, "compiled": COMPILED}[system]
    if name not in queries:
        return {"error": f"{system} has no {name}"}
    kind, sql = queries[name]
    for _ in range(2):
        rows(sess, sql)
    samples, result = [], None
    started = time.perf_counter()
    while len(samples) < reps or (time.perf_counter() - started < budget_s
                                  and len(samples) < 10 * reps):
        t0 = time.perf_counter_ns()
        result = rows(sess, sql)
        samples.append((time.perf_counter_ns() - t0) / 1000)
    return {"name": name, "samples_us": samples, "answer": answer(kind, result)}


def main():
    path = tempfile.mkdtemp(prefix="memberdb-chdb-")
    sess = chs.Session(path)
    sess.query("SET session_timezone = 'UTC'")
    wide, bitmaps = load(sess)
    threads = rows(sess, "SELECT getSetting('max_threads')")[0][0]
    serve({"ready": True, "load_s": wide, "bitmap_load_s": bitmaps,
           "version": chdb.__version__ + " (ClickHouse " + rows(sess, "SELECT version()")[0][0] + ")",
           "threads": threads},
          lambda r: load_compiled(sess, r) if r["op"] == "compiled"
          else run(sess, r["name"], r["system"], r["reps"], r["budget_s"]))
    sess.close()
    shutil.rmtree(path, ignore_errors=True)


if __name__ == "__main__":
    main()
