"""Driver of benches/dashboard.sh."""
import argparse, json, os, statistics, subprocess, sys, tempfile, time, pathlib

import duckdb

p = argparse.ArgumentParser()
p.add_argument("--bin", required=True)
p.add_argument("--runs", type=int, default=3)
p.add_argument("--work", default=os.path.join(tempfile.gettempdir(), "cetrail-bench-dash"))
a = p.parse_args()
os.makedirs(a.work, exist_ok=True)
arch = os.path.join(a.work, "archive")
lake = os.path.join(a.work, "lake")
if not os.path.isdir(lake):
    if not os.path.isdir(arch):
        subprocess.run([a.bin, "generate", "--out", arch, "--days", "56", "--accounts", "2", "--regions", "2",
                        "--events-per-day", "12000", "--ce-share", "0.95", "--no-digests", "--seed", "9"],
                       check=True, stdout=subprocess.DEVNULL)
    subprocess.run([a.bin, "ingest", arch, "--lake", lake, "--quiet"], check=True)

# The same events after `cetrail lake compact` (one sorted file per month: the view's
# time order is then free), measured beside the lake as ingested.
compacted = os.path.join(a.work, "lake-compacted")
if not os.path.isdir(compacted):
    subprocess.run(["cp", "-r", lake, compacted], check=True)
    subprocess.run([a.bin, "lake", "compact", "--lake", compacted], check=True, stdout=subprocess.DEVNULL)

def ours_once(at, *extra):
    out = subprocess.run([a.bin, "dashboard", "--lake", at, "--format", "json", "--timings", *extra],
                         check=True, capture_output=True, text=True)
    return json.loads(out.stderr.strip().splitlines()[-1])

