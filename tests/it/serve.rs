//! `cetrail serve` (SPEC §13), over HTTP from the test: the token, the headers, every
//! widget's JSON endpoint against `cetrail query`, the page's sections, drill-down to
//! a timeline equal to `cetrail timeline`, and payloads rendered inert.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};

use serde_json::Value;

use crate::util::{BIN, cetrail, generate, tempdir};

/// A running `cetrail serve`, killed when dropped.
struct Server {
    child: Child,
    addr: String,
    token: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(lake: &Path) -> Server {
    let mut child = Command::new(BIN)
        .args([
            "serve",
            "--lake",
            lake.to_str().expect("utf-8"),
            "--port",
            "0",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start serve");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("the URL line");
    // cetrail serve: http://127.0.0.1:PORT/?token=HEX
    let url = line.trim().rsplit(' ').next().unwrap_or("").to_string();
    let rest = url.strip_prefix("http://").expect("an http URL");
    let (addr, query) = rest.split_once("/?token=").expect("a token in the URL");
    assert!(addr.starts_with("127.0.0.1:"), "{line}");
    assert_eq!(query.len(), 32, "128 bits of token: {line}");
    Server {
        child,
        addr: addr.to_string(),
        token: query.to_string(),
    }
}

/// One HTTP/1.1 GET: status, headers (lower-cased names), body.
fn get(addr: &str, target: &str, cookie: Option<&str>) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let mut s = TcpStream::connect(addr).expect("connect");
    let cookie = cookie
        .map(|c| format!("Cookie: {c}\r\n"))
        .unwrap_or_default();
    write!(
        s,
        "GET {target} HTTP/1.1\r\nHost: {addr}\r\n{cookie}Connection: close\r\n\r\n"
    )
    .expect("send");
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).expect("read");
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a header block");
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut body = raw[split + 4..].to_vec();
    let mut lines = head.lines();
    let status: u16 = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|c| c.parse().ok())
        .expect("a status");
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    if headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.contains("chunked"))
    {
        body = unchunk(&body);
    }
    (status, headers, body)
}

fn unchunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let Some(eol) = data.windows(2).position(|w| w == b"\r\n") else {
            return out;
        };
        let size = usize::from_str_radix(String::from_utf8_lossy(&data[..eol]).trim(), 16)
            .expect("a chunk size");
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&data[eol + 2..eol + 2 + size]);
        data = &data[eol + 2 + size + 2..];
    }
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// Writes `record` as a trail file of 2026-09-10 (eu-west-1, account 111122223333)
/// named by `stamp` under `archive`.
fn trail_file(archive: &Path, stamp: &str, record: Value) {
    crate::util::write(
        &archive.join(format!("AWSLogs/111122223333/CloudTrail/eu-west-1/2026/09/10/111122223333_CloudTrail_eu-west-1_{stamp}.json.gz")),
        &crate::util::gzip(serde_json::json!({ "Records": [record] }).to_string().as_bytes()),
    );
}

/// A generated lake of nine days, plus a call whose user agent and session name carry
/// markup.
fn serve_lake(dir: &Path) -> std::path::PathBuf {
    let arch = dir.join("arch");
    generate(
        &arch,
        &["--days", "9", "--seed", "31", "--events-per-day", "900"],
    );
    // A call whose user agent and session name carry markup: shown, never run.
    let payload = crate::util::as_ce_session(
        serde_json::json!({
            "eventVersion": "1.09", "eventTime": "2026-09-10T10:00:00Z", "eventID": "payload-1",
            "eventName": "DescribeInstances", "eventSource": "ec2.amazonaws.com",
            "awsRegion": "eu-west-1", "sourceIPAddress": "203.0.113.10",
            "userAgent": "<script>alert(1)</script>", "recipientAccountId": "111122223333",
            "eventType": "AwsApiCall", "readOnly": true
        }),
        "CE-SRE",
        "<img src=x onerror=alert(2)>",
        "ASIAPAYLOAD",
        "2026-09-10T09:00:00Z",
    );
    trail_file(&arch, "20260910T1000Z_p", payload);
    let lake = dir.join("lake");
    let (code, _) = crate::util::ingest(&arch, &lake, &[]);
    assert_eq!(code, 0);
    lake
}

