"""Checks memberdb EXPORT files against the source data with DuckDB, row by row.

    python3 check_export.py SOURCE_DIR EXPORT_DIR

SOURCE_DIR holds the members.parquet and tags.parquet the database was loaded from;
EXPORT_DIR holds what the database exported:

- all.parquet, all.csv, all.jsonl: `EXPORT ALL SHOW * TO ...`, each equal to the source
  members, every column, typed as the source types them (CSV and JSON read with those types);
- vip_shanghai.parquet / .csv / .jsonl: `EXPORT TAG 'vip' AND city = 'Shanghai' SHOW
  city, points TO ...`, equal to DuckDB's own answer from the source files.

Prints one line per check and exits 1 on the first difference.
"""

import sys

import duckdb

source, exported = sys.argv[1], sys.argv[2]
con = duckdb.connect()
con.execute("SET TimeZone = 'UTC'")
members = f"read_parquet('{source}/members.parquet')"
schema = con.execute(f"DESCRIBE SELECT * FROM {members}").fetchall()
types = "{" + ", ".join(f"'{name}': '{kind}'" for name, kind, *_ in schema) + "}"
columns = ", ".join(f'"{name}"' for name, *_ in schema)


def reader(path, types):
    if path.endswith(".parquet"):
        return f"read_parquet('{path}')"
    if path.endswith(".csv"):
        return f"read_csv('{path}', header = true, columns = {types})"
    return f"read_json('{path}', format = 'newline_delimited', columns = {types})"


def same(name, expected, actual, cols):
    """Equal as multisets of rows: nothing in one that is not in the other."""
    missing = con.execute(
        f"SELECT count(*) FROM (SELECT {cols} FROM {expected} EXCEPT ALL SELECT {cols} FROM {actual})"
    ).fetchone()[0]
    extra = con.execute(
        f"SELECT count(*) FROM (SELECT {cols} FROM {actual} EXCEPT ALL SELECT {cols} FROM {expected})"
    ).fetchone()[0]
    rows = con.execute(f"SELECT count(*) FROM {actual}").fetchone()[0]
    print(f"{name}: {rows} rows, {missing} missing, {extra} extra")
    if missing or extra or rows == 0:
        sys.exit(1)


for ext in ["parquet", "csv", "jsonl"]:
    same(f"all.{ext}", members, reader(f"{exported}/all.{ext}", types), columns)

segment = f"""(SELECT m.member_id, m.city, m.points FROM {members} m
    WHERE m.city = 'Shanghai'
      AND m.member_id IN (SELECT member_id FROM read_parquet('{source}/tags.parquet') WHERE tag = 'vip'))"""
narrow = "{'member_id': 'VARCHAR', 'city': 'VARCHAR', 'points': 'BIGINT'}"
for ext in ["parquet", "csv", "jsonl"]:
    same(
        f"vip_shanghai.{ext}",
        segment,
        reader(f"{exported}/vip_shanghai.{ext}", narrow),
        "member_id, city, points",
    )
