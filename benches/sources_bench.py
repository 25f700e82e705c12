"""Driver of benches/sources.sh: one generated CE activity, four sources, one run."""
import argparse, json, os, shutil, statistics, subprocess, tempfile, time

p = argparse.ArgumentParser()
p.add_argument("--bin", required=True)
p.add_argument("--runs", type=int, default=3)
p.add_argument("--days", type=int, default=67)
a = p.parse_args()
work = tempfile.mkdtemp(prefix="cetrail-sources-bench-")
try:
    # 2 accounts x 2 regions x 67 days x 1,500 records: ~100,000 CE events (the
    # generator's CE activity lands at ~25 % of the records with --ce-share 0.3).
    gen = subprocess.run(
        [a.bin, "generate", "--out", os.path.join(work, "trail"),
         "--log-group-export", os.path.join(work, "export"),
         "--eventbridge", os.path.join(work, "firehose"),
         "--event-history", os.path.join(work, "history", "lookup-events.json"),
         "--days", str(a.days), "--events-per-day", "1500", "--ce-share", "0.3",
         "--no-digests", "--seed", "11", "--json"],
        check=True, capture_output=True, text=True)
    shapes = json.loads(gen.stdout)["shapes"]
    print(f"sources benchmark: {shapes['ce_events']} CE events generated over {a.days} days; "
          f"{shapes['export_files']} export files, {shapes['eventbridge_files']} EventBridge files, "
          f"{shapes['event_history_events']} Event History events (management events only)")
    print(f"{'source':28} {'seconds':>8} {'CE events':>10} {'CE ev/s':>10} {'records/s':>10} {'MB/s JSON':>10} {'MB read':>8}")
    trail_t = None
    for name in ["trail", "export", "firehose", "history"]:
        times, summary = [], None
        for r in range(a.runs):
            lake = os.path.join(work, f"lake-{name}-{r}")
            t = time.perf_counter()
            out = subprocess.run([a.bin, "ingest", os.path.join(work, name), "--lake", lake, "--json"],
                                 check=True, capture_output=True, text=True)
            times.append(time.perf_counter() - t)
            summary = json.loads(out.stdout)
            shutil.rmtree(lake, ignore_errors=True)
        t = statistics.median(times)
        trail_t = trail_t or t
        kept, records = summary["kept_total"], summary["records_read"]
        mb, read = summary["bytes_decompressed"] / 1e6, summary["bytes_read"] / 1e6
        print(f"{name:28} {t:8.3f} {kept:10d} {kept / t:10.0f} {records / t:10.0f} {mb / t:10.0f} {read:8.1f}"
              f"   ({t / trail_t:.2f}x the trail's time)")
finally:
    shutil.rmtree(work, ignore_errors=True)
