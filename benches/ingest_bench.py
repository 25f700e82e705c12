"""Driver of benches/ingest.sh: generate, measure, print medians and ratios."""
import argparse, json, os, resource, shutil, statistics, subprocess, sys, tempfile, time

p = argparse.ArgumentParser()
p.add_argument("--bin", required=True)
p.add_argument("--threads", type=int, default=2)
p.add_argument("--runs", type=int, default=3)
p.add_argument("--scale", type=float, default=1.0)
p.add_argument("--work", default=os.path.join(tempfile.gettempdir(), "cetrail-bench"))
p.add_argument("--no-duckdb", action="store_true", help="skip the DuckDB comparisons")
p.add_argument("--tiny-files", type=int, default=300_000, help="files of the tiny-file archive (0: skip)")
a = p.parse_args()

def run(args):
    """Runs a command, returns (stdout, seconds)."""
    t = time.perf_counter()
    out = subprocess.run(args, check=False, capture_output=True, text=True)
    secs = time.perf_counter() - t
    if out.returncode not in (0, 3):
        sys.exit(f"{args[1]} failed ({out.returncode}): {out.stderr}")
    return out.stdout, secs

def peak_rss(args):
    """Peak RSS (MB) of one command. RUSAGE_CHILDREN is a maximum over all children so
    far, so each measurement runs in a fresh wrapper process of its own."""
    code = ("import resource,subprocess,sys;"
            "subprocess.run(sys.argv[1:],check=False,stdout=subprocess.DEVNULL,stderr=subprocess.DEVNULL);"
            "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")
    out = subprocess.run([sys.executable, "-c", code] + args, capture_output=True, text=True, check=True)
    return int(out.stdout.strip()) / 1024

# DuckDB's best path over CloudTrail (its read_json auto-detection fails on the two
# creationDate formats): each file's object as JSON, `Records` unnested, the CE filter
# and a projection of the main columns, written to zstd Parquet.
DUCK_SELECT = """
  SELECT json_extract_string(r, '$.eventTime') AS event_time,
         json_extract_string(r, '$.eventID') AS event_id,
         json_extract_string(r, '$.eventName') AS event_name,
         json_extract_string(r, '$.eventSource') AS event_source,
         json_extract_string(r, '$.awsRegion') AS aws_region,
         json_extract_string(r, '$.recipientAccountId') AS account,
         json_extract_string(r, '$.sourceIPAddress') AS source_ip,
         json_extract_string(r, '$.userIdentity.arn') AS identity_arn,
         json_extract_string(r, '$.errorCode') AS error_code,
         json_extract(r, '$.requestParameters') AS request_parameters
  FROM (SELECT unnest(json_extract(json, '$.Records[*]')) AS r
        FROM read_json_objects('{glob}', format = 'unstructured', maximum_object_size = 536870912))
"""
DUCK_CE = """
  WHERE regexp_matches(json_extract_string(r, '$.userIdentity.arn'), ':assumed-role/CE-(ReadOnly|Security|SRE|DevOps|Data|Admin)/')
     OR regexp_matches(json_extract_string(r, '$.requestParameters.roleArn'), ':role/CE-(ReadOnly|Security|SRE|DevOps|Data|Admin)$')
"""

def duckdb_runs(arch, threads, runs):
    """Seconds of DuckDB's CE-filter-to-Parquet and of a plain record count (medians)."""
    import duckdb
    glob = os.path.join(arch, "AWSLogs", "**", "*.json.gz")
    out = os.path.join(a.work, "duckdb-ce.parquet")
    to_parquet, count, rows = [], [], 0
    for _ in range(runs):
        con = duckdb.connect()
        con.execute(f"SET threads = {threads}")
        t = time.perf_counter()
        con.execute(f"COPY ({DUCK_SELECT.format(glob=glob)} {DUCK_CE}) TO '{out}' (FORMAT parquet, COMPRESSION zstd)")
        to_parquet.append(time.perf_counter() - t)
        rows = con.execute(f"SELECT count(*) FROM read_parquet('{out}')").fetchone()[0]
        t = time.perf_counter()
        con.execute(f"SELECT count(*) FROM (SELECT unnest(json_extract(json, '$.Records[*]')) FROM read_json_objects('{glob}', format = 'unstructured', maximum_object_size = 536870912))").fetchone()
        count.append(time.perf_counter() - t)
    return statistics.median(to_parquet), statistics.median(count), rows

