"""Driver of benches/s3.sh."""
import argparse, json, os, shutil, socket, subprocess, sys, tempfile, time, urllib.request

import boto3

p = argparse.ArgumentParser()
p.add_argument("--bin", required=True)
p.add_argument("--venv", required=True)
p.add_argument("--days", type=int, default=7)
a = p.parse_args()
work = tempfile.mkdtemp(prefix="cetrail-s3-bench-")
arch = os.path.join(work, "archive")
subprocess.run([a.bin, "generate", "--out", arch, "--days", str(a.days), "--events-per-day", "3000",
                "--ce-share", "0.01", "--no-digests", "--seed", "4"], check=True, stdout=subprocess.DEVNULL)

s = socket.socket(); s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]; s.close()
moto = subprocess.Popen([os.path.join(a.venv, "bin", "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
endpoint = f"http://127.0.0.1:{port}"
try:
    for _ in range(100):
        try:
            urllib.request.urlopen(endpoint + "/moto-api/"); break
        except Exception:
            time.sleep(0.1)
    env = dict(os.environ, AWS_ACCESS_KEY_ID="test", AWS_SECRET_ACCESS_KEY="test", AWS_REGION="us-east-1",
               AWS_DEFAULT_REGION="us-east-1")
    s3 = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id="test", aws_secret_access_key="test",
                      region_name="us-east-1")
    s3.create_bucket(Bucket="trail")
    files = 0
    for root, _, names in os.walk(arch):
        for n in names:
            path = os.path.join(root, n)
            s3.upload_file(path, "trail", os.path.relpath(path, arch)); files += 1

    def timed(args, **kw):
        t = time.perf_counter(); out = subprocess.run(args, check=True, capture_output=True, text=True, **kw)
        return time.perf_counter() - t, out.stdout

    lake = lambda n: os.path.join(work, n)
    t_s3, out = timed([a.bin, "ingest", "s3://trail", "--lake", lake("s3"), "--endpoint-url", endpoint, "--json"], env=env)
    summary = json.loads(out)
    t_local, _ = timed([a.bin, "ingest", arch, "--lake", lake("local"), "--json"])
    copy = os.path.join(work, "copy")
    t_cp, _ = timed([os.path.join(a.venv, "bin", "aws"), "s3", "cp", "--recursive", "--quiet", "--endpoint-url",
                     endpoint, "s3://trail", copy], env=env)
    t_cp_ingest, _ = timed([a.bin, "ingest", copy, "--lake", lake("copy"), "--json"])
    mb = summary["bytes_decompressed"] / 1e6
    print(f"S3 ingest benchmark: {files} objects, {summary['bytes_read'] / 1e6:.0f} MB gzip, {mb:.0f} MB JSON, moto_server on loopback")
    print(f"{'path':38} {'seconds':>8} {'MB/s JSON':>10} {'vs s3':>7}")
    for name, t in [("cetrail ingest s3://", t_s3), ("cetrail ingest (local folder)", t_local),
                    ("aws s3 cp --recursive + local ingest", t_cp + t_cp_ingest)]:
        print(f"{name:38} {t:8.2f} {mb / t:10.0f} {t / t_s3:6.2f}x")
finally:
    moto.terminate()
    shutil.rmtree(work, ignore_errors=True)
