//! The monthly report: every section has content on the sample data; in real headless
//! Chromium it renders with no console error and no network request, and payloads from
//! the trail execute nothing.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::util::*;

fn sample_lake(dir: &Path) -> PathBuf {
    let lake = dir.join("lake");
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("sample-data");
    assert_eq!(ingest(&src, &lake, &[]).0, 0);
    lake
}

fn report(lake: &Path, month: &str, out: &Path, format: &str) {
    let o = cetrail(
        &[
            "report",
            "--lake",
            lake.to_str().expect("p"),
            "--month",
            month,
            "--out",
            out.to_str().expect("p"),
            "--format",
            format,
        ],
        Path::new("."),
    );
    assert!(o.status.success(), "{}", stderr(&o));
}

#[test]
fn the_report_on_the_sample_data_has_every_section() {
    let dir = tempdir();
    let lake = sample_lake(dir.path());
    let out = dir.path().join("r.html");
    report(&lake, "2026-10", &out, "html");
    let html = std::fs::read_to_string(&out).expect("html");
    for id in [
        "summary",
        "alarms",
        "charts",
        "audit",
        "anomalies",
        "widgets",
        "method",
    ] {
        assert!(html.contains(&format!(r#"id="{id}""#)), "section {id}");
    }
    assert!(html.matches("<svg").count() >= 4, "four charts");
    assert!(!html.contains("<script"), "no script at all");
    assert!(
        !html.contains("http://")
            || html.matches("http://").count()
                == html.matches("http://www.w3.org/2000/svg").count()
    );
    // Every widget has a heading and rows (the sample data fills them all).
    for w in cetrail::query::widgets::WIDGETS.iter() {
        assert!(html.contains(&format!("({})</span>", w.name)), "{}", w.name);
    }
    // Only an alarm in state OK (no episode that month) has an empty table, shown twice
    // (alarm states, widgets); the admin alarm rings in October.
    assert!(html.contains("— ALARM ("), "an alarm state");
    let ok_alarms = html.matches("— OK (").count();
    assert_eq!(
        html.matches("no rows").count(),
        2 * ok_alarms,
        "an empty widget table"
    );
    // The audit's ten controls, and the coverage notes.
    for c in cetrail::query::audit::CONTROLS {
        assert!(html.contains(&format!("<td>{}</td>", c.0)), "{}", c.0);
    }
    assert!(html.contains("Data coverage"));
    assert!(html.contains("log file(s)"));
    // Markdown: the same sections.
    let md = dir.path().join("r.md");
    report(&lake, "2026-10", &md, "md");
    let text = std::fs::read_to_string(&md).expect("md");
    for h in [
        "## Summary and verdict",
        "## Alarm states",
        "## Conformance audit",
        "## The 17 widgets",
        "## Method and data coverage",
    ] {
        assert!(text.contains(h), "{h}");
    }
}

#[test]
fn the_report_renders_in_chromium_and_payloads_execute_nothing() {
    let Some((py, exe)) = browser() else {
        eprintln!("skipped: no Chromium or playwright");
        return;
    };
    let dir = tempdir();
    let script = "<script>window.__pwned=1</script>";
    let img = r#"<img src=x onerror="window.__pwned=2">"#;
    let mut records = Vec::new();
    for i in 0..3 {
        let mut v = find("AssumeRole", |r| r["errorCode"].is_null());
        v["eventID"] = json!(format!("x-{i}"));
        v["eventTime"] = json!(format!("2026-03-1{i}T09:00:00Z"));
        v["recipientAccountId"] = json!("111122223333");
        v["userIdentity"] = json!({"type": "AWSAccount", "accountId": "999988887777"});
        v["requestParameters"] = json!({"roleArn": "arn:aws:iam::111122223333:role/CE-SRE",
            "roleSessionName": script, "externalId": img, "durationSeconds": 3600});
        v["userAgent"] = json!(script);
        v["sourceIPAddress"] = json!(img);
        records.push(v);
        let mut c = as_ce_session(
            find("DescribeInstances", |_| true),
            "CE-SRE",
            script,
            v_key(&records[records.len() - 1]),
            "2026-03-10T09:00:00Z",
        );
        c["eventID"] = json!(format!("y-{i}"));
        c["eventTime"] = json!(format!("2026-03-1{i}T09:05:00Z"));
        c["recipientAccountId"] = json!("111122223333");
        c["userAgent"] = json!(script);
        c["errorCode"] = json!("AccessDenied");
        c["errorMessage"] = json!(img);
        c["sourceIPAddress"] = json!(img);
        records.push(c);
    }
    let src = dir.path().join("src");
    write(
        &src.join("AWSLogs/111122223333/CloudTrail/eu-west-1/2026/03/12/111122223333_CloudTrail_eu-west-1_20260312T1000Z_x.json.gz"),
        &gzip(json!({"Records": records}).to_string().as_bytes()),
    );
    let lake = dir.path().join("lake");
    assert_eq!(ingest(&src, &lake, &[]).0, 0);
    let out = dir.path().join("x.html");
    report(&lake, "2026-03", &out, "html");
    let shot = dir.path().join("x.png");
    let v = browse(
        &py,
        &exe,
        "report_browser.py",
        &[out.as_os_str(), shot.as_os_str()],
    );
    assert_eq!(v["requests"], json!([]), "network requests");
    assert_eq!(v["dialogs"], json!([]));
    assert_eq!(v["pwned"], Value::Null, "a payload ran");
    assert_eq!(v["scripts"], 0);
    assert_eq!(v["images"], 0);
    assert!(v["svgs"].as_u64().unwrap_or(0) >= 4);
    // The payloads are shown as text.
    let text = v["text"].as_str().unwrap_or("");
    assert!(
        text.contains(script),
        "the engineer's name is shown literally"
    );
    assert!(text.contains(img), "the source IP is shown literally");
    let png = std::fs::read(&shot).expect("screenshot");
    assert!(png.len() > 10_000 && png.starts_with(b"\x89PNG"));
}

fn v_key(assume: &Value) -> &str {
    assume["responseElements"]["credentials"]["accessKeyId"]
        .as_str()
        .unwrap_or("ASIAUNKNOWN")
}
