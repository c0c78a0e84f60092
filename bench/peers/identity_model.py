"""A reference model of the identity replay rules of DESIGN section 11, written from the
spec (not from the engine), for bench/peers/check_duckdb.py: it replays the members' own
identifier attributes and the observations of `identities.parquet` into profiles, and
gives the id map (every member id -> its profile's member id) that DuckDB joins the events,
tags and members to.

The rules: an observation's identifiers in the order given, empty, blocked and repeated ones
left out; matching profiles are those holding one of its identifiers or containing its
explicit member; while the union of their values and the observation's would give a profile
more than LIMIT values of a type, the observation's identifier of the largest PRIORITY number
(the last of equals) is dropped and matching starts again; no match starts a profile on a
new row named `type:value` of its first identifier (`#2`, `#3` when taken); one or more
merge into the one created first (the lowest row) and take the observation's values.
"""

# The declarations the check runs with: (type, LIMIT, PRIORITY, blocked values), in the
# order declared, and the attribute merge rules (others are LATEST).
SHARED_PHONE = "13800138000"
TEST_EMAIL = "test@example.com"
DECLARATIONS = [
    ("unionid", 1, 1, []),
    ("phone", 1, 2, [SHARED_PHONE]),
    ("email", 2, 3, [TEST_EMAIL]),
    ("openid", 10, 4, []),
]
MERGE_RULES = {"points": "SUM", "lifetime_spend": "MAX", "joined_at": "EARLIEST"}


def setup_statements():
    """The statements that declare DECLARATIONS and MERGE_RULES in memberdb."""
    out = []
    for name, limit, priority, blocked in DECLARATIONS:
        block = (" BLOCK " + ", ".join(f"'{v}'" for v in blocked)) if blocked else ""
        out.append(f"DEFINE IDENTIFIER {name} LIMIT {limit} PRIORITY {priority}{block}")
    out += [f"DEFINE ATTRIBUTE {a} MERGE {rule}" for a, rule in MERGE_RULES.items()]
    return "; ".join(out)


class Model:
    def __init__(self, member_ids):
        """`member_ids`: every member id in the order the database gave them rows."""
        self.rules = {name: (limit, priority, set(blocked)) for name, limit, priority, blocked in DECLARATIONS}
        self.ids = list(member_ids)
        self.row_of = {m: r for r, m in enumerate(self.ids)}
        self.canon = {}  # row -> canonical row, for rows merged into another profile
        self.rows = {}  # canonical row -> its rows
        self.values = {}  # canonical row -> its identifiers (type, value)
        self.holder = {}  # (type, value) -> canonical row

    def canonical(self, row):
        return self.canon.get(row, row)

    def _overflows(self, matched, kept):
        per_type = {}
        for p in matched:
            for t, v in self.values.get(p, []):
                per_type.setdefault(t, set()).add(v)
        for t, v in kept:
            per_type.setdefault(t, set()).add(v)
        return any(len(vs) > self.rules[t][0] for t, vs in per_type.items())

    def _new_row(self, first):
        base = f"{first[0]}:{first[1]}"
        name, n = base, 2
        while name in self.row_of:
            name, n = f"{base}#{n}", n + 1
        self.row_of[name] = len(self.ids)
        self.ids.append(name)
        return self.row_of[name]

    def observe(self, member, identifiers):
        """One observation: an explicit member id (or None) and (type, value) pairs."""
        kept = []
        for t, v in identifiers:
            if v is None or v == "" or v in self.rules[t][2] or (t, v) in kept:
                continue
            kept.append((t, v))
        explicit = set()
        if member is not None:
            if member not in self.row_of:
                self.row_of[member] = len(self.ids)
                self.ids.append(member)
            explicit.add(self.canonical(self.row_of[member]))
        if not kept and not explicit:
            return
        while True:
            matched = explicit | {self.holder[i] for i in kept if i in self.holder}
            if not self._overflows(matched, kept):
                break
            if not kept:
                return  # explicit members alone break a limit: not made
            victim = max(range(len(kept)), key=lambda i: (self.rules[kept[i][0]][1], i))
            kept.pop(victim)
        if matched:
            target = min(matched)
        elif kept:
            target = self._new_row(kept[0])
        else:
            return
        rows = self.rows.setdefault(target, [target])
        values = self.values.setdefault(target, [])
        for other in sorted(matched - {target}):
            for row in self.rows.pop(other, [other]):
                self.canon[row] = target
                rows.append(row)
            for ident in self.values.pop(other, []):
                self.holder[ident] = target
                values.append(ident)
        for ident in kept:
            if self.holder.get(ident) != target:
                self.holder[ident] = target
                values.append(ident)

    def id_map(self):
        """(member id, its profile's member id, row) for every member id."""
        return [(m, self.ids[self.canonical(r)], r) for r, m in enumerate(self.ids)]

    def profiles(self):
        """Each live member id with the sorted member ids merged into it and the sorted
        identifiers of its profile."""
        out = {m: [] for r, m in enumerate(self.ids) if self.canonical(r) == r}
        for r, c in self.canon.items():
            out[self.ids[c]].append(self.ids[r])
        return {
            m: (sorted(aliases), sorted(self.values.get(self.row_of[m], [])))
            for m, aliases in out.items()
        }


def replay(con):
    """Replays the database the check loads (views `members_rows`, `events_rows`,
    `tags_rows`, `identities_rows`, each with its `file_row_number`) into a Model: rows in load order, the attributes of each
    declared type observed when it is declared, then the observations file in row order."""
    order = [
        r[0]
        for r in con.execute(
            "SELECT member_id FROM (SELECT member_id, 0 AS f, file_row_number AS n FROM members_rows "
            "UNION ALL SELECT member_id, 1, file_row_number FROM events_rows "
            "UNION ALL SELECT member_id, 2, file_row_number FROM tags_rows) "
            "GROUP BY member_id ORDER BY min((f, n))"
        ).fetchall()
    ]
    model = Model(order)
    columns = {r[0] for r in con.execute("DESCRIBE members_rows").fetchall()}
    for name, _, _, _ in DECLARATIONS:
        if name not in columns:
            continue
        rows = con.execute(
            f"SELECT member_id, CAST({name} AS VARCHAR) FROM members_rows "
            f"WHERE {name} IS NOT NULL ORDER BY file_row_number"
        ).fetchall()
        for member, value in sorted(rows, key=lambda r: model.row_of[r[0]]):
            model.observe(member, [(name, value)])
    types = [c for c in (r[0] for r in con.execute("DESCRIBE identities_rows").fetchall())
             if c not in ("member_id", "file_row_number")]
    select = ", ".join(f"CAST({t} AS VARCHAR)" for t in types)
    for row in con.execute(
        f"SELECT member_id, {select} FROM identities_rows ORDER BY file_row_number"
    ).fetchall():
        model.observe(row[0], list(zip(types, row[1:])))
    return model