#[test]
fn serve_needs_the_token_and_answers_what_query_and_timeline_answer() {
    let dir = tempdir();
    let lake = serve_lake(dir.path());
    let server = start(&lake);
    let (addr, token) = (server.addr.clone(), server.token.clone());

    // Without the token, or with a wrong one: 403, for pages and endpoints alike.
    for target in [
        "/",
        "/api/widgets/accounts",
        "/timeline?engineer=x",
        "/assets/app.css",
    ] {
        assert_eq!(get(&addr, target, None).0, 403, "{target}");
    }
    assert_eq!(get(&addr, "/?token=0123", None).0, 403);
    assert_eq!(
        get(
            &addr,
            "/",
            Some("cetrail_token=00000000000000000000000000000000")
        )
        .0,
        403
    );

    // The token in the URL sets the cookie; the cookie alone then works.
    let (status, headers, body) = get(&addr, &format!("/?token={token}"), None);
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let set = header(&headers, "set-cookie").expect("a cookie");
    assert!(set.contains(&token) && set.contains("HttpOnly"), "{set}");
    let csp = header(&headers, "content-security-policy").expect("a CSP");
    assert!(csp.contains("default-src 'none'"), "{csp}");
    let cookie = format!("cetrail_token={token}");
    let html = String::from_utf8_lossy(&body).into_owned();
    for w in cetrail::query::widgets::WIDGETS {
        assert!(
            html.contains(&format!(r#"<section data-widget="{}""#, w.name)),
            "{}",
            w.name
        );
    }
    assert!(html.contains(r#"<section data-widget="detections""#));
    assert!(
        !html.contains("<script") && !html.contains("<img"),
        "nothing runs"
    );
    assert!(
        html.contains("&lt;img src=x onerror=alert(2)&gt;"),
        "the payload is shown as text"
    );
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "no other origin"
    );

    // Every widget's endpoint equals `cetrail query` for three ranges, a filter and a
    // zone that is not UTC.
    let lake_arg = lake.to_str().expect("utf-8");
    let out = cetrail(
        &["query", "engineers", "--lake", lake_arg, "--format", "json"],
        dir.path(),
    );
    let engineers: Value = serde_json::from_slice(&out.stdout).expect("engineers JSON");
    let someone = engineers[0]["engineer"]
        .as_str()
        .expect("an engineer")
        .to_string();
    let views: [&[(&str, &str)]; 5] = [
        &[],
        &[("from", "2026-09-08"), ("to", "2026-09-12")],
        &[
            ("from", "2026-09-09T06:00:00Z"),
            ("to", "2026-09-10T18:00:00Z"),
            ("role", "CE-SRE"),
        ],
        &[
            ("from", "2026-09-08"),
            ("to", "2026-09-11"),
            ("tz", "America/New_York"),
        ],
        &[("engineer", &someone), ("from", "2026-09-09")],
    ];
    for view in views {
        let query: Vec<String> = view
            .iter()
            .map(|(k, v)| format!("{k}={}", cetrail::serve::page::encode(v)))
            .collect();
        let mut args: Vec<String> = Vec::new();
        for (k, v) in view {
            args.push(format!("--{k}"));
            args.push(v.to_string());
        }
        for w in cetrail::query::widgets::WIDGETS {
            let (status, _, body) = get(
                &addr,
                &format!("/api/widgets/{}?{}", w.name, query.join("&")),
                Some(&cookie),
            );
            assert_eq!(
                status,
                200,
                "{} {view:?}: {}",
                w.name,
                String::from_utf8_lossy(&body)
            );
            let served: Value = serde_json::from_slice(&body).expect("JSON");
            let mut cli = vec!["query", w.name, "--lake", lake_arg, "--format", "json"];
            cli.extend(args.iter().map(String::as_str));
            let out = cetrail(&cli, dir.path());
            assert!(out.status.success(), "{}", crate::util::stderr(&out));
            let printed: Value = serde_json::from_slice(&out.stdout).expect("query JSON");
            assert_eq!(served, printed, "{} {view:?}", w.name);
        }
    }

    // Drill-down: the page links an engineer to their timeline, whose events are
    // `cetrail timeline --engineer`'s.
    let link = html
        .split(r#"<a href="/timeline?"#)
        .nth(1)
        .and_then(|s| s.split('"').next())
        .expect("a drill-down link");
    assert!(link.contains("engineer=") || link.contains("session=") || link.contains("ip="));
    let engineer = html
        .split("/timeline?engineer=")
        .skip(1)
        .filter_map(|s| s.split('"').next())
        .find(|e| e.chars().all(|c| c.is_ascii_alphanumeric() || c == '.'))
        .expect("an engineer link")
        .to_string();
    let (status, _, body) = get(
        &addr,
        &format!("/timeline?engineer={engineer}"),
        Some(&cookie),
    );
    assert_eq!(status, 200);
    let page = String::from_utf8_lossy(&body).into_owned();
    let out = cetrail(
        &[
            "timeline",
            "--lake",
            lake_arg,
            "--engineer",
            &engineer,
            "--format",
            "json",
        ],
        dir.path(),
    );
    let ids = timeline_ids(&out);
    assert!(!ids.is_empty());
    let events = page
        .split(r#"<section data-timeline="events">"#)
        .nth(1)
        .expect("the events section");
    let rows = events.matches("<tr>").count() - 1;
    assert_eq!(rows, ids.len(), "one row per event of `cetrail timeline`");
    for id in &ids {
        assert!(events.contains(id.as_str()), "{id}");
    }
    assert!(page.contains(r#"id="back""#));

    // Live: an ingest that commits to the lake shows on the next request (the kept
    // view is dropped with the old ledger state).
    let feed = |cookie: &str| -> Value {
        let (status, _, body) = get(&addr, "/api/widgets/activity-feed", Some(cookie));
        assert_eq!(status, 200);
        serde_json::from_slice(&body).expect("JSON")
    };
    let before = feed(&cookie).as_array().expect("rows").len();
    let more = dir.path().join("more");
    let late = crate::util::as_ce_session(
        serde_json::json!({
            "eventVersion": "1.09", "eventTime": "2026-09-10T11:00:00Z", "eventID": "late-1",
            "eventName": "GetCallerIdentity", "eventSource": "sts.amazonaws.com",
            "awsRegion": "eu-west-1", "sourceIPAddress": "203.0.113.11",
            "userAgent": "aws-cli/2", "recipientAccountId": "111122223333",
            "eventType": "AwsApiCall", "readOnly": true
        }),
        "CE-SRE",
        "late.engineer",
        "ASIALATE",
        "2026-09-10T10:30:00Z",
    );
    trail_file(&more, "20260910T1100Z_q", late);
    let (code, _) = crate::util::ingest(&more, &lake, &[]);
    assert_eq!(code, 0);
    let after = feed(&cookie);
    assert_eq!(after.as_array().expect("rows").len(), before + 1);
    let out = cetrail(
        &[
            "query",
            "activity-feed",
            "--lake",
            lake_arg,
            "--format",
            "json",
        ],
        dir.path(),
    );
    let printed: Value = serde_json::from_slice(&out.stdout).expect("query JSON");
    assert_eq!(after, printed);
    let (_, _, body) = get(&addr, "/", Some(&cookie));
    let html = String::from_utf8_lossy(&body).into_owned();
    assert!(
        html.contains("late.engineer"),
        "the page shows the new event"
    );
    assert!(
        html.contains(r#"id="updated">updated 20"#),
        "the lake's commit time"
    );
}

/// The event ids of `cetrail timeline --format json`'s output, in order.
fn timeline_ids(out: &std::process::Output) -> Vec<String> {
    let t: Value = serde_json::from_slice(&out.stdout).expect("timeline JSON");
    t["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter_map(|e| e["event_id"].as_str().map(str::to_string))
        .collect()
}

/// A page cell against the JSON value `cetrail query` gives for it.
fn same_cell(cell: &str, v: &Value) -> bool {
    match v {
        Value::Null => cell.is_empty(),
        Value::String(t) => cell == t,
        Value::Bool(b) => cell == b.to_string(),
        Value::Number(n) => cell
            .parse::<f64>()
            .ok()
            .zip(n.as_f64())
            .is_some_and(|(a, b)| (a - b).abs() <= 1e-6 * b.abs().max(1.0)),
        Value::Array(_) | Value::Object(_) => false,
    }
}

#[test]
fn the_page_in_chromium_shows_query_rows_drills_down_and_requests_only_itself() {
    let Some((py, exe)) = crate::util::browser() else {
        eprintln!("skipped: no Chromium or playwright");
        return;
    };
    let dir = tempdir();
    let lake = serve_lake(dir.path());
    let lake_arg = lake.to_str().expect("utf-8");
    let server = start(&lake);
    let view = [
        ("from", "2026-09-08"),
        ("to", "2026-09-12"),
        ("tz", "Europe/Berlin"),
    ];
    let url = format!(
        "http://{}/?token={}&from=2026-09-08&to=2026-09-12&tz=Europe%2FBerlin",
        server.addr, server.token
    );
    let shot = dir.path().join("serve.png");
    let v = crate::util::browse(
        &py,
        &exe,
        "serve_browser.py",
        &[
            url.as_ref(),
            shot.as_os_str(),
            "".as_ref(),
            "from=2026-09-09T06%3A00%3A00Z&to=2026-09-11T18%3A00%3A00Z&engineer={engineer}"
                .as_ref(),
        ],
    );
    assert_eq!(v["pwned"], Value::Null);
    assert_eq!(v["scripts"], 0);
    assert_eq!(v["images"], 0);
    let own = format!("http://{}/", server.addr);
    for r in v["requests"].as_array().expect("requests") {
        assert!(
            r.as_str().is_some_and(|u| u.starts_with(&own)),
            "left 127.0.0.1: {r}"
        );
    }
    // Every widget's table holds the rows of `cetrail query` (the feed its first page).
    let args: Vec<String> = view
        .iter()
        .flat_map(|(k, val)| [format!("--{k}"), val.to_string()])
        .collect();
    same_tables(&v["tables"], &args, lake_arg, dir.path(), "Berlin");
    // The click opened the engineer's timeline, equal to `cetrail timeline`'s events.
    let engineer = v["engineer"].as_str().expect("an engineer");
    assert!(
        v["timeline_url"]
            .as_str()
            .unwrap_or("")
            .contains("/timeline?")
    );
    let mut cli = vec![
        "timeline",
        "--lake",
        lake_arg,
        "--engineer",
        engineer,
        "--format",
        "json",
    ];
    cli.extend(args.iter().map(String::as_str));
    let out = cetrail(&cli, dir.path());
    let ids = timeline_ids(&out);
    let rows = v["timeline_events"].as_array().expect("timeline rows");
    let (head, body) = rows.split_first().expect("a header row");
    let at = head
        .as_array()
        .and_then(|h| h.iter().position(|c| c == "event_id"))
        .expect("an event_id column");
    let shown: Vec<&str> = body
        .iter()
        .filter_map(|r| r.get(at).and_then(Value::as_str))
        .collect();
    assert!(!ids.is_empty(), "{engineer:?}: {}", v["timeline_url"]);
    assert_eq!(shown, ids);
    // Back, and the URL alone in a new page: the same view.
    assert_eq!(v["back_tables"], v["tables"]);
    assert_eq!(v["again_tables"], v["tables"]);
    assert!(!v["again_url"].as_str().unwrap_or("").contains("token="));
    let png = std::fs::read(&shot).expect("screenshot");
    assert!(png.len() > 10_000 && png.starts_with(b"\x89PNG"));
    // More views: a preset (last 7 d), the whole lake, and a range filtered by the
    // engineer clicked; each page's tables equal `cetrail query` for its URL's state.
    let views = v["views"].as_array().expect("views");
    assert_eq!(views.len(), 3);
    for (i, view) in views.iter().enumerate() {
        let url = view["url"].as_str().expect("a URL");
        let query = url.split_once('?').map(|(_, q)| q).unwrap_or("");
        let mut args: Vec<String> = Vec::new();
        for (k, val) in query.split('&').filter_map(|kv| kv.split_once('=')) {
            let val = decode(val);
            if k != "token" && !val.is_empty() {
                args.push(format!("--{k}"));
                args.push(val);
            }
        }
        match i {
            0 => assert!(args.contains(&"--from".to_string()), "{url}"),
            2 => assert!(args.contains(&engineer.to_string()), "{url}"),
            _ => {}
        }
        same_tables(&view["tables"], &args, lake_arg, dir.path(), url);
    }
    assert_ne!(
        views[0]["tables"], v["tables"],
        "the preset changed the view"
    );
}

/// `s` percent-decoded (`+` as a space, as a form sends it).
fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                out.push(u8::from_str_radix(hex, 16).expect("a %XX escape"));
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).expect("utf-8")
}

/// Every widget's table of a page (`tables`: section name → rows of cell texts, the
/// header first) holds the rows `cetrail query <widget> ARGS --format json` prints
/// (the feed: its first page).
fn same_tables(tables: &Value, args: &[String], lake: &str, dir: &Path, label: &str) {
    for w in cetrail::query::widgets::WIDGETS {
        let rows = tables[w.name].as_array().expect("a table").clone();
        let (head, body) = rows.split_first().expect("a header row");
        let mut cli = vec!["query", w.name, "--lake", lake, "--format", "json"];
        cli.extend(args.iter().map(String::as_str));
        let out = cetrail(&cli, dir);
        assert!(out.status.success(), "{}", crate::util::stderr(&out));
        let printed: Value = serde_json::from_slice(&out.stdout).expect("query JSON");
        let printed = printed.as_array().expect("rows");
        let shown = if w.name == "activity-feed" {
            printed.len().min(cetrail::serve::page::FEED_PAGE_ROWS)
        } else {
            printed.len()
        };
        assert_eq!(body.len(), shown, "{} {label}", w.name);
        let columns: Vec<&str> = head
            .as_array()
            .expect("header")
            .iter()
            .filter_map(Value::as_str)
            .collect();
        for (row, expected) in body.iter().zip(printed) {
            let cells = row.as_array().expect("cells");
            for (c, cell) in columns.iter().zip(cells) {
                let cell = cell.as_str().unwrap_or("");
                assert!(
                    same_cell(cell, &expected[*c]),
                    "{} {c} {label}: page {cell:?}, query {}",
                    w.name,
                    expected[*c]
                );
            }
        }
    }
}
