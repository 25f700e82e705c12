"""The independent oracle of cetrail's Sigma engine (SPEC §12): pySigma converts each rule
to DuckDB SQL with pysigma-backend-duckdb, and the SQL runs over a DuckDB table of the same
events, their field paths flattened (`userIdentity.sessionContext.sessionIssuer.userName`).

  usage: sigma_oracle.py EVENTS.jsonl RULE.yml [RULE.yml ...]
Prints one JSON object: rule file -> {"ids": [eventID, ...]} or {"skipped": reason}.

A list of one element is flattened into it; a longer list is kept as JSON text (the
oracle's table has one value per path). Columns whose values are all numbers are DOUBLE,
the others VARCHAR (booleans as true/false).

Where the two may differ (SPEC §12): the backend compares plain values with `=`,
case-sensitively; and `not <a test on a field the event lacks>` is NULL in SQL, so such an
event is not selected, where Sigma (and cetrail) read the test as false and its negation
as true. The test events avoid both."""
import json, re, sys

import duckdb
from sigma.collection import SigmaCollection
from sigma_backend_duckdb import DuckDBBackend


def flatten(prefix, v, out):
    if isinstance(v, dict):
        for k, x in v.items():
            flatten(f"{prefix}.{k}" if prefix else k, x, out)
    elif isinstance(v, list) and len(v) == 1:
        flatten(prefix, v[0], out)
    elif isinstance(v, list):
        out[prefix] = json.dumps(v)
    else:
        out[prefix] = v


rows = []
for line in open(sys.argv[1]):
    if line.strip():
        flat = {}
        flatten("", json.loads(line), flat)
        rows.append(flat)
columns = sorted({k for r in rows for k in r})
numeric = {c for c in columns
           if all(isinstance(r.get(c), (int, float)) and not isinstance(r.get(c), bool)
                  for r in rows if r.get(c) is not None)
           and any(r.get(c) is not None for r in rows)}


def cell(c, v):
    if v is None or c in numeric:
        return v
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


db = duckdb.connect()
q = lambda c: '"' + c.replace('"', '""') + '"'
db.execute("CREATE TABLE logs (" + ", ".join(f"{q(c)} {'DOUBLE' if c in numeric else 'VARCHAR'}" for c in columns) + ")")
db.executemany("INSERT INTO logs VALUES (" + ", ".join("?" for _ in columns) + ")",
               [[cell(c, r.get(c)) for c in columns] for r in rows])

out = {}
for path in sys.argv[2:]:
    try:
        queries = DuckDBBackend().convert(SigmaCollection.from_yaml(open(path).read()))
    except Exception as e:  # the oracle cannot express the rule
        out[path] = {"skipped": f"{type(e).__name__}: {e}"}
        continue
    ids = set()
    for sql in queries:
        while True:
            try:
                ids.update(r[0] for r in db.execute(f'SELECT "eventID" FROM ({sql})').fetchall())
                break
            except duckdb.BinderException as e:
                # A field no event has: the column exists, all null.
                m = re.search(r'Referenced column "(.+?)" not found', str(e))
                if not m:
                    raise
                col = m.group(1)
                compared = re.search(re.escape(q(col)) + r"\s*[<>]", sql)
                db.execute(f"ALTER TABLE logs ADD COLUMN {q(col)} {'DOUBLE' if compared else 'VARCHAR'}")
    out[path] = {"ids": sorted(ids)}
print(json.dumps(out))
