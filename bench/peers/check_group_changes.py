#!/usr/bin/env python3
"""Checks memberdb's time-driven group changes against DuckDB.

Runs the `group_changes` binary (data loaded on a manual clock at T0, groups that move with
time defined, the clock moved to T1 in steps) and checks, on the same Parquet files in
DuckDB:

- every group's snapshot at T0 folded with its entries is the group evaluated at T1;
- every entry's instant is a boundary: the member is in the group at `at` exactly when the
  entry is an enter, and at `at - 1 microsecond` exactly when it is an exit.

    python3 bench/peers/check_group_changes.py DATA_DIR T0 T1 [STEPS]

The SQL spells out DESIGN sections 3 and 8: `IN LAST w` means now - w < ts <= now, in
microseconds; a DID without a window counts every event, future-dated ones too.
"""
import json
import os
import subprocess
import sys
from datetime import datetime, timezone

import duckdb

DATA, T0, T1 = sys.argv[1], sys.argv[2], sys.argv[3]
STEPS = sys.argv[4] if len(sys.argv) > 4 else "1"
DAY = 86_400_000_000
HOUR = 3_600_000_000


def micros(text):
    return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1_000_000)


def count(event, span=None):
    window = f"AND e.us > p.t - {span} AND e.us <= p.t" if span else ""
    return (
        f"(SELECT count(*) FROM ev e WHERE e.member_id = p.member AND e.event = '{event}' {window})"
    )


def between(c, lo, hi=None):
    return f"({c} >= {lo})" if hi is None else f"({c} BETWEEN {lo} AND {hi})"


VIP = "EXISTS (SELECT 1 FROM tags t WHERE t.member_id = p.member AND t.tag = 'vip')"
GROUPS = {
    "recent": between(count("purchase", 30 * DAY), 1),
    "frequent": between(count("purchase", 90 * DAY), 3),
    "lapsed": f"{between(count('purchase'), 1)} AND NOT {between(count('purchase', 14 * DAY), 1)}",
    "vip_login": f"{between(count('login', 36 * HOUR), 1)} AND {VIP}",
    "one_claim": between(count("claim_coupon", 7 * DAY), 1, 1),
    "few_views": between(count("view_product", 3 * DAY), 1, 2),
}
GROUPS["both"] = f"({GROUPS['recent']}) AND NOT ({GROUPS['vip_login']})"


def days_since_last(event):
    last = f"(SELECT max(e.us) FROM ev e WHERE e.member_id = p.member AND e.event = '{event}')"
    return f"floor((p.t - {last}) / {DAY})"


# DAYS SINCE (DESIGN section 9: floor((now - t) / 24 h)), and the trait
# scan_level = BUCKET(DAYS SINCE LAST(scan_qr), 7, 14) compared with 2
GROUPS["bought_10_to_20_days_ago"] = f"coalesce({days_since_last('purchase')} BETWEEN 10 AND 20, false)"
GROUPS["scan_level_2"] = (
    f"coalesce({days_since_last('scan_qr')} >= 7 AND {days_since_last('scan_qr')} < 14, false)"
)


def main():
    binary = os.environ.get("MEMBERDB_GROUP_CHANGES_BIN")
    command = (
        [binary]
        if binary
        else ["cargo", "run", "--quiet", "--release", "-p", "memberdb-bench", "--bin", "group_changes", "--"]
    )
    out = subprocess.run(command + [DATA, T0, T1, STEPS], check=True, capture_output=True, text=True)
    folded, entries = {}, []
    for line in out.stdout.splitlines():
        row = json.loads(line)
        if "snapshot" in row:
            folded[row["group"]] = set(row["snapshot"])
        else:
            entries.append(row)
    assert set(folded) == set(GROUPS), sorted(folded)
    for e in entries:
        members = folded[e["group"]]
        if e["op"] == "enter":
            assert e["member"] not in members, e
            members.add(e["member"])
        else:
            assert e["member"] in members, e
            members.remove(e["member"])
        assert e["cause"] == "time", e

    con = duckdb.connect()
    for name in ("members", "events", "tags"):
        con.execute(f"CREATE VIEW {name} AS SELECT * FROM read_parquet('{DATA}/{name}.parquet')")
    con.execute("CREATE TABLE ev AS SELECT member_id, event, epoch_us(ts) AS us FROM events")
    con.execute(
        "CREATE TABLE everyone AS SELECT member_id FROM members UNION "
        "SELECT member_id FROM events UNION SELECT member_id FROM tags"
    )
    t1 = micros(T1)
    for group, expr in GROUPS.items():
        fresh = {
            r[0]
            for r in con.execute(
                f"SELECT p.member FROM (SELECT member_id AS member, {t1}::BIGINT AS t FROM everyone) p WHERE {expr}"
            ).fetchall()
        }
        assert fresh == folded[group], (
            f"{group}: snapshot + entries has {len(folded[group])} members, DuckDB at T1 "
            f"{len(fresh)}; only memberdb: {sorted(folded[group] - fresh)[:5]}, only DuckDB: "
            f"{sorted(fresh - folded[group])[:5]}"
        )
    # every entry's instant is a boundary
    probes = [(e["group"], e["member"], e["at"], e["op"]) for e in entries]
    checked = 0
    for group, expr in GROUPS.items():
        rows = [(m, at) for g, m, at, _ in probes if g == group]
        if not rows:
            continue
        con.execute("CREATE OR REPLACE TABLE probe (member VARCHAR, t BIGINT)")
        con.executemany(
            "INSERT INTO probe VALUES (?, ?)",
            [(m, at) for m, at in rows] + [(m, at - 1) for m, at in rows],
        )
        inside = {(r[0], r[1]) for r in con.execute(f"SELECT p.member, p.t FROM probe p WHERE {expr}").fetchall()}
        for g, m, at, op in probes:
            if g != group:
                continue
            assert ((m, at) in inside) == (op == "enter"), f"{group}: {m} {op} at {at}, DuckDB says otherwise at that instant"
            assert ((m, at - 1) in inside) == (op == "exit"), f"{group}: {m} {op} at {at}, DuckDB says otherwise 1 us before"
            checked += 1
    per_group = {g: sum(1 for e in entries if e["group"] == g) for g in GROUPS}
    print(f"group changes agree with DuckDB: {len(entries)} entries ({per_group}), {checked} instants checked at at-1us and at")
    assert len(entries) > 0, "the moves made no entries: nothing was checked"


if __name__ == "__main__":
    main()
