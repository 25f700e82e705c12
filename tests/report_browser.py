"""Opens a cetrail HTML report in real headless Chromium (Debian's, via Playwright's
driver) and reports what happened: console messages, network requests beyond the page
itself, dialogs, whether any injected payload ran, and a screenshot.

Usage: report_browser.py REPORT.html SCREENSHOT.png  → one JSON object on stdout.
"""

import json
import os
import pathlib
import sys

from playwright.sync_api import sync_playwright

report = pathlib.Path(sys.argv[1]).resolve()
shot = pathlib.Path(sys.argv[2]).resolve()
exe = os.environ.get("CETRAIL_CHROMIUM", "/usr/bin/chromium")
result = {"console": [], "errors": [], "requests": [], "dialogs": []}
with sync_playwright() as p:
    browser = p.chromium.launch(executable_path=exe, args=["--no-sandbox", "--disable-gpu"])
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.on("console", lambda m: result["console"].append({"type": m.type, "text": m.text}))
    page.on("pageerror", lambda e: result["errors"].append(str(e)))
    page.on("request", lambda r: result["requests"].append(r.url))
    page.on("dialog", lambda d: (result["dialogs"].append(d.message), d.dismiss()))
    page.goto(report.as_uri(), wait_until="load")
    page.wait_for_timeout(300)
    result["pwned"] = page.evaluate("() => window.__pwned || null")
    result["scripts"] = page.evaluate("() => document.scripts.length")
    result["images"] = page.evaluate("() => document.images.length")
    result["svgs"] = page.evaluate("() => document.querySelectorAll('svg').length")
    result["text"] = page.inner_text("body")
    result["title"] = page.title()
    page.screenshot(path=str(shot), full_page=True)
    browser.close()
result["requests"] = [u for u in result["requests"] if u != report.as_uri()]
print(json.dumps(result))