# Same placeholders as cetrail (default range: the lake's first to last day, UTC).
con = duckdb.connect()
con.execute("SET TimeZone = 'UTC'")
lo, hi = con.execute(f"SELECT min(event_time), max(event_time) FROM read_parquet('{lake}/events/*/*.parquet')").fetchone()
frm = lo.strftime("%Y-%m-%d 00:00:00+00")
to = (hi + __import__("datetime").timedelta(days=1)).strftime("%Y-%m-%d 00:00:00+00")
params = {"lake": lake, "from": frm, "to": to, "tz": "UTC", "business_start": "480", "business_end": "1080",
          "business_days": "1,2,3,4,5", "admin_role": "CE-Admin", "data_role": "CE-Data", "admin_threshold": "1",
          "denied_threshold": "10", "volume_window_hours": "672", "volume_min_hours": "5", "volume_score": "3.5",
          "volume_min_excess": "5.0", "lookback_days": "30", "lake_start": lo.strftime("%Y-%m-%d %H:%M:%S+00"),
          "lake_start_hour": str(int(lo.timestamp()) // 3600)}
def render(sql):
    for k, v in params.items():
        sql = sql.replace("{{" + k + "}}", v)
    return sql
q = pathlib.Path("queries")
view = render((q / "views" / "duckdb.sql").read_text())
facts = render((q / "views" / "session_facts.sql").read_text())
def duck_once():
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    t0 = time.perf_counter()
    con.execute(view.replace("CREATE OR REPLACE VIEW events AS", "CREATE OR REPLACE TEMP TABLE events AS"))
    con.execute("CREATE OR REPLACE TEMP TABLE session_facts AS\n" + facts)
    view_ms = (time.perf_counter() - t0) * 1e3
    w = {}
    for f in sorted(q.glob("*.sql")):
        t = time.perf_counter()
        # Fetched as an Arrow table: a columnar result like cetrail's frames (a
        # fetchall() would time Python building millions of tuples for the feed).
        con.sql(render(f.read_text())).to_arrow_table()
        w[f.stem] = (time.perf_counter() - t) * 1e3
    return {"view_ms": view_ms, "widgets_ms": w, "total_ms": (time.perf_counter() - t0) * 1e3}

# Interleaved (cetrail, DuckDB, cetrail on the compacted lake, cetrail one widget at a
# time) so that a slow spell of the machine weighs on all of them alike. The dashboard
# computes two widgets at a time by default, so a widget's own time there includes
# waiting for the other: each widget is compared with DuckDB from the `--jobs 1` run.
ours, duck, ours_compacted, ours_serial = [], [], [], []
for _ in range(a.runs):
    ours.append(ours_once(lake))
    duck.append(duck_once())
    ours_compacted.append(ours_once(compacted))
    ours_serial.append(ours_once(lake, "--jobs", "1"))
events = ours[0]["events"]

med = statistics.median
print(f"dashboard benchmark: {events} CE events, median of {a.runs} runs (ms)")
print(f"{'':22} {'cetrail':>9} {'duckdb':>9} {'ratio':>7}")
def row(name, x, y):
    print(f"{name:22} {x:9.1f} {y:9.1f} {y / x if x else float('nan'):6.1f}x")
row("view (shared scan)", med([r["view_ms"] for r in ours]), med([r["view_ms"] for r in duck]))
for name in sorted(ours_serial[0]["widgets_ms"]):
    row(name, med([r["widgets_ms"][name] for r in ours_serial]), med([r["widgets_ms"][name] for r in duck]))
row("whole dashboard", med([r["total_ms"] for r in ours]), med([r["total_ms"] for r in duck]))
row("  after lake compact", med([r["total_ms"] for r in ours_compacted]), med([r["total_ms"] for r in duck]))
row("  one widget at a time", med([r["total_ms"] for r in ours_serial]), med([r["total_ms"] for r in duck]))
stages = {k: med([r["view_stages_ms"][k] for r in ours]) for k in ours[0]["view_stages_ms"]}
print("cetrail view stages (ms): " + ", ".join(f"{k} {v:.0f}" for k, v in stages.items()))
# Our Sigma rules (the dashboard's 18th section) are in cetrail's whole-dashboard time;
# DuckDB's side has no counterpart (see benches/detect.sh for rules against DuckDB).
print(f"cetrail detections (ms, in the whole dashboard): {med([r.get('detections_ms', 0) for r in ours]):.0f}")

# The whole commands as a user runs them (process start, lake read, output written),
# each timed and its peak RSS measured by GNU time (`%M`). Not by this process's own
# wait4: a child forked from it inherits its high-water mark (DuckDB's gigabytes) at
# exec; time forks the command from its own small image. The dashboard (terminal
# tables; and every row of every widget as JSON, the feed alone one row per event), the
# audit of the whole lake, the first month's report, and the timelines of the busiest
# engineer and of one session, written to a file. DuckDB has no counterpart to these.
def measured(args, out=os.devnull):
    rss_file = os.path.join(a.work, "rss")
    with open(out, "wb") as sink:
        t = time.perf_counter()
        code = subprocess.run(["/usr/bin/time", "-f", "%M", "-o", rss_file, *args],
                              stdout=sink, stderr=subprocess.DEVNULL).returncode
        ms = (time.perf_counter() - t) * 1e3
    if code not in (0, 1):  # audit: 1 when a control fails
        sys.exit(f"{args[1]} failed ({code}): {args}")
    with open(rss_file) as f:
        kb = int(f.read().split()[-1])
    return ms, kb / 1024

def commands():
    month = lo.strftime("%Y-%m")
    busiest = con.execute(
        f"SELECT engineer, count(*) n FROM read_parquet('{lake}/events/*/*.parquet') "
        "WHERE engineer IS NOT NULL GROUP BY 1 ORDER BY n DESC, engineer LIMIT 1").fetchone()[0]
    session = con.execute(
        f"SELECT session_key FROM read_parquet('{lake}/events/*/*.parquet') "
        "WHERE session_key IS NOT NULL AND engineer = ? ORDER BY event_time LIMIT 1", [busiest]).fetchone()[0]
    out = os.path.join(a.work, "out")
    return [
        ("dashboard command", [a.bin, "dashboard", "--lake", lake], "tables to the terminal"),
        ("  --format json", [a.bin, "dashboard", "--lake", lake, "--format", "json"],
         f"every row of every widget, {events} feed rows"),
        ("audit", [a.bin, "audit", "--lake", lake, "--format", "json"], "whole lake"),
        (f"report {month}", [a.bin, "report", "--lake", lake, "--month", month, "--out", out + ".html"], "html"),
        ("timeline --engineer", [a.bin, "timeline", "--lake", lake, "--engineer", busiest, "--format", "json"],
         f"{busiest}, json to a file"),
        ("timeline --session", [a.bin, "timeline", "--lake", lake, "--session", session, "--format", "json"],
         "json to a file"),
    ]

print(f"{'whole commands':22} {'ms':>9} {'peak RSS':>9}")
for name, args, what in commands():
    runs = [measured(args, os.path.join(a.work, "out.json")) for _ in range(a.runs)]
    print(f"{name:22} {med([r[0] for r in runs]):9.1f} {med([r[1] for r in runs]):6.0f} MB   ({what})")
