"""Driver of benches/serve.sh: `cetrail serve` over the dashboard benchmark's lake, timed
in headless Chromium by the page's navigation timing (request start to the load event:
the server's work, the transfer and the browser's layout of every table and chart).

Per run, a fresh server: the first full page (the lake read once: the view's columns and
our rules' hits), then changes that read nothing from the lake (a month, a role, an
engineer, a zone, the last 7 days), then the first view again (kept: no work). The
bars (issue 37): first page <= 2 s, each range or filter change <= 0.5 s (a zone change has none). Printed next to the time of the
`dashboard` command (17 widgets and detections, tables to a file) on the same lake."""
import argparse, json, os, statistics, subprocess, sys, tempfile, time

from playwright.sync_api import sync_playwright

p = argparse.ArgumentParser()
p.add_argument("--bin", required=True)
p.add_argument("--runs", type=int, default=3)
p.add_argument("--work", default=os.path.join(tempfile.gettempdir(), "cetrail-bench-dash"))
a = p.parse_args()
lake = os.path.join(a.work, "lake")
exe = os.environ.get("CETRAIL_CHROMIUM", "/usr/bin/chromium")


def dashboard_ms():
    t = time.perf_counter()
    with open(os.devnull, "wb") as null:
        subprocess.run([a.bin, "dashboard", "--lake", lake], check=True, stdout=null)
    return (time.perf_counter() - t) * 1e3


def peak_rss_mb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


engineer = subprocess.run([a.bin, "query", "engineers", "--lake", lake, "--format", "json"],
                          check=True, capture_output=True).stdout
engineer = json.loads(engineer)[0]["engineer"]
accounts = json.loads(subprocess.run([a.bin, "query", "accounts", "--lake", lake, "--format", "json"],
                                     check=True, capture_output=True).stdout)
last_day = max(r["last_seen"] for r in accounts)[:10]
import datetime
most = (datetime.date.fromisoformat(last_day) - datetime.timedelta(days=6)).isoformat()
STEPS = [
    ("first page (whole lake)", "", 2000),
    ("range: one month", "from=2026-09-01&to=2026-10-01", 500),
    ("filter: role CE-Data", "from=2026-09-01&to=2026-10-01&role=CE-Data", 500),
    ("filter: one engineer", f"engineer={engineer}", 500),
    ("zone: America/New_York", "tz=America%2FNew_York", None),
    ("range: all but the last week", f"to={most}", 500),
    ("range: last 7 d (preset)", None, 500),
    ("first view again (kept)", "", 500),
]
TIMING = """() => { const n = performance.getEntriesByType('navigation')[0];
  return {response: n.responseEnd - n.startTime, load: n.loadEventEnd - n.startTime,
          bytes: n.transferSize,
          server: n.serverTiming.map(e => e.name + ' ' + Math.round(e.duration))}; }"""

results = {name: [] for name, _, _ in STEPS}
dash, rss, sizes, steps = [], [], {}, {}
for run in range(a.runs):
    dash.append(dashboard_ms())
    server = subprocess.Popen([a.bin, "serve", "--lake", lake, "--port", "0"],
                              stdout=subprocess.PIPE, text=True)
    try:
        url = server.stdout.readline().strip().rsplit(" ", 1)[-1]
        base = url.split("?", 1)[0]
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=exe, args=["--no-sandbox", "--disable-gpu"])
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            # Chromium settles (its start-up takes the same two cores) before the clock.
            page.goto("about:blank")
            time.sleep(1.0)
            for i, (name, query, _) in enumerate(STEPS):
                if i == 0:
                    page.goto(url, wait_until="load", timeout=120_000)
                elif query is None:
                    page.locator("nav.presets a", has_text="last 7 d").click()
                    page.wait_for_load_state("load")
                else:
                    page.goto(f"{base}?{query}", wait_until="load", timeout=120_000)
                t = page.evaluate(TIMING)
                if page.evaluate("() => document.querySelectorAll('section[data-widget]').length") != 18:
                    sys.exit(f"{name}: the page does not hold 18 sections")
                results[name].append(t["load"])
                sizes[name] = t["bytes"]
                steps[name] = ", ".join(t["server"])
            browser.close()
        rss.append(peak_rss_mb(server.pid))
    finally:
        server.kill()
        server.wait()

print(f"lake: {lake}")
print(f"cetrail dashboard (the command, 17 widgets + detections): {statistics.median(dash):.0f} ms "
      f"(median of {a.runs})")
print(f"{'step':32} {'median ms':>10} {'bar ms':>7} {'page KB':>8}  runs")
ok = True
for name, _, bar in STEPS:
    m = statistics.median(results[name])
    ok &= bar is None or m <= bar
    runs = " ".join(f"{x:.0f}" for x in results[name])
    print(f"{name:32} {m:10.0f} {bar or '-':>7} {sizes[name] / 1024:8.0f}  {runs}")
print("server's steps (ms, last run; Server-Timing):")
for name, _, _ in STEPS:
    print(f"  {name:30} {steps[name] or 'none (kept)'}")
print(f"serve peak RSS: {statistics.median(rss):.0f} MB (median; runs {' '.join(f'{x:.0f}' for x in rss)})")
print("bars met" if ok else "a bar is not met")
