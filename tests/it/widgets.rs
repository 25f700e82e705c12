//! The widgets of SPEC §5: expected values computed by hand on a tiny archive, every
//! widget non-empty on the sample data, and the same rows from DuckDB.

use std::path::Path;
use std::process::Command;

use cetrail::config::Config;
use cetrail::query::dialect::{self, Engine};
use cetrail::query::view::ViewParams;
use cetrail::query::widgets::{Dashboard, WIDGETS, Widget, find, local_midnight};
use cetrail::render::{Cell, Table};
use chrono::{DateTime, NaiveDate, Utc};
use serde_json::{Value, json};

use crate::util::*;

/// A CE activity record.
#[allow(clippy::too_many_arguments)]
fn act(
    id: &str,
    t: &str,
    role: &str,
    eng: &str,
    key: &str,
    source: &str,
    name: &str,
    extra: Value,
) -> Value {
    let mut r = json!({
        "eventVersion": "1.08", "eventTime": t, "eventID": id, "eventName": name,
        "eventSource": source, "awsRegion": "eu-west-1", "recipientAccountId": "111122223333",
        "sourceIPAddress": "203.0.113.10", "readOnly": true, "requestParameters": null, "responseElements": null,
        "userIdentity": {"type": "AssumedRole", "accessKeyId": key, "accountId": "111122223333",
            "arn": format!("arn:aws:sts::111122223333:assumed-role/{role}/{eng}"),
            "sessionContext": {"sessionIssuer": {"type": "Role", "userName": role},
                "attributes": {"creationDate": "2026-03-01T00:00:00Z", "mfaAuthenticated": "false"}}}
    });
    if let (Some(o), Some(e)) = (r.as_object_mut(), extra.as_object()) {
        for (k, v) in e {
            o.insert(k.clone(), v.clone());
        }
    }
    r
}

/// The bundled sample data, ingested into a fresh lake.
fn sample_lake() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempdir();
    let lake = dir.path().join("lake");
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("sample-data");
    assert_eq!(ingest(&src, &lake, &[]).0, 0);
    (dir, lake)
}

fn lake_of(records: Vec<Value>) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempdir();
    let src = dir.path().join("src");
    let lake = dir.path().join("lake");
    let body = json!({ "Records": records }).to_string();
    write(
        &src.join("AWSLogs/111122223333/CloudTrail/eu-west-1/2026/03/30/111122223333_CloudTrail_eu-west-1_20260330T0000Z_a.json.gz"),
        &gzip(body.as_bytes()),
    );
    let (code, s) = ingest(&src, &lake, &[]);
    assert_eq!(code, 0, "{s}");
    (dir, lake)
}

fn run(lake: &Path, name: &str, view: ViewParams) -> Vec<Vec<String>> {
    let config = Config::default();
    let mut d = Dashboard::open(lake, &config, view).expect("open");
    let w = find(name).expect("widget");
    let t = Table::from_frame(&d.widget(w).expect("run")).expect("table");
    let style = cetrail::render::TimeStyle { local: None };
    t.rows
        .iter()
        .map(|r| r.iter().map(|c| c.text(style)).collect())
        .collect()
}

fn utc_view() -> ViewParams {
    ViewParams::from_config(&Config::default())
}

fn day(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").expect("date")
}

fn range(from: &str, to: &str) -> ViewParams {
    let mut v = utc_view();
    v.from = Some(local_midnight(day(from), v.zone));
    v.to = Some(local_midnight(day(to), v.zone));
    v
}

