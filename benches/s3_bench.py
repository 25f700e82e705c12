"""Driver of benches/s3.sh: `cetrail ingest s3://` against `rclone serve s3` behind a delay
proxy (S3's first-byte latency on loopback), next to `rclone copy` + a local ingest of the
same objects, for an archive of many tiny objects and one of big objects."""
import argparse, json, os, shutil, socket, subprocess, sys, tempfile, time, urllib.request

p = argparse.ArgumentParser()
p.add_argument("--bin", required=True)
p.add_argument("--venv", required=True)
p.add_argument("--proxy", required=True, help="the delay_proxy binary")
p.add_argument("--tiny-objects", type=int, default=100_000)
p.add_argument("--big-days", type=int, default=36, help="days of the big-object archive (~31 MB JSON a day)")
p.add_argument("--delays", default="0,10,30", help="ms added to each request")
p.add_argument("--archives", default="tiny,big")
p.add_argument("--concurrency", type=int, default=None, help="passed to cetrail ingest (default: its own)")
p.add_argument("--keep", action="store_true", help="keep the work folder")
a = p.parse_args()
work = tempfile.mkdtemp(prefix="cetrail-s3-bench-")
rclone = os.path.join(a.venv, "bin", "rclone")
procs = []


def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]; s.close(); return port


def wait_port(port):
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close(); return
        except OSError:
            time.sleep(0.05)
    sys.exit(f"nothing listens on 127.0.0.1:{port}")


def timed(args, **kw):
    """Wall seconds, CPU seconds (user+sys), peak RSS MB and stdout of one command."""
    t = time.perf_counter()
    out = subprocess.run(["/usr/bin/time", "-f", "%U %S %M", *args], capture_output=True, text=True, **kw)
    wall = time.perf_counter() - t
    if out.returncode != 0:
        sys.exit(f"failed: {' '.join(args)}\n{out.stderr[-3000:]}")
    user, sys_, rss = out.stderr.strip().splitlines()[-1].split()
    return wall, float(user) + float(sys_), int(rss) / 1024, out.stdout


def generate(name, days, per_day, minutes):
    root = os.path.join(work, name)
    out = subprocess.run([a.bin, "generate", "--out", os.path.join(root, "trail"), "--days", str(days),
                          "--events-per-day", str(per_day), "--file-minutes", str(minutes), "--ce-share", "0.3",
                          "--no-digests", "--seed", "4", "--json"], check=True, capture_output=True, text=True)
    return root


