//! The other places CE events live (SPEC §10): log-group exports, EventBridge
//! deliveries, Event History files, told by content, with their provenance; the same
//! generated CE activity through each gives the same widgets.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde_json::{Value, json};

use crate::util::*;

/// A CE activity record (CE-SRE session of alice) at `time` with `id`.
fn ce_record(id: &str, time: &str, name: &str) -> Value {
    json!({
        "eventVersion": "1.09",
        "userIdentity": {
            "type": "AssumedRole",
            "principalId": "AROAEXAMPLE:alice.martin",
            "arn": "arn:aws:sts::111122223333:assumed-role/CE-SRE/alice.martin",
            "accountId": "111122223333",
            "accessKeyId": "ASIAEXAMPLEKEY000001",
            "sessionContext": {
                "sessionIssuer": {"type": "Role", "userName": "CE-SRE",
                    "arn": "arn:aws:iam::111122223333:role/CE-SRE",
                    "principalId": "AROAEXAMPLE", "accountId": "111122223333"},
                "attributes": {"creationDate": "2026-10-01T08:00:00Z", "mfaAuthenticated": "false"}
            }
        },
        "eventTime": time,
        "eventSource": "ec2.amazonaws.com",
        "eventName": name,
        "awsRegion": "eu-west-1",
        "sourceIPAddress": "203.0.113.10",
        "userAgent": "aws-cli/2",
        "requestParameters": null,
        "responseElements": null,
        "requestID": format!("req-{id}"),
        "eventID": id,
        "readOnly": true,
        "eventType": "AwsApiCall",
        "managementEvent": true,
        "recipientAccountId": "111122223333",
        "eventCategory": "Management"
    })
}

fn bus(record: &Value) -> String {
    json!({
        "version": "0",
        "id": "6f3c1c1e-0000-4000-a000-000000000000",
        "detail-type": "AWS API Call via CloudTrail",
        "source": "aws.ec2",
        "account": "111122223333",
        "time": record["eventTime"],
        "region": "eu-west-1",
        "resources": [],
        "detail": record,
    })
    .to_string()
}

/// Rows of the lake by event id: (event_time, source_kind, source_object).
fn provenance(lake: &Path) -> BTreeMap<String, (String, String, String)> {
    distinct_events(lake)
        .into_iter()
        .map(|(id, r)| {
            (
                id,
                (
                    r["event_time"].clone(),
                    r["source_kind"].clone(),
                    r["source_object"].clone(),
                ),
            )
        })
        .collect()
}

