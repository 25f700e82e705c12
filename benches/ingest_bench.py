"""Driver of benches/ingest.sh: generate, measure, print medians and ratios."""
import argparse, json, os, resource, shutil, statistics, subprocess, sys, tempfile, time

p = argparse.ArgumentParser()
p.add_argument("--bin", required=True)
p.add_argument("--threads", type=int, default=2)
p.add_argument("--runs", type=int, default=3)
p.add_argument("--scale", type=float, default=1.0)
p.add_argument("--work", default=os.path.join(tempfile.gettempdir(), "cetrail-bench"))
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

os.makedirs(a.work, exist_ok=True)
sizes = [("1x", 14), ("2x", 28)]
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
    for i in range(a.runs):
        g, _ = run([a.bin, "bench-gunzip", arch, "--threads", str(a.threads)])
        gunzips.append(json.loads(g))
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
    rows.append({
        "archive": label, "files": s0["ingested"], "json_mb": s0["bytes_decompressed"] / 1e6,
        "gz_mb": s0["bytes_read"] / 1e6, "records": s0["records_read"], "ce_events": s0["kept_total"],
        "ingest_mb_s": med([x["mb_per_second"] for x in ingests]),
        "ingest_rec_s": med([x["events_per_second"] for x in ingests]),
        "ingest_s": med([x["seconds"] for x in ingests]),
        "gunzip_mb_s": med([x["mb_per_second"] for x in gunzips]),
        "peak_rss_mb": rss,
    })

print(f"\ncetrail ingest benchmark: {a.threads} threads, median of {a.runs} runs, 1 % CE events")
hdr = f"{'archive':8} {'files':>7} {'JSON MB':>8} {'gz MB':>7} {'records':>9} {'CE':>6} {'ingest s':>9} {'ingest MB/s':>12} {'records/s':>10} {'gunzip MB/s':>12} {'of bound':>9} {'peak RSS MB':>12}"
print(hdr)
for r in rows:
    print(f"{r['archive']:8} {r['files']:7d} {r['json_mb']:8.0f} {r['gz_mb']:7.0f} {r['records']:9d} {r['ce_events']:6d} "
          f"{r['ingest_s']:9.2f} {r['ingest_mb_s']:12.0f} {r['ingest_rec_s']:10.0f} {r['gunzip_mb_s']:12.0f} "
          f"{100 * r['ingest_mb_s'] / r['gunzip_mb_s']:8.0f}% {r['peak_rss_mb']:12.0f}")
print(json.dumps(rows), file=sys.stderr)