archives = []
if "tiny" in a.archives:
    # 2 accounts x 2 regions x 288 five-minute slots a day, ~970 of them holding events
    # (a few records each: ~1.3 KB gzip).
    days = -(-a.tiny_objects // 970)
    archives.append(("tiny objects", generate("tiny", days, 1200, 5)))
if "big" in a.archives:
    # Hourly files of ~300 records (~300 KB of JSON): ~3,500 objects, ~1.1 GB of JSON.
    archives.append(("big objects", generate("big", a.big_days, 7_200, 60)))

env = dict(os.environ, AWS_ACCESS_KEY_ID="test", AWS_SECRET_ACCESS_KEY="test", AWS_REGION="us-east-1",
           AWS_DEFAULT_REGION="us-east-1", AWS_EC2_METADATA_DISABLED="true")
delays = [int(d) for d in a.delays.split(",")]
rows = []
try:
    for label, root in archives:
        port = free_port()
        procs.append(subprocess.Popen([rclone, "serve", "s3", "--addr", f"127.0.0.1:{port}", "--auth-key", "test,test",
                                       root], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        wait_port(port)
        # The local ingest of the archive: the bound of what ingest does once bytes are here.
        t_local, cpu_local, _, _ = timed([a.bin, "ingest", os.path.join(root, "trail"), "--lake",
                                          os.path.join(work, "lake-local"), "--json"])
        shutil.rmtree(os.path.join(work, "lake-local"))
        for delay in delays:
            pport = free_port()
            proxy = subprocess.Popen([a.proxy, str(pport), f"127.0.0.1:{port}", str(delay)], stdout=subprocess.PIPE,
                                     text=True)
            procs.append(proxy)
            proxy.stdout.readline()
            endpoint = f"http://127.0.0.1:{pport}"
            lake = os.path.join(work, "lake-s3")
            extra = ["--concurrency", str(a.concurrency)] if a.concurrency else []
            t_s3, cpu_s3, rss_s3, out = timed([a.bin, "ingest", "s3://trail", "--lake", lake, "--endpoint-url", endpoint,
                                               "--json", *extra], env=env)
            summary = json.loads(out)
            shutil.rmtree(lake)
            copy = os.path.join(work, "copy")
            renv = dict(env, RCLONE_CONFIG_B_TYPE="s3", RCLONE_CONFIG_B_PROVIDER="Other",
                        RCLONE_CONFIG_B_ENDPOINT=endpoint, RCLONE_CONFIG_B_ACCESS_KEY_ID="test",
                        RCLONE_CONFIG_B_SECRET_ACCESS_KEY="test", RCLONE_CONFIG_B_REGION="us-east-1")
            t_cp, _, _, _ = timed([rclone, "copy", "--transfers", "64", "b:trail", copy], env=renv)
            t_ci, _, _, _ = timed([a.bin, "ingest", copy, "--lake", os.path.join(work, "lake-copy"), "--json"])
            shutil.rmtree(copy); shutil.rmtree(os.path.join(work, "lake-copy"))
            proxy.terminate(); proxy.wait()
            n = summary["objects_seen"]
            rows.append(dict(archive=label, delay=delay, objects=n, mb=summary["bytes_decompressed"] / 1e6,
                             mb_gz=summary["bytes_read"] / 1e6, t=t_s3, cpu=cpu_s3, rss=rss_s3, cp=t_cp, ci=t_ci,
                             local=t_local, cpu_local=cpu_local, rejected=summary["rejected"],
                             ingested=summary["ingested"]))
            r = rows[-1]
            print(f"  {label}, +{delay} ms: {t_s3:.2f} s, {n / t_s3:,.0f} objects/s, rclone copy {t_cp:.2f} s",
                  file=sys.stderr, flush=True)
        procs.pop(0).terminate()
    print("S3 ingest benchmark: `rclone serve s3` on 127.0.0.1 behind a proxy adding a fixed delay per request")
    print(f"{'archive':13} {'+ms':>4} {'objects':>8} {'MB JSON':>8} {'seconds':>8} {'objects/s':>10} {'MB/s':>6} "
          f"{'CPU ms/obj':>10} {'RSS MB':>7} {'rclone copy':>11} {'+ local':>8} {'ratio':>6} {'local only':>10}")
    for r in rows:
        total = r["cp"] + r["ci"]
        print(f"{r['archive']:13} {r['delay']:4d} {r['objects']:8d} {r['mb']:8.0f} {r['t']:8.2f} "
              f"{r['objects'] / r['t']:10,.0f} {r['mb'] / r['t']:6.0f} {1000 * r['cpu'] / r['objects']:10.3f} "
              f"{r['rss']:7.0f} {r['cp']:11.2f} {total:8.2f} {total / r['t']:5.2f}x {r['local']:10.2f}")
        if r["rejected"]:
            print(f"  ! {r['rejected']} objects rejected")
    for label in dict.fromkeys(r["archive"] for r in rows):
        mine = [r for r in rows if r["archive"] == label]
        base = next((r for r in mine if r["delay"] == 0), None)
        if base:
            for r in mine:
                if r["delay"]:
                    print(f"{label}: +{r['delay']} ms runs at {100 * base['t'] / r['t']:.0f} % of the +0 ms rate")
finally:
    for proc in procs:
        proc.terminate()
    if not a.keep:
        shutil.rmtree(work, ignore_errors=True)