#[test]
fn log_exports_are_read_line_by_line_with_their_edge_cases() {
    let dir = tempdir();
    let src = dir.path().join("export");
    let task = src.join("exportedlogs/3b1f0c2e-7d5a-4d1e-9a57-0c2f4a9e1b11");
    // CloudWatch Logs' write test, beside the task folder.
    write(
        &src.join("exportedlogs/aws-logs-write-test"),
        b"Permission Check Successful",
    );
    // A stream in two parts. The line's timestamp is the delivery time, not the
    // event's; one message is a bare record (a trail's own CloudWatch Logs delivery).
    let a = ce_record("ev-a", "2026-10-01T09:00:00Z", "DescribeInstances");
    let b = ce_record("ev-b", "2026-10-01T09:05:00Z", "DescribeVolumes");
    let c = ce_record("ev-c", "2026-10-01T23:59:30Z", "DescribeVpcs");
    let part0 = format!(
        "2026-10-01T09:00:04.117Z {}\n2026-10-01T09:07:41.002Z {}\n",
        bus(&a),
        b
    );
    write(&task.join("ce-stream-1/000000.gz"), &gzip(part0.as_bytes()));
    // The next part: an event delivered after midnight, and a message cut at
    // CloudWatch Logs' 256 KB event limit.
    let mut big = ce_record("ev-big", "2026-10-01T10:00:00Z", "RunInstances");
    big["requestParameters"] = json!({"userData": "x".repeat(300_000)});
    let cut: String = bus(&big).chars().take(262_118).collect();
    let part1 = format!(
        "2026-10-02T00:01:12.500Z {}\r\n\n2026-10-01T10:00:01.000Z {cut}\n",
        bus(&c)
    );
    write(&task.join("ce-stream-1/000001.gz"), &gzip(part1.as_bytes()));
    // Empty parts: no bytes at all, and an empty gzip member.
    write(&task.join("ce-stream-2/000000.gz"), b"");
    write(&task.join("ce-stream-3/000000.gz"), &gzip(b""));

    let lake = dir.path().join("lake");
    let (code, s) = ingest(&src, &lake, &[]);
    assert_eq!(code, 3, "the cut message is a rejected record: {s}");
    assert_eq!(n(&s, "objects_seen"), 5, "{s}");
    assert_eq!(n(&s, "ingested"), 4, "{s}");
    assert_eq!(n(&s, "skipped_not_a_log"), 1, "the write test: {s}");
    assert_eq!(n(&s, "rejected"), 0, "empty parts are not rejected: {s}");
    assert_eq!(n(&s, "records_read"), 4, "{s}");
    assert_eq!(n(&s, "bad_records"), 1, "{s}");
    let reason = s["rejections"][0]["reason"].as_str().unwrap_or("");
    assert!(
        reason.contains("line 3:") && reason.contains("256 KB event limit"),
        "the cut message is named by its line and the limit: {reason}"
    );
    assert!(
        s["rejections"][0]["key"]
            .as_str()
            .is_some_and(|k| k.ends_with("ce-stream-1/000001.gz")),
        "{s}"
    );
    let rows = provenance(&lake);
    let keys: BTreeSet<&str> = rows.keys().map(String::as_str).collect();
    assert_eq!(keys, BTreeSet::from(["ev-a", "ev-b", "ev-c"]));
    // eventTime, never the line's timestamp; the export key as provenance.
    assert_eq!(rows["ev-b"].0, "2026-10-01T09:05:00Z");
    assert_eq!(rows["ev-c"].0, "2026-10-01T23:59:30Z");
    for (t, kind, object) in rows.values() {
        assert_eq!(kind, "log-export", "{t}");
        assert!(object.starts_with("exportedlogs/3b1f0c2e"), "{object}");
    }
    assert!(rows["ev-c"].2.ends_with("ce-stream-1/000001.gz"));
    // A rerun reads nothing again.
    let (_, again) = ingest(&src, &lake, &[]);
    assert_eq!(n(&again, "already_in_ledger"), 5, "{again}");
}