fn r(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// Events around the Europe/Berlin DST change (2026-03-29 02:00 → 03:00 local).
fn tiny() -> Vec<Value> {
    let ec2 = "ec2.amazonaws.com";
    let denied = json!({"errorCode": "AccessDenied", "errorMessage": "no"});
    let mut v = vec![
        // CE-Admin: 3 events in 10:00-10:05, 1 in 10:05-10:10 (one episode), 1 at 11:00.
        act(
            "a1",
            "2026-03-30T10:00:10Z",
            "CE-Admin",
            "alice",
            "ASIAADMIN1",
            ec2,
            "DescribeInstances",
            json!({}),
        ),
        act(
            "a2",
            "2026-03-30T10:02:00Z",
            "CE-Admin",
            "alice",
            "ASIAADMIN1",
            ec2,
            "DescribeInstances",
            json!({}),
        ),
        act(
            "a3",
            "2026-03-30T10:04:59Z",
            "CE-Admin",
            "henrik",
            "ASIAADMIN2",
            ec2,
            "DescribeInstances",
            json!({}),
        ),
        act(
            "a4",
            "2026-03-30T10:05:00Z",
            "CE-Admin",
            "alice",
            "ASIAADMIN1",
            ec2,
            "RebootInstances",
            json!({"readOnly": false}),
        ),
        act(
            "a5",
            "2026-03-30T11:00:00Z",
            "CE-Admin",
            "alice",
            "ASIAADMIN3",
            ec2,
            "DescribeInstances",
            json!({}),
        ),
        // Shell: two starts on i-1 (one failed), one on i-2.
        act(
            "s1",
            "2026-03-30T09:00:00Z",
            "CE-SRE",
            "bob",
            "ASIASRE1",
            "ssm.amazonaws.com",
            "StartSession",
            json!({"readOnly": false, "requestParameters": {"target": "i-1"}, "responseElements": {"sessionId": "bob-1"}}),
        ),
        act(
            "s2",
            "2026-03-30T09:30:00Z",
            "CE-SRE",
            "carla",
            "ASIASRE2",
            "ssm.amazonaws.com",
            "StartSession",
            json!({"readOnly": false, "requestParameters": {"target": "i-1"}, "errorCode": "TargetNotConnected", "errorMessage": "x"}),
        ),
        act(
            "s3",
            "2026-03-30T09:40:00Z",
            "CE-SRE",
            "bob",
            "ASIASRE1",
            "ssm.amazonaws.com",
            "StartSession",
            json!({"readOnly": false, "requestParameters": {"target": "i-2"}}),
        ),
        // Data: S3 and RDS.
        act(
            "d1",
            "2026-03-30T12:00:00Z",
            "CE-Data",
            "dora",
            "ASIADATA1",
            "s3.amazonaws.com",
            "GetObject",
            json!({"requestParameters": {"bucketName": "b1", "key": "k1"}}),
        ),
        act(
            "d2",
            "2026-03-30T12:01:00Z",
            "CE-Data",
            "dora",
            "ASIADATA1",
            "s3.amazonaws.com",
            "PutObject",
            json!({"readOnly": false, "requestParameters": {"bucketName": "b1", "key": "k2"}}),
        ),
        act(
            "d3",
            "2026-03-30T12:02:00Z",
            "CE-Data",
            "dora",
            "ASIADATA1",
            "rdsdata.amazonaws.com",
            "ExecuteStatement",
            json!({"readOnly": false, "requestParameters": {"resourceArn": "arn:aws:rds:eu-west-1:1:cluster:analytics"}}),
        ),
        // A non-data role touching S3 does not count in data-s3.
        act(
            "d4",
            "2026-03-30T12:03:00Z",
            "CE-ReadOnly",
            "eve",
            "ASIARO1",
            "s3.amazonaws.com",
            "GetObject",
            json!({"requestParameters": {"bucketName": "b2", "key": "k"}}),
        ),
    ];
    // Denied burst: 10 in 14:00-14:05 with B×4, A×4, C×2 (tie A/B → A).
    let names = ["B", "B", "B", "B", "A", "A", "A", "A", "C", "C"];
    for (i, n) in names.iter().enumerate() {
        v.push(act(
            &format!("x{i}"),
            &format!("2026-03-30T14:0{}:00Z", i / 3),
            "CE-DevOps",
            "farid",
            "ASIADEV1",
            "iam.amazonaws.com",
            n,
            denied.clone(),
        ));
    }
    // 9 denied in one period: no alarm.
    for i in 0..9 {
        v.push(act(
            &format!("y{i}"),
            "2026-03-30T15:00:00Z",
            "CE-DevOps",
            "farid",
            "ASIADEV1",
            "iam.amazonaws.com",
            "A",
            denied.clone(),
        ));
    }
    // A denied AssumeRole with no engineer and no session.
    v.push(json!({
        "eventVersion": "1.08", "eventTime": "2026-03-30T16:00:00Z", "eventID": "z1", "eventName": "AssumeRole",
        "eventSource": "sts.amazonaws.com", "awsRegion": "eu-west-1", "recipientAccountId": "111122223333",
        "sourceIPAddress": "192.0.2.44", "readOnly": true, "requestParameters": null, "responseElements": null,
        "errorCode": "AccessDenied", "errorMessage": "User: arn:aws:iam::111122223333:user/x is not authorized to perform: sts:AssumeRole on resource: arn:aws:iam::111122223333:role/CE-Admin",
        "userIdentity": {"type": "IAMUser", "arn": "arn:aws:iam::111122223333:user/x", "accountId": "111122223333"}
    }));
    // Around the DST change in Europe/Berlin: 2026-03-28 23:30Z is 00:30 local on 03-29.
    v.push(act(
        "t1",
        "2026-03-28T23:30:00Z",
        "CE-Security",
        "grace",
        "ASIASEC1",
        ec2,
        "DescribeInstances",
        json!({}),
    ));
    v.push(act(
        "t2",
        "2026-03-29T21:59:00Z",
        "CE-Security",
        "grace",
        "ASIASEC1",
        ec2,
        "DescribeInstances",
        json!({}),
    ));
    v.push(act(
        "t3",
        "2026-03-29T22:00:00Z",
        "CE-Security",
        "grace",
        "ASIASEC2",
        ec2,
        "DescribeInstances",
        json!({}),
    ));
    v
}

#[test]
fn alarms_by_hand() {
    let (_d, lake) = lake_of(tiny());
    let admin = run(&lake, "admin-alarm", utc_view());
    assert_eq!(
        admin,
        vec![
            r(&[
                "2026-03-30T10:00:00Z",
                "2026-03-30T10:10:00Z",
                "2",
                "4",
                "2",
                "alice,henrik"
            ]),
            r(&[
                "2026-03-30T11:00:00Z",
                "2026-03-30T11:05:00Z",
                "1",
                "1",
                "1",
                "alice"
            ]),
            // The denied AssumeRole into CE-Admin is a CE-Admin event too (no session, no engineer).
            r(&[
                "2026-03-30T16:00:00Z",
                "2026-03-30T16:05:00Z",
                "1",
                "1",
                "0",
                ""
            ]),
        ]
    );
    let denied = run(&lake, "access-denied-alarm", utc_view());
    assert_eq!(
        denied,
        vec![r(&[
            "2026-03-30T14:00:00Z",
            "2026-03-30T14:05:00Z",
            "1",
            "10",
            "CE-DevOps",
            "A"
        ])]
    );
    // A range that cuts the first episode keeps only its periods inside the range.
    let mut v = utc_view();
    v.from = Some(
        DateTime::parse_from_rfc3339("2026-03-30T10:05:00Z")
            .expect("t")
            .with_timezone(&Utc),
    );
    v.to = Some(
        DateTime::parse_from_rfc3339("2026-03-30T12:00:00Z")
            .expect("t")
            .with_timezone(&Utc),
    );
    let cut = run(&lake, "admin-alarm", v);
    assert_eq!(
        cut[0],
        r(&[
            "2026-03-30T10:05:00Z",
            "2026-03-30T10:10:00Z",
            "1",
            "1",
            "1",
            "alice"
        ])
    );
}

#[test]
fn per_group_widgets_by_hand() {
    let (_d, lake) = lake_of(tiny());
    let shell = run(&lake, "ec2-shell", utc_view());
    assert_eq!(
        shell,
        vec![
            r(&[
                "i-1",
                "1",
                "1",
                "bob,carla",
                "CE-SRE",
                "2026-03-30T09:00:00Z",
                "2026-03-30T09:30:00Z"
            ]),
            r(&[
                "i-2",
                "1",
                "0",
                "bob",
                "CE-SRE",
                "2026-03-30T09:40:00Z",
                "2026-03-30T09:40:00Z"
            ]),
        ]
    );
    assert_eq!(
        run(&lake, "data-s3", utc_view()),
        vec![r(&[
            "b1",
            "2",
            "1",
            "1",
            "2",
            "dora",
            "2026-03-30T12:00:00Z",
            "2026-03-30T12:01:00Z"
        ]),]
    );
    assert_eq!(
        run(&lake, "data-rds", utc_view()),
        vec![r(&[
            "analytics",
            "1",
            "ExecuteStatement",
            "dora",
            "2026-03-30T12:02:00Z",
            "2026-03-30T12:02:00Z"
        ]),]
    );
    let roles = run(&lake, "sessions-by-role", utc_view());
    let names: Vec<&str> = roles.iter().map(|r| r[0].as_str()).collect();
    // Byte order: CE-SRE before CE-Security.
    assert_eq!(
        names,
        [
            "CE-Admin",
            "CE-Data",
            "CE-DevOps",
            "CE-ReadOnly",
            "CE-SRE",
            "CE-Security"
        ]
    );
    // CE-Admin: 3 sessions (the denied AssumeRole has no session key), 2 engineers
    // (null is not an engineer), 6 events (5 + the denied assume), 1 error.
    assert_eq!(
        roles[0],
        r(&[
            "CE-Admin",
            "3",
            "2",
            "6",
            "1",
            "2026-03-30T10:00:10Z",
            "2026-03-30T16:00:00Z"
        ])
    );
    let eng = run(&lake, "engineers", utc_view());
    let null_row = eng
        .iter()
        .find(|r| r[0].is_empty())
        .expect("null engineer row");
    assert_eq!(null_row[1..5], r(&["CE-Admin", "0", "1", "1"]));
    assert_eq!(
        eng.last().map(|r| r[0].as_str()),
        Some(""),
        "nulls sort last among equal counts"
    );
    let denied = run(&lake, "denied-actions", utc_view());
    assert_eq!(
        denied[0],
        r(&[
            "CE-DevOps",
            "iam.amazonaws.com",
            "A",
            "AccessDenied",
            "13",
            "farid",
            "2026-03-30T14:01:00Z",
            "2026-03-30T15:00:00Z"
        ])
    );
    let writes = run(&lake, "write-actions", utc_view());
    assert_eq!(
        writes[0][..4],
        r(&["CE-SRE", "ssm.amazonaws.com", "StartSession", "3"])
    );
    let top = run(&lake, "top-actions", utc_view());
    assert_eq!(top.iter().filter(|r| r[0] == "CE-DevOps").count(), 3);
    let feed = run(&lake, "activity-feed", utc_view());
    assert_eq!(feed.len(), 35);
    // Equal times are ordered by event_id.
    let at_15: Vec<&str> = feed
        .iter()
        .filter(|r| r[0] == "2026-03-30T15:00:00Z")
        .map(|r| r[10].as_str())
        .collect();
    assert_eq!(
        at_15,
        ["y0", "y1", "y2", "y3", "y4", "y5", "y6", "y7", "y8"]
    );
    let shell_feed = feed.iter().find(|r| r[10] == "s1").expect("s1");
    assert_eq!(shell_feed[7], "i-1");
    assert_eq!(
        feed.iter().find(|r| r[10] == "d1").map(|r| r[7].as_str()),
        Some("b1/k1")
    );
    let accounts = run(&lake, "accounts", utc_view());
    assert_eq!(accounts[0][..2], r(&["111122223333", "1"]));
    let ips = run(&lake, "source-ips", utc_view());
    assert_eq!(
        ips.iter().map(|r| r[0].as_str()).collect::<Vec<_>>(),
        ["203.0.113.10", "192.0.2.44"]
    );
}

#[test]
fn empty_range_and_role_with_no_history() {
    let (_d, lake) = lake_of(tiny());
    let empty = range("2027-01-01", "2027-01-02");
    for w in WIDGETS {
        if w.name == "week-over-week" {
            continue;
        }
        assert!(
            run(&lake, w.name, empty.clone()).is_empty(),
            "{} must be empty",
            w.name
        );
    }
    // Only CE-Security has history before 03-30, and no event in range: no first-seen rows.
    let a = run(&lake, "anomalies", range("2026-03-30", "2026-03-31"));
    assert!(a.iter().all(|r| r[0] == "volume"), "{a:?}");
}

#[test]
fn local_days_weeks_and_business_hours_across_dst() {
    let (_d, lake) = lake_of(tiny());
    let mut berlin = utc_view();
    berlin.zone = chrono_tz::Europe::Berlin;
    let trend = run(&lake, "session-trend", berlin.clone());
    let sec: Vec<_> = trend.iter().filter(|r| r[1] == "CE-Security").collect();
    // 23:30Z on 03-28 is 00:30 CET on 03-29; 21:59Z on 03-29 is 23:59 CEST (after the
    // jump); 22:00Z is 00:00 CEST on 03-30.
    assert_eq!(
        sec,
        vec![
            &r(&["2026-03-29", "CE-Security", "1", "2"]),
            &r(&["2026-03-30", "CE-Security", "1", "1"])
        ]
    );
    let utc_trend = run(&lake, "session-trend", utc_view());
    assert!(
        utc_trend
            .iter()
            .any(|r| r[0] == "2026-03-28" && r[1] == "CE-Security")
    );
    // After hours in Berlin (CEST, UTC+2): 16:00Z is 18:00 local → after hours.
    let ah = run(&lake, "after-hours", berlin);
    let admin_null = ah
        .iter()
        .find(|r| r[0] == "CE-Admin" && r[1].is_empty())
        .expect("denied assume at 18:00 local");
    assert_eq!(admin_null[2], "1");
    // In UTC, 16:00 is inside business hours; Sunday 03-29 is not a business day.
    let ah_utc = run(&lake, "after-hours", utc_view());
    assert!(
        ah_utc
            .iter()
            .all(|r| !(r[0] == "CE-Admin" && r[1].is_empty()))
    );
    assert!(ah_utc.iter().any(|r| r[0] == "CE-Security"));
}

#[test]
fn week_over_week_by_hand() {
    let mut recs = Vec::new();
    // Week of 03-02: CE-SRE 2 events; week of 03-09: CE-SRE 4 events, CE-Data 1 event;
    // week of 03-16: nothing (CE-SRE and CE-Data get -100 % rows).
    for (i, t) in ["2026-03-02T10:00:00Z", "2026-03-03T10:00:00Z"]
        .iter()
        .enumerate()
    {
        recs.push(act(
            &format!("w1-{i}"),
            t,
            "CE-SRE",
            "bob",
            "ASIAW1",
            "ec2.amazonaws.com",
            "DescribeInstances",
            json!({}),
        ));
    }
    for (i, t) in [
        "2026-03-09T10:00:00Z",
        "2026-03-10T10:00:00Z",
        "2026-03-11T10:00:00Z",
        "2026-03-12T10:00:00Z",
    ]
    .iter()
    .enumerate()
    {
        recs.push(act(
            &format!("w2-{i}"),
            t,
            "CE-SRE",
            if i == 0 { "carla" } else { "bob" },
            "ASIAW2",
            "ec2.amazonaws.com",
            "DescribeInstances",
            json!({}),
        ));
    }
    recs.push(act(
        "w2-d",
        "2026-03-10T11:00:00Z",
        "CE-Data",
        "dora",
        "ASIAW3",
        "ec2.amazonaws.com",
        "DescribeInstances",
        json!({}),
    ));
    let (_d, lake) = lake_of(recs);
    let wow = run(&lake, "week-over-week", range("2026-03-02", "2026-03-23"));
    assert_eq!(
        wow,
        vec![
            r(&[
                "2026-03-02",
                "CE-SRE",
                "1",
                "2",
                "0",
                "1",
                "0",
                "0",
                "0",
                "0",
                ""
            ]),
            r(&[
                "2026-03-09",
                "CE-Data",
                "1",
                "1",
                "0",
                "1",
                "0",
                "0",
                "0",
                "0",
                ""
            ]),
            r(&[
                "2026-03-09",
                "CE-SRE",
                "1",
                "4",
                "0",
                "2",
                "1",
                "2",
                "0",
                "1",
                "100.0"
            ]),
            r(&[
                "2026-03-16",
                "CE-Data",
                "0",
                "0",
                "0",
                "0",
                "1",
                "1",
                "0",
                "1",
                "-100.0"
            ]),
            r(&[
                "2026-03-16",
                "CE-SRE",
                "0",
                "0",
                "0",
                "0",
                "1",
                "4",
                "0",
                "2",
                "-100.0"
            ]),
        ]
    );
    // A range that starts mid-week still counts whole weeks, from the next Monday on.
    let mid = run(&lake, "week-over-week", range("2026-03-04", "2026-03-17"));
    assert_eq!(
        mid.iter()
            .map(|r| (r[0].as_str(), r[1].as_str()))
            .collect::<Vec<_>>(),
        vec![
            ("2026-03-09", "CE-Data"),
            ("2026-03-09", "CE-SRE"),
            ("2026-03-16", "CE-Data"),
            ("2026-03-16", "CE-SRE")
        ]
    );
    assert_eq!(mid[1][3], "4");
}

fn normalise(t: &Table) -> Vec<Vec<Value>> {
    let style = cetrail::render::TimeStyle { local: None };
    t.rows
        .iter()
        .map(|r| {
            r.iter()
                .map(|c| match c {
                    Cell::Null => Value::Null,
                    Cell::Int(i) => json!(*i as f64),
                    Cell::Float(f) => json!(((*f) * 1e6).round() / 1e6),
                    Cell::Bool(b) => json!(b),
                    other => json!(other.text(style)),
                })
                .collect()
        })
        .collect()
}

fn numbers_as_f64(rows: &Value) -> Vec<Vec<Value>> {
    rows.as_array()
        .map(|rs| {
            rs.iter()
                .map(|r| {
                    r.as_array()
                        .map(|cells| {
                            cells
                                .iter()
                                .map(|c| match c.as_f64() {
                                    Some(f) if c.is_number() => json!((f * 1e6).round() / 1e6),
                                    _ => c.clone(),
                                })
                                .collect()
                        })
                        .unwrap_or_default()
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Rows of every widget from another engine over the same lake, as the runners in
/// tests/ print them; `None` when the engine is not installed (outside CI).
fn engine_rows(d: &Dashboard, lake: &Path, engine: Engine) -> Option<Value> {
    let mut params = d.params().clone();
    params.insert("lake", lake.display().to_string());
    let dir = tempdir();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let (py, args) = match engine {
        Engine::DuckDb => {
            let Some(py) = python_with_duckdb() else {
                eprintln!("SKIPPED DuckDB cross-engine check: no Python with duckdb (run .ci/run)");
                return None;
            };
            let pfile = dir.path().join("params.json");
            std::fs::write(&pfile, serde_json::to_vec(&params).expect("json")).expect("write");
            let args = vec![
                root.join("tests/duckdb_widgets.py"),
                pfile,
                root.join("queries"),
            ];
            (py, args)
        }
        Engine::Spark => {
            let Some(py) = python_with("pyspark") else {
                eprintln!("SKIPPED Spark cross-engine check: no Python with pyspark (run .ci/run)");
                return None;
            };
            let widgets: Vec<&Widget> = WIDGETS.iter().collect();
            let (view, queries) = dialect::script(Engine::Spark, &params, &widgets);
            let script = json!({
                "view": view,
                "widgets": queries
                    .into_iter()
                    .map(|(k, v)| (k.to_string(), Value::String(v)))
                    .collect::<serde_json::Map<String, Value>>()
            });
            let sfile = dir.path().join("script.json");
            std::fs::write(&sfile, serde_json::to_vec(&script).expect("json")).expect("write");
            (py, vec![root.join("tests/spark_widgets.py"), sfile])
        }
        Engine::Athena => return None,
    };
    let out = Command::new(py).args(&args).output().expect("python");
    assert!(
        out.status.success(),
        "{}: {}",
        engine.name(),
        String::from_utf8_lossy(&out.stderr)
    );
    Some(serde_json::from_slice(&out.stdout).expect("engine json"))
}

fn cross_check(lake: &Path, view: ViewParams, label: &str, engine: Engine) {
    let config = Config::default();
    let mut d = Dashboard::open(lake, &config, view).expect("open");
    let Some(rows) = engine_rows(&d, lake, engine) else {
        return;
    };
    for w in WIDGETS {
        let t = Table::from_frame(&d.widget(&w).expect("widget")).expect("table");
        let theirs = &rows[w.name];
        let cols: Vec<String> = theirs["columns"]
            .as_array()
            .expect("cols")
            .iter()
            .map(|c| c.as_str().unwrap_or("").to_string())
            .collect();
        let e = engine.name();
        assert_eq!(t.columns, cols, "{e}, {label} {}: columns", w.name);
        let ours = normalise(&t);
        let theirs = numbers_as_f64(&theirs["rows"]);
        assert_eq!(
            ours.len(),
            theirs.len(),
            "{e}, {label} {}: row count",
            w.name
        );
        for (i, (a, b)) in ours.iter().zip(&theirs).enumerate() {
            assert_eq!(a, b, "{e}, {label} {} row {i}", w.name);
        }
    }
}

fn cross_check_all(engine: Engine) {
    let (_dir, lake) = sample_lake();
    cross_check(&lake, utc_view(), "whole lake, UTC", engine);
    let mut berlin = range("2026-10-01", "2026-10-26");
    berlin.zone = chrono_tz::Europe::Berlin;
    berlin.from = Some(local_midnight(day("2026-10-01"), berlin.zone));
    berlin.to = Some(local_midnight(day("2026-10-26"), berlin.zone));
    cross_check(
        &lake,
        berlin,
        "October, Europe/Berlin (DST end 10-25)",
        engine,
    );
    let (_d, tiny_lake) = lake_of(tiny());
    cross_check(&tiny_lake, utc_view(), "tiny", engine);
}

#[test]
fn every_widget_equals_duckdb_on_the_same_lake() {
    cross_check_all(Engine::DuckDb);
}

#[test]
fn every_widget_equals_spark_on_the_same_lake() {
    cross_check_all(Engine::Spark);
}

#[test]
fn dashboard_on_the_sample_data_shows_every_widget() {
    let (dir, lake) = sample_lake();
    let out = cetrail(
        &[
            "dashboard",
            "--lake",
            lake.to_str().expect("p"),
            "--format",
            "json",
        ],
        dir.path(),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    // One widget at a time gives the same bytes as the default two; `--timings` reports
    // the jobs and every widget.
    let serial = cetrail(
        &[
            "dashboard",
            "--lake",
            lake.to_str().expect("p"),
            "--format",
            "json",
            "--jobs",
            "1",
            "--timings",
        ],
        dir.path(),
    );
    assert!(serial.status.success(), "{}", stderr(&serial));
    assert_eq!(serial.stdout, out.stdout, "--jobs 1 changes the output");
    let timings: Value = serde_json::from_str(stderr(&serial).trim()).expect("timings json");
    assert_eq!(timings["jobs"], 1);
    assert_eq!(
        timings["widgets_ms"].as_object().map_or(0, |m| m.len()),
        WIDGETS.len()
    );
    assert!(
        timings["widgets_wall_ms"]
            .as_f64()
            .is_some_and(|ms| ms > 0.0)
    );
    let v: Value = serde_json::from_slice(&out.stdout).expect("json");
    for w in WIDGETS {
        let rows = v["widgets"][w.name].as_array().map_or(0, Vec::len);
        assert!(rows > 0, "widget {} is empty on the sample data", w.name);
    }
    // The planted facts are found.
    let anomalies = v["widgets"]["anomalies"].as_array().expect("rows");
    assert!(
        anomalies
            .iter()
            .any(|r| r["kind"] == "volume" && r["role"] == "CE-SRE"),
        "{anomalies:?}"
    );
    // A later range sees the newcomer, its IP and its new action.
    let out = cetrail(
        &[
            "query",
            "anomalies",
            "--lake",
            lake.to_str().expect("p"),
            "--from",
            "2026-10-19",
            "--format",
            "json",
        ],
        dir.path(),
    );
    let v: Value = serde_json::from_slice(&out.stdout).expect("json");
    let kinds: Vec<(&str, &str)> = v
        .as_array()
        .expect("rows")
        .iter()
        .map(|r| {
            (
                r["kind"].as_str().unwrap_or(""),
                r["value"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert!(kinds.contains(&("new_engineer", "new.hire")), "{kinds:?}");
    assert!(
        kinds.contains(&("new_source_ip", "198.51.100.77")),
        "{kinds:?}"
    );
    assert!(
        kinds.contains(&("new_action", "secretsmanager.amazonaws.com:ListSecrets")),
        "{kinds:?}"
    );
    // Table output puts the alarms first.
    let out = cetrail(
        &["dashboard", "--lake", lake.to_str().expect("p")],
        dir.path(),
    );
    let text = stdout(&out);
    let first = text.find("admin-alarm").unwrap_or(usize::MAX);
    let later = text.find("sessions-by-role").unwrap_or(0);
    assert!(first < later, "{text}");
}

#[test]
fn query_formats_and_user_sql() {
    let (dir, lake) = lake_of(tiny());
    let l = lake.to_str().expect("p");
    let csv = stdout(&cetrail(
        &["query", "ec2-shell", "--lake", l, "--format", "csv"],
        dir.path(),
    ));
    assert!(csv.starts_with("instance,sessions,failed,engineers,roles,first_start,last_start\ni-1,1,1,\"bob,carla\",CE-SRE,"), "{csv}");
    let jsonl = stdout(&cetrail(
        &["query", "data-s3", "--lake", l, "--format", "jsonl"],
        dir.path(),
    ));
    let row: Value = serde_json::from_str(jsonl.lines().next().unwrap_or("")).expect("jsonl");
    assert_eq!(row["object_count"], 2);
    assert_eq!(row["first_seen"], "2026-03-30T12:00:00Z");
    let sql = dir.path().join("mine.sql");
    std::fs::write(&sql, "SELECT engineer, COUNT(*) AS n FROM events WHERE is_ce AND in_range AND role = '{{admin_role}}' GROUP BY engineer ORDER BY n DESC, engineer NULLS LAST").expect("write");
    let out = stdout(&cetrail(
        &[
            "query",
            sql.to_str().expect("p"),
            "--lake",
            l,
            "--format",
            "json",
        ],
        dir.path(),
    ));
    let v: Value = serde_json::from_str(&out).expect("json");
    assert_eq!(
        v,
        json!([{"engineer": "alice", "n": 4}, {"engineer": "henrik", "n": 1}, {"engineer": null, "n": 1}])
    );
    // --repeat runs the query again over the one view; --timings reports each run.
    let repeated = cetrail(
        &[
            "query",
            sql.to_str().expect("p"),
            "--lake",
            l,
            "--format",
            "json",
            "--repeat",
            "3",
            "--timings",
        ],
        dir.path(),
    );
    assert_eq!(stdout(&repeated), out, "the same result, printed once");
    let timings: Value = serde_json::from_str(
        String::from_utf8_lossy(&repeated.stderr)
            .lines()
            .last()
            .unwrap_or(""),
    )
    .expect("timings json");
    assert_eq!(timings["query_ms"].as_array().map(Vec::len), Some(3));
    assert_eq!(timings["rows"], 3);
    assert!(timings["view_ms"].as_f64().is_some_and(|ms| ms > 0.0));
    let md = stdout(&cetrail(
        &[
            "query", "accounts", "--lake", l, "--format", "md", "--limit", "1",
        ],
        dir.path(),
    ));
    assert!(md.starts_with("| account | region_count |"), "{md}");
    let list = stdout(&cetrail(&["widgets"], dir.path()));
    assert_eq!(list.lines().count(), 17);
    let local = stdout(&cetrail(
        &[
            "query",
            "data-rds",
            "--lake",
            l,
            "--format",
            "json",
            "--tz",
            "Europe/Berlin",
            "--local-time",
        ],
        dir.path(),
    ));
    assert!(local.contains("2026-03-30T14:02:00+02:00"), "{local}");
    let bad = cetrail(&["query", "nope", "--lake", l], dir.path());
    assert_eq!(bad.status.code(), Some(2));
    assert!(stderr(&bad).contains("unknown widget"));
}

#[test]
fn a_lake_without_ce_events_gives_empty_widgets() {
    let dir = tempdir();
    let src = dir.path().join("src");
    write(&src.join("readme.txt"), b"not a log");
    let lake = dir.path().join("lake");
    assert_eq!(ingest(&src, &lake, &[]).0, 0);
    let out = cetrail(
        &[
            "dashboard",
            "--lake",
            lake.to_str().expect("p"),
            "--format",
            "json",
        ],
        dir.path(),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let v: Value = serde_json::from_slice(&out.stdout).expect("json");
    for w in WIDGETS {
        assert_eq!(
            v["widgets"][w.name].as_array().map(Vec::len),
            Some(0),
            "{}",
            w.name
        );
    }
    let text = stdout(&cetrail(
        &["dashboard", "--lake", lake.to_str().expect("p")],
        dir.path(),
    ));
    assert!(
        text.contains("no CE event yet") && text.contains("admin-alarm OK"),
        "{text}"
    );
}

#[test]
fn user_sql_reads_lake_columns_beyond_the_widgets_projection() {
    let (dir, lake) = lake_of(tiny());
    let l = lake.to_str().expect("p");
    let sql = dir.path().join("custody.sql");
    std::fs::write(
        &sql,
        "SELECT event_id, user_agent, source_object, request_id FROM events WHERE is_ce ORDER BY event_id",
    )
    .expect("write");
    let out = cetrail(
        &[
            "query",
            sql.to_str().expect("p"),
            "--lake",
            l,
            "--format",
            "json",
        ],
        dir.path(),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let got: Vec<Value> = serde_json::from_slice(&out.stdout).expect("json");
    // Expected from the lake files read by an independent Parquet reader.
    let lake_rows = distinct_events(&lake);
    let expected: Vec<Value> = lake_rows
        .values()
        .filter(|r| r["kind"] == "assume" || r["kind"] == "activity")
        .map(|r| {
            let v = |c: &str| match r[c].as_str() {
                "∅" => Value::Null,
                s => json!(s),
            };
            json!({"event_id": v("event_id"), "user_agent": v("user_agent"),
                   "source_object": v("source_object"), "request_id": v("request_id")})
        })
        .collect();
    assert!(!expected.is_empty());
    assert!(
        expected.iter().any(|r| !r["source_object"].is_null()),
        "the fixture must carry source objects"
    );
    assert_eq!(got, expected);
    // --limit prints the first rows of the full result.
    let all = stdout(&cetrail(
        &["query", "activity-feed", "--lake", l, "--format", "csv"],
        dir.path(),
    ));
    let two = stdout(&cetrail(
        &[
            "query",
            "activity-feed",
            "--lake",
            l,
            "--format",
            "csv",
            "--limit",
            "2",
        ],
        dir.path(),
    ));
    let head: Vec<&str> = all.lines().take(3).collect();
    assert_eq!(two.lines().collect::<Vec<_>>(), head);
}

/// Every widget gives the same frame (rows, order, types, nulls) on polars' in-memory
/// and streaming engines, so the engine a widget is tuned for (`Widget::streaming`) is
/// only a matter of speed.
#[test]
fn both_polars_engines_give_every_widget_the_same_frame() {
    use polars::prelude::Engine as Polars;
    let (_dir, lake) = sample_lake();
    let (_d, tiny_lake) = lake_of(tiny());
    let config = Config::default();
    for (label, lake, view) in [
        ("sample, whole lake", &lake, utc_view()),
        ("sample, October", &lake, range("2026-10-01", "2026-10-26")),
        ("tiny", &tiny_lake, utc_view()),
    ] {
        let mut d = Dashboard::open(lake, &config, view).expect("open");
        let mut non_empty = 0;
        for w in WIDGETS.iter() {
            let a = d.widget_on(w, Polars::InMemory).expect("in-memory");
            let b = d.widget_on(w, Polars::Streaming).expect("streaming");
            assert_eq!(a.schema(), b.schema(), "{label} {}: schema", w.name);
            assert!(a.equals_missing(&b), "{label} {}:\n{a}\n{b}", w.name);
            non_empty += usize::from(a.height() > 0);
        }
        assert!(
            non_empty >= 10,
            "{label}: only {non_empty} widgets have rows"
        );
    }
}

/// Widgets run side by side (`Dashboard::run_widgets`, the dashboard's `--jobs`) give
/// the frames they give one at a time, in the order asked for, whatever order they are
/// scheduled in; the widgets reading `session_facts` find it computed once up front.
#[test]
fn widgets_run_side_by_side_give_the_frames_of_one_at_a_time() {
    let (_dir, lake) = sample_lake();
    let config = Config::default();
    let mut d = Dashboard::open(&lake, &config, utc_view()).expect("open");
    // Reversed, so the order asked for differs from the display and the schedule.
    let asked: Vec<&'static cetrail::query::widgets::Widget> = WIDGETS.iter().rev().collect();
    let alone: Vec<_> = asked.iter().map(|w| d.widget(w).expect("widget")).collect();
    for jobs in [1, 3, 64] {
        let runs = d.run_widgets(&asked, jobs).expect("run_widgets");
        assert_eq!(runs.len(), asked.len(), "jobs {jobs}");
        for ((run, w), frame) in runs.iter().zip(&asked).zip(&alone) {
            assert_eq!(run.widget.name, w.name, "jobs {jobs}: order");
            assert!(run.ms >= 0.0);
            assert!(
                run.frame.equals_missing(frame),
                "jobs {jobs} {}:\n{}\n{frame}",
                w.name,
                run.frame
            );
        }
    }
    assert!(alone.iter().filter(|f| f.height() > 0).count() >= 15);
    // A fresh session whose only widget reads session_facts computes it first.
    let mut fresh = Dashboard::open(&lake, &config, utc_view()).expect("open");
    let facts_widget = WIDGETS
        .iter()
        .find(|w| w.sql.contains("session_facts"))
        .expect("a session_facts widget");
    let runs = fresh.run_widgets(&[facts_widget], 2).expect("run");
    let expected = d.widget(facts_widget).expect("widget");
    assert!(runs[0].frame.equals_missing(&expected));
    assert!(expected.height() > 0);
}

/// top-actions, write-actions, denied-actions and access-denied-alarm are computed in
/// Rust (`top_actions.rs`, `action_groups.rs`, `denied_alarm.rs`); each gives the frame
/// of its SQL run by polars (rows, order, types, nulls), in several ranges and zones,
/// an empty one included, on the sample lake and the hand-made one (the alarm also at
/// lower thresholds).
#[test]
fn native_widgets_equal_their_sql() {
    let (_dir, lake) = sample_lake();
    let (_d, tiny_lake) = lake_of(tiny());
    let mut berlin = range("2026-10-05", "2026-10-19");
    berlin.zone = "Europe/Berlin".parse().expect("zone");
    let ranges = [
        ("sample, whole lake", &lake, utc_view()),
        ("sample, October", &lake, range("2026-10-01", "2026-10-26")),
        ("sample, two weeks in Berlin", &lake, berlin),
        (
            "sample, empty range",
            &lake,
            range("2030-01-01", "2030-01-02"),
        ),
        ("tiny", &tiny_lake, utc_view()),
    ];
    // The alarm also at lower thresholds: more and longer episodes, ties of actions.
    let thresholds = |name: &str| {
        if name == "access-denied-alarm" {
            vec![10, 3, 2, 1]
        } else {
            vec![10]
        }
    };
    for name in [
        "top-actions",
        "write-actions",
        "denied-actions",
        "access-denied-alarm",
    ] {
        let w = cetrail::query::widgets::find(name).expect("widget");
        let (mut rows, mut several_engineers, mut long_episode) = (0, false, false);
        for threshold in thresholds(name) {
            let mut config = Config::default();
            config.alarms.denied_threshold = threshold;
            for (label, lake, view) in ranges.iter().cloned() {
                let mut d = Dashboard::open(lake, &config, view).expect("open");
                let native = d.widget(w).expect("native");
                let sql = d.sql(w.sql).expect("sql");
                let label = format!("{name}, {label}, threshold {threshold}");
                assert_eq!(native.schema(), sql.schema(), "{label}: schema");
                assert!(native.equals_missing(&sql), "{label}:\n{native}\n{sql}");
                rows += native.height();
                let column = |c: &str, t: &polars::prelude::DataType| {
                    native.column(c).and_then(|c| c.cast(t))
                };
                if let Ok(c) = column("engineers", &polars::prelude::DataType::String) {
                    several_engineers |= c
                        .str()
                        .is_ok_and(|e| e.iter().flatten().any(|e| e.contains(',')));
                }
                if let Ok(c) = column("periods", &polars::prelude::DataType::Int64) {
                    long_episode |= c.i64().is_ok_and(|p| p.iter().flatten().any(|p| p > 1));
                }
            }
        }
        assert!(rows > 20, "{name}: only {rows} rows compared");
        match name {
            "write-actions" | "denied-actions" => {
                assert!(several_engineers, "{name}: no group with two engineers")
            }
            "access-denied-alarm" => assert!(long_episode, "no episode of two periods or more"),
            _ => {}
        }
    }
}

/// `session_facts` as the dashboard computes it (grouped by eight keys, the four
/// week columns following from `day`) equals its SQL (all twelve keys), in zones and
/// ranges that cut days and weeks, one starting mid-day.
#[test]
fn session_facts_by_its_short_key_equals_its_sql() {
    use cetrail::query::widgets::SESSION_FACTS_SQL;
    use polars::prelude::{DataFrame, SortMultipleOptions};
    let (_dir, lake) = sample_lake();
    let (_d, tiny_lake) = lake_of(tiny());
    let mut berlin = range("2026-10-05", "2026-10-19");
    berlin.zone = "Europe/Berlin".parse().expect("zone");
    let mut mid_day = range("2026-10-03", "2026-10-20");
    mid_day.from = Some("2026-10-03T13:30:00Z".parse().expect("instant"));
    let sorted = |df: DataFrame| {
        let names: Vec<String> = df
            .get_column_names()
            .iter()
            .map(|n| n.to_string())
            .collect();
        df.sort(names, SortMultipleOptions::default().with_nulls_last(true))
            .expect("sort")
    };
    let mut rows = 0;
    for (label, lake, view) in [
        ("sample, whole lake", &lake, utc_view()),
        ("sample, two weeks in Berlin", &lake, berlin),
        ("sample, from mid-day", &lake, mid_day),
        ("tiny", &tiny_lake, utc_view()),
    ] {
        let mut d = Dashboard::open(lake, &Config::default(), view).expect("open");
        let by_sql = sorted(d.sql(SESSION_FACTS_SQL).expect("sql"));
        let grouped = sorted(d.sql("SELECT * FROM session_facts").expect("facts"));
        assert_eq!(grouped.schema(), by_sql.schema(), "{label}: schema");
        assert!(
            grouped.equals_missing(&by_sql),
            "{label}:\n{grouped}\n{by_sql}"
        );
        rows += grouped.height();
    }
    assert!(rows > 100, "only {rows} rows compared");
}

#[test]
fn session_facts_widgets_equal_their_per_event_definitions() {
    let (_dir, lake) = sample_lake();
    let (_d, tiny_lake) = lake_of(tiny());
    let config = Config::default();
    let oracle = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/per-event-widgets");
    let mut berlin = range("2026-10-05", "2026-10-19");
    berlin.zone = "Europe/Berlin".parse().expect("zone");
    let mut checked = 0;
    for (label, lake, view) in [
        ("sample, whole lake", &lake, utc_view()),
        ("sample, two weeks in Berlin", &lake, berlin),
        ("tiny", &tiny_lake, utc_view()),
    ] {
        let mut d = Dashboard::open(lake, &config, view).expect("open");
        for w in WIDGETS.iter().filter(|w| w.sql.contains("session_facts")) {
            let sql = std::fs::read_to_string(oracle.join(format!("{}.sql", w.name)))
                .expect("per-event definition");
            assert!(!sql.contains("session_facts"), "{}", w.name);
            let direct = Table::from_frame(&d.sql(&sql).expect("per-event")).expect("table");
            let facts = Table::from_frame(&d.widget(w).expect("widget")).expect("table");
            assert_eq!(direct.columns, facts.columns, "{label} {}", w.name);
            assert_eq!(normalise(&direct), normalise(&facts), "{label} {}", w.name);
            checked += usize::from(!facts.rows.is_empty());
        }
    }
    // Six widgets read session_facts; all have rows in the first two settings.
    assert!(checked >= 12, "only {checked} non-empty comparisons");
}

/// A scan that reads only the row groups whose times meet the range
/// (`Rows::within_range`, for callers that keep the range's events only) keeps every
/// event of the range: restricted to it, the frame equals a whole scan's. And it reads
/// fewer events than the lake holds (the sample's weeks span several row groups).
#[test]
fn a_scan_within_the_range_keeps_every_event_of_the_range() {
    use cetrail::query::view::{Rows, VIEW_COLUMNS, materialise_rows, restrict};
    use polars::prelude::{DataFrame, IntoLazy as _};
    let (_dir, lake) = sample_lake();
    let (all, _) =
        materialise_rows(&lake, &utc_view(), VIEW_COLUMNS, Rows::default()).expect("all");
    let mut narrowed = 0;
    for (from, to) in [
        ("2026-09-21", "2026-09-22"),
        ("2026-10-05", "2026-10-19"),
        ("2026-10-26", "2026-11-02"),
        ("2027-01-01", "2027-01-02"),
    ] {
        let view = range(from, to);
        let within = Rows {
            within_range: true,
            ..Rows::default()
        };
        let (read, _) = materialise_rows(&lake, &view, VIEW_COLUMNS, within).expect("within");
        let (whole, _) =
            materialise_rows(&lake, &view, VIEW_COLUMNS, Rows::default()).expect("whole");
        assert!(whole.height() <= all.height());
        let kept = |df: DataFrame| {
            restrict(df.lazy(), view.from, view.to, None)
                .collect()
                .expect("restrict")
        };
        narrowed += usize::from(read.height() < whole.height());
        let (a, b) = (kept(read), kept(whole));
        assert!(a.equals_missing(&b), "{from}..{to}:\n{a}\n{b}");
        if from != "2027-01-01" {
            assert!(a.height() > 0, "{from}..{to}: no events");
        }
    }
    assert!(narrowed >= 2, "{narrowed} ranges read fewer row groups");
}

#[test]
fn the_direct_view_scan_equals_polars_scan() {
    use cetrail::query::view::{Scanner, VIEW_COLUMNS, scan_view};
    let (_dir, lake) = sample_lake();
    let (_d, tiny_lake) = lake_of(tiny());
    let mut wide: Vec<&str> = VIEW_COLUMNS.to_vec();
    wide.extend(["resources", "source_object", "user_agent"]);
    let role = |r: &str| ViewParams {
        role: Some(r.to_string()),
        ..utc_view()
    };
    let account = |a: &str| ViewParams {
        account: Some(a.to_string()),
        ..utc_view()
    };
    for (label, lake, view, names) in [
        ("sample", &lake, utc_view(), VIEW_COLUMNS),
        ("sample, more columns", &lake, utc_view(), wide.as_slice()),
        ("sample, CE-Data", &lake, role("CE-Data"), VIEW_COLUMNS),
        (
            "sample, one account",
            &lake,
            account("168089588671"),
            VIEW_COLUMNS,
        ),
        ("tiny", &tiny_lake, utc_view(), VIEW_COLUMNS),
    ] {
        let direct = scan_view(lake, &view, names, Scanner::Direct).expect("direct scan");
        let polars = scan_view(lake, &view, names, Scanner::Polars).expect("polars scan");
        assert_eq!(direct.schema(), polars.schema(), "{label}: schema");
        assert!(direct.height() > 0, "{label}: no rows");
        assert!(
            direct.equals_missing(&polars),
            "{label}:\n{direct}\n{polars}"
        );
        // `resource` takes every branch of its rule somewhere in the sample.
        if label == "sample" {
            let r = direct.column("resource").expect("resource");
            assert!(r.null_count() < r.len(), "{label}: resource all null");
        }
    }
}

/// `serve` makes each view from one unfiltered scan kept in memory with a zone's
/// calendar columns and facts per day (`Zoned`, `Dashboard::from_zoned`): every
/// widget's frame equals the one of a view read from the lake with the same range,
/// zone and filters (ranges in the middle of the sample data's seven weeks, an instant
/// range, another zone, each filter). A range from local midnight to local midnight
/// splits the facts per day; an instant range computes them from the events.
#[test]
fn a_view_made_from_the_kept_scan_equals_one_read_from_the_lake() {
    use cetrail::query::view::{VIEW_COLUMNS, materialise_rows};
    use cetrail::query::widgets::Zoned;
    let (_dir, lake) = sample_lake();
    let config = Config::default();
    let (scanned, _) =
        materialise_rows(&lake, &utc_view(), VIEW_COLUMNS, Default::default()).expect("scan");
    let bounds = cetrail::query::widgets::lake_bounds(&lake).expect("bounds");
    let instant = |s: &str| {
        DateTime::parse_from_rfc3339(s)
            .map(|t| t.with_timezone(&Utc))
            .ok()
    };
    let berlin = |from: &str, to: &str| {
        let mut v = utc_view();
        v.zone = chrono_tz::Europe::Berlin;
        v.from = Some(local_midnight(day(from), v.zone));
        v.to = Some(local_midnight(day(to), v.zone));
        v
    };
    let views: Vec<(&str, ViewParams)> = vec![
        ("whole lake", utc_view()),
        ("one week", range("2026-09-21", "2026-09-28")),
        (
            "24 hours",
            ViewParams {
                from: instant("2026-09-25T12:00:00Z"),
                to: instant("2026-09-26T12:00:00Z"),
                ..utc_view()
            },
        ),
        ("October, Berlin", berlin("2026-10-01", "2026-11-01")),
        ("the last week", range("2026-10-20", "2026-10-27")),
        (
            "two weeks in the middle, Berlin",
            berlin("2026-10-05", "2026-10-19"),
        ),
        (
            "CE-Data, two weeks",
            ViewParams {
                role: Some("CE-Data".into()),
                ..range("2026-09-14", "2026-09-28")
            },
        ),
        (
            "one engineer",
            ViewParams {
                engineer: Some("alice.martin".into()),
                ..utc_view()
            },
        ),
        (
            "an engineer who is not there",
            ViewParams {
                engineer: Some("nobody".into()),
                ..utc_view()
            },
        ),
    ];
    let mut compared = 0;
    let (utc_zone, berlin_zone) = (
        Zoned::new(&scanned, &utc_view()).expect("UTC"),
        Zoned::new(&scanned, &berlin("2026-10-01", "2026-10-02")).expect("Berlin"),
    );
    let mut by_day = 0;
    for (label, view) in views {
        let mut read = Dashboard::open(&lake, &config, view.clone()).expect("open");
        let zoned = if label.contains("Berlin") {
            &berlin_zone
        } else {
            &utc_zone
        };
        assert!(
            !(if label.contains("Berlin") {
                &utc_zone
            } else {
                &berlin_zone
            })
            .fits(&view),
            "{label}: another zone's calendar fits"
        );
        let mut kept = Dashboard::from_zoned(zoned, bounds, &config, view).expect("kept");
        let split = kept.stages.laps.iter().any(|(n, _)| *n == "facts-by-day");
        assert_eq!(
            split,
            label != "24 hours",
            "{label}: facts per day used: {split}"
        );
        by_day += usize::from(split);
        assert_eq!(read.view.from, kept.view.from, "{label}");
        assert_eq!(read.view.to, kept.view.to, "{label}");
        for w in WIDGETS.iter() {
            let a = read.widget(w).expect("read");
            let b = kept.widget(w).expect("kept");
            assert!(a.equals_missing(&b), "{label} {}:\n{a}\n{b}", w.name);
            compared += usize::from(a.height() > 0);
        }
    }
    assert!(compared >= 60, "{compared} non-empty frames compared");
    assert_eq!(by_day, 8);
    // A zone's calendar does not make another zone's view.
    assert!(
        Dashboard::from_zoned(
            &utc_zone,
            bounds,
            &config,
            berlin("2026-10-01", "2026-11-01")
        )
        .is_err()
    );
    // The ranges in the middle read fewer events than the lake holds.
    let window = Dashboard::window(&config, &range("2026-10-20", "2026-10-27")).expect("a range");
    let first = scanned
        .column("event_time")
        .expect("event_time")
        .as_materialized_series()
        .to_physical_repr()
        .i64()
        .expect("µs")
        .get(0)
        .expect("an event");
    assert!(
        window.0 > first,
        "the history window starts after the lake does"
    );
}
