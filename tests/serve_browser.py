"""Opens `cetrail serve`'s page in real headless Chromium (Debian's, via Playwright's
driver) and reports what happened: console messages, page errors, every request's URL,
dialogs, whether an injected payload ran, each widget section's table, the timeline a
click on an engineer opens, the same view opened again from its URL in a new page, and
a screenshot.

Then more views: the "last 7 d" preset clicked on the first page, and each VIEW given
(a query string; `{engineer}` stands for the engineer clicked), each with its URL and
tables.

Usage: serve_browser.py URL SCREENSHOT.png [VIEW…]  → one JSON object on stdout.
URL is the one `cetrail serve` printed (with its token) plus the view's parameters.
"""

import json
import os
import sys
import urllib.parse

from playwright.sync_api import sync_playwright

url, shot, views = sys.argv[1], sys.argv[2], sys.argv[3:]
exe = os.environ.get("CETRAIL_CHROMIUM", "/usr/bin/chromium")
result = {"console": [], "errors": [], "requests": [], "dialogs": []}

TABLES = """() => Object.fromEntries([...document.querySelectorAll('section[data-widget]')].map(s => [
    s.dataset.widget,
    [...s.querySelectorAll('table tr')].map(r => [...r.children].map(c => c.textContent))]))"""


def watch(page):
    page.on("console", lambda m: result["console"].append({"type": m.type, "text": m.text}))
    page.on("pageerror", lambda e: result["errors"].append(str(e)))
    page.on("request", lambda r: result["requests"].append(r.url))
    page.on("dialog", lambda d: (result["dialogs"].append(d.message), d.dismiss()))


with sync_playwright() as p:
    browser = p.chromium.launch(executable_path=exe, args=["--no-sandbox", "--disable-gpu"])
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    watch(page)
    page.goto(url, wait_until="load")
    result["url"] = page.url
    result["pwned"] = page.evaluate("() => window.__pwned || null")
    result["scripts"] = page.evaluate("() => document.scripts.length")
    result["images"] = page.evaluate("() => document.images.length")
    result["tables"] = page.evaluate(TABLES)
    page.screenshot(path=shot, full_page=False)
    # Drill-down: the first engineer link.
    link = page.locator("a[href^='/timeline?'][href*='engineer=']").first
    result["engineer"] = link.text_content()
    link.click()
    page.wait_for_load_state("load")
    result["timeline_url"] = page.url
    result["timeline_events"] = page.evaluate(
        """() => [...document.querySelectorAll('section[data-timeline="events"] table tr')]
             .map(r => [...r.children].map(c => c.textContent))""")
    page.locator("#back").click()
    page.wait_for_load_state("load")
    result["back_tables"] = page.evaluate(TABLES)
    # The same view from its URL alone, in a new page (the cookie holds the token).
    again = context.new_page()
    watch(again)
    parts = urllib.parse.urlsplit(result["url"])
    kept = [(k, v) for k, v in urllib.parse.parse_qsl(parts.query) if k != "token"]
    result["again_url"] = urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(kept)))
    again.goto(result["again_url"], wait_until="load")
    result["again_tables"] = again.evaluate(TABLES)
    # A range preset, clicked.
    page.goto(result["again_url"], wait_until="load")
    page.locator("nav.presets a", has_text="last 7 d").click()
    page.wait_for_load_state("load")
    result["views"] = [{"url": page.url, "tables": page.evaluate(TABLES)}]
    # The views asked for, from their URLs.
    for view in views:
        query = view.replace("{engineer}", urllib.parse.quote(result["engineer"]))
        target = urllib.parse.urlunsplit(parts._replace(query=query))
        page.goto(target, wait_until="load")
        result["views"].append({"url": page.url, "tables": page.evaluate(TABLES)})
    browser.close()
print(json.dumps(result))