#[test]
fn eventbridge_lines_event_history_files_and_csv_downloads() {
    let dir = tempdir();
    let src = dir.path().join("mixed");
    let r = |i: u32| {
        ce_record(
            &format!("ev-{i}"),
            &format!("2026-10-01T09:{i:02}:00Z"),
            "DescribeInstances",
        )
    };
    // Firehose: EventBridge events back to back (no newline between two of them), an
    // event of another detail type, and a line that is not JSON.
    let mut other = json!({"version": "0", "detail-type": "EC2 Instance State-change Notification",
        "source": "aws.ec2", "detail": {"state": "running"}});
    other["id"] = json!("x");
    let firehose = format!(
        "{}{}\n{}\nnot json at all\n{}\n",
        bus(&r(1)),
        bus(&r(2)),
        other,
        bus(&r(3))
    );
    write(
        &src.join("firehose/2026/10/01/09/ce-1-2026-10-01-09-00-00-abc.gz"),
        &gzip(firehose.as_bytes()),
    );
    // `aws cloudtrail lookup-events` output: two pages in one file (the second
    // appended after a `--starting-token` call), one more in another file.
    let page = |ids: &[u32], token: Option<&str>| {
        let events: Vec<Value> = ids
            .iter()
            .map(|i| {
                json!({"EventId": format!("ev-{i}"), "EventName": "DescribeInstances",
                    "ReadOnly": "true", "EventTime": "2026-10-01T09:00:00+00:00",
                    "EventSource": "ec2.amazonaws.com", "Username": "alice.martin",
                    "Resources": [], "CloudTrailEvent": r(*i).to_string()})
            })
            .collect();
        let mut p = json!({"Events": events});
        if let Some(t) = token {
            p["NextToken"] = json!(t);
        }
        serde_json::to_string_pretty(&p).unwrap_or_default()
    };
    write(
        &src.join("history/eu-west-1.json"),
        format!("{}\n{}\n", page(&[3, 4], Some("tok-1")), page(&[5], None)).as_bytes(),
    );
    write(
        &src.join("history/page-3.json"),
        page(&[6], None).as_bytes(),
    );
    // The console's JSON download.
    write(
        &src.join("history/event_history.json"),
        json!({"Records": [r(7)]}).to_string().as_bytes(),
    );
    // The console's CSV download: refused, with what to do instead.
    write(
        &src.join("history/event_history.csv"),
        b"Event ID,Event time,User name,Event name,Resource type,Resource name,AWS access key,AWS region,Error code,Source IP address\nev-8,2026-10-01T09:08:00Z,alice.martin,DescribeInstances,,,ASIA,eu-west-1,,203.0.113.10\n",
    );
    write(
        &src.join("notes.txt"),
        b"exported by the client on 2026-10-02\n",
    );

    let lake = dir.path().join("lake");
    let (code, s) = ingest(&src, &lake, &[]);
    assert_eq!(code, 3, "{s}");
    assert_eq!(n(&s, "skipped_records"), 1, "{s}");
    assert_eq!(n(&s, "skipped_not_a_log"), 1, "notes.txt: {s}");
    assert_eq!(n(&s, "rejected"), 1, "the CSV: {s}");
    let rejections = s["rejections"].as_array().cloned().unwrap_or_default();
    let csv = rejections
        .iter()
        .find(|r| r["key"].as_str().is_some_and(|k| k.ends_with(".csv")))
        .and_then(|r| r["reason"].as_str())
        .unwrap_or("");
    assert!(
        csv.contains("CSV") && csv.contains("download JSON"),
        "{csv}"
    );
    let bad = rejections
        .iter()
        .find(|r| r["key"].as_str().is_some_and(|k| k.contains("firehose")))
        .and_then(|r| r["reason"].as_str())
        .unwrap_or("");
    assert!(bad.contains("1 record(s) rejected"), "{bad}");

    let rows = provenance(&lake);
    let kinds: BTreeMap<&str, &str> = rows
        .iter()
        .map(|(id, (_, kind, _))| (id.as_str(), kind.as_str()))
        .collect();
    // ev-3 came twice (EventBridge and Event History): one row, and as neither copy is
    // a trail's, the one from the smallest source object (firehose/… < history/…).
    assert_eq!(
        kinds,
        BTreeMap::from([
            ("ev-1", "eventbridge"),
            ("ev-2", "eventbridge"),
            ("ev-3", "eventbridge"),
            ("ev-4", "event-history"),
            ("ev-5", "event-history"),
            ("ev-6", "event-history"),
            ("ev-7", "event-history"),
        ]),
        "{rows:?}"
    );
}

/// A one-stream export under `dir` of `records`, each delivered two seconds after it.
fn write_export(dir: &Path, records: &[&Value]) {
    let lines: String = records
        .iter()
        .map(|r| {
            let delivered =
                chrono::DateTime::parse_from_rfc3339(r["eventTime"].as_str().unwrap_or(""))
                    .map(|t| t + chrono::Duration::seconds(2))
                    .map(|t| t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string())
                    .unwrap_or_default();
            format!("{delivered} {}\n", bus(r))
        })
        .collect();
    write(
        &dir.join("exportedlogs/t1/s1/000000.gz"),
        &gzip(lines.as_bytes()),
    );
}

/// The copy of each event the `events` view keeps: its id, kind and object, by id.
fn copies_kept(lake: &Path, cwd: &Path) -> Value {
    let sql = cwd.join("copies.sql");
    std::fs::write(
        &sql,
        "SELECT event_id, source_kind, source_object FROM events ORDER BY event_id",
    )
    .expect("write");
    let out = cetrail(
        &[
            "query",
            sql.to_str().unwrap_or(""),
            "--lake",
            lake.to_str().unwrap_or(""),
            "--format",
            "json",
        ],
        cwd,
    );
    assert!(out.status.success(), "{}", stderr(&out));
    serde_json::from_slice(&out.stdout).unwrap_or_default()
}