os.makedirs(a.work, exist_ok=True)
sizes = [("16 days", 16), ("64 days", 64)]
rows = []
for label, days in sizes:
    days = max(1, int(days * a.scale))
    arch = os.path.join(a.work, f"archive-{days}d")
    if not os.path.isdir(arch):
        gen = [a.bin, "generate", "--out", arch, "--days", str(days), "--accounts", "2", "--regions", "2",
               "--events-per-day", "15000", "--ce-share", "0.01", "--no-digests", "--json", "--seed", "42"]
        out, secs = run(gen)
        print(f"generated {arch} in {secs:.1f} s", file=sys.stderr)
    ingests, gunzips = [], []
    # The CE path's steps on top of decompression, without the rest of the pipeline
    # (bench-gunzip --stage): where the gap between ingest and the bound comes from.
    stages = {"prefilter": [], "count": [], "parse": []}
    for i in range(a.runs):
        g, _ = run([a.bin, "bench-gunzip", arch, "--threads", str(a.threads)])
        gunzips.append(json.loads(g))
        for stage, xs in stages.items():
            g, _ = run([a.bin, "bench-gunzip", arch, "--threads", str(a.threads), "--stage", stage])
            xs.append(json.loads(g)["mb_per_second"])
        lake = os.path.join(a.work, "lake")
        shutil.rmtree(lake, ignore_errors=True)
        s, _ = run([a.bin, "ingest", arch, "--lake", lake, "--threads", str(a.threads), "--json"])
        ingests.append(json.loads(s))
    lake = os.path.join(a.work, "lake")
    shutil.rmtree(lake, ignore_errors=True)
    rss = peak_rss([a.bin, "ingest", arch, "--lake", lake, "--threads", str(a.threads), "--quiet"])
    shutil.rmtree(lake, ignore_errors=True)
    med = lambda xs: statistics.median(xs)
    s0 = ingests[0]
    duck_parquet = duck_count = float("nan")
    duck_rows = 0
    if not a.no_duckdb:
        duck_parquet, duck_count, duck_rows = duckdb_runs(arch, a.threads, a.runs)
    rows.append({
        "archive": label, "files": s0["ingested"], "json_mb": s0["bytes_decompressed"] / 1e6,
        "gz_mb": s0["bytes_read"] / 1e6, "records": s0["records_read"], "ce_events": s0["kept_total"],
        "ingest_mb_s": med([x["mb_per_second"] for x in ingests]),
        "ingest_rec_s": med([x["events_per_second"] for x in ingests]),
        "ingest_s": med([x["seconds"] for x in ingests]),
        "gunzip_mb_s": med([x["mb_per_second"] for x in gunzips]),
        "stage_mb_s": {k: med(v) for k, v in stages.items()},
        "peak_rss_mb": rss,
        "duckdb_parquet_s": duck_parquet, "duckdb_count_s": duck_count, "duckdb_ce_rows": duck_rows,
    })

tiny = None
if a.tiny_files:
    # Quiet accounts: 1-2 records per file (1-minute files, ~1.4 records a minute).
    # 10 accounts x 2 regions give ~1,085 files a day each: days scale the file count.
    days = max(1, -(-a.tiny_files // (20 * 1085)))  # ceil: at least the files asked for
    arch = os.path.join(a.work, f"archive-tiny-{days}d")
    if not os.path.isdir(arch):
        gen = [a.bin, "generate", "--out", arch, "--days", str(days), "--accounts", "10", "--regions", "2",
               "--events-per-day", "2000", "--file-minutes", "1", "--ce-share", "0.01", "--no-digests", "--json",
               "--seed", "43"]
        out, secs = run(gen)
        print(f"generated {arch} in {secs:.1f} s", file=sys.stderr)
    ingests = []
    for i in range(a.runs):
        lake = os.path.join(a.work, "lake")
        shutil.rmtree(lake, ignore_errors=True)
        s, secs = run([a.bin, "ingest", arch, "--lake", lake, "--threads", str(a.threads), "--json"])
        j = json.loads(s)
        j["wall"] = secs
        ingests.append(j)
    shutil.rmtree(os.path.join(a.work, "lake"), ignore_errors=True)
    s0 = ingests[0]
    tiny = {"files": s0["ingested"], "records": s0["records_read"],
            "seconds": statistics.median([x["seconds"] for x in ingests]),
            "wall": statistics.median([x["wall"] for x in ingests])}

print(f"\ncetrail ingest benchmark: {a.threads} threads, median of {a.runs} runs, 1 % CE events")
hdr = f"{'archive':8} {'files':>7} {'JSON MB':>8} {'records':>9} {'CE':>6} {'ingest s':>9} {'MB/s':>6} {'records/s':>10} {'gunzip MB/s':>12} {'of bound':>9} {'DuckDB->Parquet s':>18} {'vs DuckDB':>10} {'DuckDB count s':>15} {'peak RSS MB':>12}"
print(hdr)
for r in rows:
    print(f"{r['archive']:8} {r['files']:7d} {r['json_mb']:8.0f} {r['records']:9d} {r['ce_events']:6d} "
          f"{r['ingest_s']:9.2f} {r['ingest_mb_s']:6.0f} {r['ingest_rec_s']:10.0f} {r['gunzip_mb_s']:12.0f} "
          f"{100 * r['ingest_mb_s'] / r['gunzip_mb_s']:8.0f}% {r['duckdb_parquet_s']:18.2f} "
          f"{r['duckdb_parquet_s'] / r['ingest_s']:9.1f}x {r['duckdb_count_s']:15.2f} {r['peak_rss_mb']:12.0f}")
    st = r["stage_mb_s"]
    print(f"         bound + pre-filter {st['prefilter']:.0f} MB/s ({100 * st['prefilter'] / r['gunzip_mb_s']:.0f} %), "
          f"+ record count {st['count']:.0f} ({100 * st['count'] / r['gunzip_mb_s']:.0f} %), "
          f"+ scan and parse {st['parse']:.0f} ({100 * st['parse'] / r['gunzip_mb_s']:.0f} %); "
          f"ingest adds listing, ledger and writer: {r['ingest_mb_s']:.0f} ({100 * r['ingest_mb_s'] / r['gunzip_mb_s']:.0f} %)")
    if r["duckdb_ce_rows"]:
        print(f"         (DuckDB's CE filter kept {r['duckdb_ce_rows']} rows; cetrail {r['ce_events']})")
if tiny:
    print(f"tiny files: {tiny['files']} files, {tiny['records']} records, ingest {tiny['seconds']:.2f} s "
          f"= {tiny['files'] / tiny['seconds']:.0f} files/s (process wall {tiny['wall']:.2f} s)")
print(json.dumps({"archives": rows, "tiny": tiny}), file=sys.stderr)
