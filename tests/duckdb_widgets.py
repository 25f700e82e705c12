"""Runs every queries/*.sql on DuckDB over a cetrail lake, for the cross-engine test.

usage: python duckdb_widgets.py PARAMS.json QUERIES_DIR
PARAMS.json holds the placeholder values cetrail used ({"lake": ..., "from": ...}).
Prints {widget: {"columns": [...], "rows": [[...], ...]}} with values normalised the
way the Rust side normalises polars' results: times as RFC 3339 UTC, dates as
YYYY-MM-DD, numbers as numbers, null as null.
"""
import json
import pathlib
import sys

import duckdb

sys.path.insert(0, str(pathlib.Path(__file__).parent))
from engine_norm import norm  # noqa: E402

params = json.loads(pathlib.Path(sys.argv[1]).read_text())
queries = pathlib.Path(sys.argv[2])


def render(sql: str) -> str:
    for k, v in params.items():
        sql = sql.replace("{{" + k + "}}", str(v))
    return sql


con = duckdb.connect()
con.execute("SET TimeZone = 'UTC'")
con.execute(render((queries / "views" / "duckdb.sql").read_text()))
con.execute("CREATE OR REPLACE VIEW session_facts AS\n" + render((queries / "views" / "session_facts.sql").read_text()))
out = {}
for f in sorted(queries.glob("*.sql")):
    cur = con.execute(render(f.read_text()))
    cols = [d[0] for d in cur.description]
    out[f.stem] = {"columns": cols, "rows": [[norm(v) for v in r] for r in cur.fetchall()]}
json.dump(out, sys.stdout)