#[test]
fn a_trail_copy_wins_over_every_other_source() {
    let dir = tempdir();
    let export = dir.path().join("export");
    let trail = dir.path().join("trail");
    let a = ce_record("ev-a", "2026-10-01T09:00:00Z", "DescribeInstances");
    let b = ce_record("ev-b", "2026-10-01T09:05:00Z", "DescribeVolumes");
    write_export(&export, &[&a, &b]);
    let key = "AWSLogs/111122223333/CloudTrail/eu-west-1/2026/10/01/111122223333_CloudTrail_eu-west-1_20261001T0910Z_abc.json.gz";
    write(
        &trail.join(key),
        &gzip(json!({"Records": [a]}).to_string().as_bytes()),
    );
    let lake = dir.path().join("lake");
    // The export first, then the trail: the lake holds both copies of ev-a, and every
    // reader keeps the trail's.
    assert_eq!(ingest(&export, &lake, &[]).0, 0);
    assert_eq!(ingest(&trail, &lake, &[]).0, 0);
    let before = provenance(&lake);
    assert_eq!(before["ev-a"].1, "trail");
    assert_eq!(before["ev-a"].2, key);
    assert_eq!(before["ev-b"].1, "log-export");
    let got = copies_kept(&lake, dir.path());
    assert_eq!(got[0]["source_kind"], "trail", "{got}");
    assert_eq!(got[0]["source_object"], key, "{got}");
    assert_eq!(got[1]["source_kind"], "log-export", "{got}");
    // Compaction keeps the trail's copy too.
    let out = cetrail(
        &["lake", "compact", "--lake", lake.to_str().unwrap_or("")],
        dir.path(),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(rows(&lake).len(), 2, "one row per event after compaction");
    assert_eq!(provenance(&lake), before);
}

/// `dashboard --format json` of a lake over a fixed range.
fn dashboard(lake: &Path, cwd: &Path) -> Value {
    let out = cetrail(
        &[
            "dashboard",
            "--lake",
            lake.to_str().unwrap_or(""),
            "--from",
            "2026-09-07",
            "--to",
            "2026-09-21",
            "--format",
            "json",
        ],
        cwd,
    );
    assert!(out.status.success(), "{}", stderr(&out));
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("dashboard JSON: {e}"))
}

#[test]
fn the_same_activity_from_every_source_gives_the_same_widgets() {
    let dir = tempdir();
    let root = dir.path();
    let out = cetrail(
        &[
            "generate",
            "--out",
            "trail",
            "--log-group-export",
            "export",
            "--eventbridge",
            "firehose",
            "--event-history",
            "history/lookup-events.json",
            "--days",
            "14",
            "--seed",
            "5",
            "--no-digests",
            "--json",
        ],
        root,
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    assert!(
        summary["shapes"]["export_files"].as_u64().unwrap_or(0) > 4,
        "{summary}"
    );
    let mut lakes = BTreeMap::new();
    for name in ["trail", "export", "firehose", "history"] {
        let lake = root.join(format!("lake-{name}"));
        let (code, s) = ingest(&root.join(name), &lake, &[]);
        assert_eq!(code, 0, "{name}: {s}");
        lakes.insert(name, lake);
    }
    // Multi-file streams: more parts than streams.
    let parts = walk(&root.join("export"))
        .into_iter()
        .filter(|p| p.to_string_lossy().ends_with(".gz"))
        .count();
    assert!(parts > 4, "{parts} export parts");

    let want = dashboard(&lakes["trail"], root);
    for name in ["export", "firehose"] {
        let got = dashboard(&lakes[name], root);
        assert_eq!(got, want, "{name}: all 17 widgets equal the trail's");
    }
    // Event History holds management events only: its lake is the trail's CE events
    // without the data events (S3 object reads and writes of CE-Data), row for row.
    let history = distinct_events(&lakes["history"]);
    let trail: BTreeMap<String, BTreeMap<String, String>> = distinct_events(&lakes["trail"])
        .into_iter()
        .filter(|(_, r)| {
            r["management_event"] != "false" && matches!(r["kind"].as_str(), "assume" | "activity")
        })
        .collect();
    assert_eq!(history.len(), trail.len());
    let strip = |r: &BTreeMap<String, String>| {
        let mut r = r.clone();
        r.remove("source_kind");
        r.remove("source_object");
        r
    };
    for (id, r) in &trail {
        assert_eq!(history.get(id).map(strip), Some(strip(r)), "{id}");
    }
    // So the widgets that count S3 object events differ (data-s3: reads and writes),
    // and those that see only management events do not (ec2-shell, admin-alarm).
    let got = dashboard(&lakes["history"], root);
    assert_ne!(got["widgets"]["data-s3"], want["widgets"]["data-s3"]);
    assert_eq!(got["widgets"]["ec2-shell"], want["widgets"]["ec2-shell"]);
    assert_eq!(
        got["widgets"]["admin-alarm"],
        want["widgets"]["admin-alarm"]
    );
}

#[test]
fn a_log_group_source_without_read_only_calls_is_named_where_people_look() {
    let dir = tempdir();
    let export = dir.path().join("export");
    // An EventBridge rule without read-only management events: write calls only.
    let lines: String = (0..6)
        .map(|i| {
            let mut r = ce_record(
                &format!("w-{i}"),
                &format!("2026-10-01T09:{i:02}:00Z"),
                "CreateTags",
            );
            r["readOnly"] = json!(false);
            format!("2026-10-01T09:{i:02}:03.000Z {}\n", bus(&r))
        })
        .collect();
    write(
        &export.join("exportedlogs/t1/s1/000000.gz"),
        &gzip(lines.as_bytes()),
    );
    let lake = dir.path().join("lake");
    assert_eq!(ingest(&export, &lake, &[]).0, 0);
    let lake_arg = lake.to_str().unwrap_or("");
    let out = cetrail(
        &["coverage", "--lake", lake_arg, "--format", "json"],
        dir.path(),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let c: Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    let warnings = c["warnings"].as_array().cloned().unwrap_or_default();
    assert_eq!(warnings.len(), 1, "{c}");
    assert!(
        warnings[0]
            .as_str()
            .is_some_and(|w| w.contains("log-export") && w.contains("undercount")),
        "{c}"
    );
    assert_eq!(c["sources"][0]["source_kind"], "log-export", "{c}");
    assert_eq!(c["sources"][0]["events"], 6, "{c}");
    assert_eq!(c["sources"][0]["read_only_events"], 0, "{c}");
    let out = cetrail(&["dashboard", "--lake", lake_arg], dir.path());
    assert!(
        stdout(&out)
            .contains("warning: the log-export source holds 6 event(s) and not one read-only call"),
        "{}",
        stdout(&out)
    );
    let out = cetrail(
        &["dashboard", "--lake", lake_arg, "--format", "json"],
        dir.path(),
    );
    let d: Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    assert_eq!(d["warnings"].as_array().map(Vec::len), Some(1), "{d}");
    let md = dir.path().join("report.md");
    let out = cetrail(
        &[
            "report",
            "--lake",
            lake_arg,
            "--month",
            "2026-10",
            "--out",
            md.to_str().unwrap_or(""),
            "--format",
            "md",
        ],
        dir.path(),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let text = std::fs::read_to_string(&md).unwrap_or_default();
    assert!(
        text.contains("Warning: the log-export source holds 6 event(s)"),
        "{text}"
    );
    // The same calls with one read-only among them: no warning.
    let mut r = ce_record("r-1", "2026-10-01T10:00:00Z", "DescribeTags");
    r["readOnly"] = json!(true);
    write(
        &export.join("exportedlogs/t1/s1/000001.gz"),
        &gzip(format!("2026-10-01T10:00:02.000Z {}\n", bus(&r)).as_bytes()),
    );
    assert_eq!(ingest(&export, &lake, &[]).0, 0);
    let out = cetrail(
        &["coverage", "--lake", lake_arg, "--format", "json"],
        dir.path(),
    );
    let c: Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    assert_eq!(c["warnings"].as_array().map(Vec::len), Some(0), "{c}");
}

/// Rewrites a lake file as schema version 1 wrote it: without `source_kind`.
fn as_version_1(path: &Path) {
    use parquet::arrow::ArrowWriter;
    let file = std::fs::File::open(path).expect("open");
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
        .expect("reader")
        .build()
        .expect("build");
    let batches: Vec<arrow::array::RecordBatch> = reader.map(|b| b.expect("batch")).collect();
    let schema = batches[0].schema();
    let keep: Vec<usize> = (0..schema.fields().len())
        .filter(|i| schema.field(*i).name() != "source_kind")
        .collect();
    let mut meta = schema.metadata().clone();
    meta.insert("cetrail.schema_version", "1");
    let old = std::sync::Arc::new(schema.project(&keep).expect("project").with_metadata(meta));
    let tmp = path.with_extension("v1");
    let mut w = ArrowWriter::try_new(
        std::fs::File::create(&tmp).expect("create"),
        old.clone(),
        None,
    )
    .expect("writer");
    for b in &batches {
        let b = b.project(&keep).expect("project batch");
        let b =
            arrow::array::RecordBatch::try_new(old.clone(), b.columns().to_vec()).expect("batch");
        w.write(&b).expect("write");
    }
    w.close().expect("close");
    std::fs::rename(&tmp, path).expect("rename");
}

#[test]
fn a_lake_of_schema_version_1_reads_and_compacts_beside_new_files() {
    let dir = tempdir();
    let trail = dir.path().join("trail");
    let export = dir.path().join("export");
    let a = ce_record("ev-a", "2026-10-01T09:00:00Z", "DescribeInstances");
    let b = ce_record("ev-b", "2026-10-01T09:05:00Z", "DescribeVolumes");
    let key = "AWSLogs/111122223333/CloudTrail/eu-west-1/2026/10/01/111122223333_CloudTrail_eu-west-1_20261001T0910Z_abc.json.gz";
    write(
        &trail.join(key),
        &gzip(json!({"Records": [a.clone()]}).to_string().as_bytes()),
    );
    let lake = dir.path().join("lake");
    assert_eq!(ingest(&trail, &lake, &[]).0, 0);
    for f in lake_files(&lake) {
        as_version_1(&f);
    }
    // Segments of that version recorded rows only (no size, no checksum).
    for seg in walk(&lake.join("_cetrail/ledger")) {
        let text = std::fs::read_to_string(&seg).expect("segment");
        let (head, rest) = text.split_once('\n').unwrap_or((&text, ""));
        let mut header: Value = serde_json::from_str(head).expect("header");
        for f in header["files"].as_array_mut().into_iter().flatten() {
            if let Some(f) = f.as_object_mut() {
                f.remove("size");
                f.remove("xxh3");
            }
        }
        std::fs::write(&seg, format!("{header}\n{rest}")).expect("write segment");
    }
    // The same event and another through an export, in files of version 2: the view
    // meets a duplicate and reads `source_kind` from both versions.
    write_export(&export, &[&a, &b]);
    assert_eq!(ingest(&export, &lake, &[]).0, 0);
    let lake_arg = lake.to_str().unwrap_or("");
    let got = copies_kept(&lake, dir.path());
    // The version-1 copy (a trail's, its kind null) wins over the export's.
    assert_eq!(got[0]["event_id"], "ev-a", "{got}");
    assert_eq!(got[0]["source_object"], key, "{got}");
    assert_eq!(got[1]["source_kind"], "log-export", "{got}");
    for cmd in [["dashboard", "--lake"], ["audit", "--lake"]] {
        let out = cetrail(&[cmd[0], cmd[1], lake_arg, "--format", "json"], dir.path());
        assert!(
            out.status.code().is_some_and(|c| c <= 1),
            "{}: {}",
            cmd[0],
            stderr(&out)
        );
    }
    // Files of segments without sizes are checked by their footers.
    let out = cetrail(&["lake", "check", "--lake", lake_arg, "--deep"], dir.path());
    assert!(out.status.success(), "{}", stdout(&out));
    let out = cetrail(&["lake", "compact", "--lake", lake_arg], dir.path());
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(rows(&lake).len(), 2, "one row per event after compaction");
    let got = copies_kept(&lake, dir.path());
    // The trail's row is kept as it was written: its kind null (a trail's).
    assert!(got[0]["source_kind"].is_null(), "{got}");
    assert_eq!(got[0]["source_object"], key, "{got}");
}
