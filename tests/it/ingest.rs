//! `cetrail ingest` end to end on generated archives: counts, the CE filter on a whole
//! archive, dedup, pruning, idempotent reruns, and readers other than ours.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use arrow::datatypes::{DataType, TimeUnit};
use serde_json::json;

use crate::util::*;

const SMALL: &[&str] = &[
    "--days",
    "10",
    "--events-per-day",
    "60",
    "--ce-share",
    "0.3",
    "--seed",
    "7",
];

/// The log files of an archive.
fn log_files(dir: &Path) -> Vec<std::path::PathBuf> {
    walk(dir)
        .into_iter()
        .filter(|p| p.to_string_lossy().contains("/CloudTrail/"))
        .collect()
}

fn count_files(dir: &Path, part: &str) -> u64 {
    walk(dir)
        .iter()
        .filter(|p| p.to_string_lossy().contains(part))
        .count() as u64
}

#[test]
fn generated_archive_round_trip() {
    let dir = tempdir();
    let src = dir.path().join("archive");
    let lake = dir.path().join("lake");
    generate(&src, SMALL);
    let (code, s) = ingest(&src, &lake, &[]);
    assert_eq!(code, 0, "{s}");
    let logs = count_files(&src, "/CloudTrail/");
    // Digests, insights, and the public keys and signatures `verify` reads.
    let siblings =
        count_files(&src, "/CloudTrail-Digest/") + count_files(&src, "/CloudTrail-Insight/") + 2;
    assert!(siblings > 2);
    assert_eq!(n(&s, "objects_seen"), logs + siblings);
    assert_eq!(n(&s, "ingested"), logs);
    assert_eq!(n(&s, "skipped_not_a_log"), siblings);
    assert_eq!(n(&s, "rejected"), 0);
    assert_eq!(n(&s, "bad_records"), 0);

    let rows = rows(&lake);
    assert_eq!(rows.len() as u64, n(&s, "kept_total"));
    assert!(rows.len() > 500, "{}", rows.len());
    // Precision: only CE roles, never the look-alikes the generator plants.
    let ce: BTreeSet<&str> = [
        "CE-ReadOnly",
        "CE-Security",
        "CE-SRE",
        "CE-DevOps",
        "CE-Data",
        "CE-Admin",
    ]
    .into();
    for r in &rows {
        match r["kind"].as_str() {
            "assume" | "activity" => assert!(ce.contains(r["role"].as_str()), "{r:?}"),
            "infra" => {}
            k => panic!("unexpected kind {k}"),
        }
        assert!(
            !r["identity_arn"].contains("CE-Admins-Legacy")
                && !r["identity_arn"].contains("/ce-admin/")
        );
    }
    // Recall: every kind and the planted shapes are there.
    let count = |f: &dyn Fn(&std::collections::BTreeMap<String, String>) -> bool| {
        rows.iter().filter(|r| f(r)).count()
    };
    assert!(count(&|r| r["kind"] == "infra") >= 3);
    assert!(
        count(&|r| r["kind"] == "assume" && r["is_denied"] == "true" && r["engineer"] == "∅") >= 1
    );
    assert!(count(&|r| r["event_name"] == "StartSession" && r["target_instance"] != "∅") >= 1);
    assert!(count(&|r| r["role"] == "CE-Data" && r["bucket"] != "∅") >= 1);
    assert!(count(&|r| r["role"] == "CE-Data" && r["db"] != "∅") >= 1);
    // Every activity event of a session carries the key its AssumeRole handed out.
    let assumed: BTreeSet<&str> = rows
        .iter()
        .filter(|r| r["kind"] == "assume" && r["is_error"] == "false")
        .map(|r| r["assumed_key_id"].as_str())
        .collect();
    let activity_keys: BTreeSet<&str> = rows
        .iter()
        .filter(|r| r["kind"] == "activity" && r["engineer"] != "new.hire")
        .map(|r| r["session_key"].as_str())
        .collect();
    let orphan = activity_keys.difference(&assumed).count();
    // Planted calls without a preceding AssumeRole (denied burst, role chaining) are few.
    assert!(
        orphan <= 4,
        "{orphan} activity session keys without AssumeRole"
    );
}

/// With 8 parser threads a chunk holds 1,024 objects, more than the reader fetches
/// (and holds open) at once: the chunk is fetched in parts, and the lake and the counts
/// equal those of a one-thread run whose parsers open and read the files themselves.
#[test]
fn chunks_larger_than_the_open_files_limit_give_the_same_lake() {
    let dir = tempdir();
    let src = dir.path().join("archive");
    generate(
        &src,
        &[MINUTE_FILES, &["--ce-share", "0.2", "--seed", "5"]].concat(),
    );
    let logs = count_files(&src, "/CloudTrail/");
    assert!(logs > 1_024, "{logs} log files");
    // Both ways of reading local files: opened ahead on the reader's threads, and
    // opened by the parsers themselves.
    let (code, eight) = ingest(
        &src,
        &dir.path().join("eight"),
        &["--threads", "8", "--read-ahead", "always"],
    );
    assert_eq!(code, 0, "{eight}");
    let (code, one) = ingest(
        &src,
        &dir.path().join("one"),
        &["--threads", "1", "--read-ahead", "never"],
    );
    assert_eq!(code, 0, "{one}");
    assert_eq!(n(&eight, "ingested"), logs);
    for field in [
        "ingested",
        "records_read",
        "kept_total",
        "duplicates_dropped",
    ] {
        assert_eq!(n(&eight, field), n(&one, field), "{field}");
    }
    let events = distinct_events(&dir.path().join("eight"));
    assert!(events.len() > 100, "{}", events.len());
    assert_eq!(events, distinct_events(&dir.path().join("one")));
}

#[test]
fn lake_files_follow_the_contract() {
    let dir = tempdir();
    let src = dir.path().join("archive");
    let lake = dir.path().join("lake");
    generate(&src, SMALL);
    assert_eq!(ingest(&src, &lake, &[]).0, 0);
    let files = lake_files(&lake);
    assert!(!files.is_empty());
    for f in &files {
        let month = f
            .parent()
            .and_then(|p| p.file_name())
            .map(|m| m.to_string_lossy().into_owned())
            .unwrap_or_default();
        assert!(month.starts_with("month=2026-"), "{}", f.display());
        let file = std::fs::File::open(f).expect("open");
        let reader = parquet::file::reader::SerializedFileReader::new(file).expect("parquet");
        use parquet::file::reader::FileReader;
        let meta = reader.metadata().file_metadata();
        let kv = meta.key_value_metadata().expect("kv metadata");
        assert!(
            kv.iter()
                .any(|k| k.key == "cetrail.schema_version" && k.value.as_deref() == Some("2"))
        );
        // Every column chunk zstd; a dictionary for the repetitive text columns, none
        // for the ids that differ in every row.
        for rg in reader.metadata().row_groups() {
            for c in rg.columns() {
                let name = c.column_path().string();
                assert!(
                    matches!(c.compression(), parquet::basic::Compression::ZSTD(_)),
                    "{name}: {:?}",
                    c.compression()
                );
                let dictionary = c.dictionary_page_offset().is_some();
                match name.as_str() {
                    "event_id" | "request_id" => assert!(!dictionary, "{name} has a dictionary"),
                    "event_name" | "role" | "session_key" | "account" => {
                        assert!(dictionary, "{name} has no dictionary")
                    }
                    _ => {}
                }
            }
        }
    }
    for b in read_batches(&lake) {
        let schema = b.schema();
        for field in schema.fields() {
            assert!(
                !matches!(field.data_type(), DataType::Dictionary(..)),
                "{}",
                field.name()
            );
        }
        assert_eq!(
            schema.field(0).data_type(),
            &DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
        );
        let t = b
            .column(0)
            .as_any()
            .downcast_ref::<arrow::array::TimestampMicrosecondArray>()
            .expect("ts");
        assert!(
            t.values().windows(2).all(|w| w[0] <= w[1]),
            "rows sorted by event_time"
        );
    }
    // The month partition matches each row's UTC month.
    for r in rows(&lake) {
        assert!(r["source_object"].contains("/CloudTrail/"));
    }
}

#[test]
fn lake_schema_command_lists_every_column() {
    let out = cetrail(&["lake", "schema"], Path::new("."));
    assert!(out.status.success());
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
    assert_eq!(lines.len(), cetrail::lake::schema::COLUMNS.len());
    for c in [
        "event_time",
        "session_key",
        "resources",
        "source_object",
        "is_denied",
    ] {
        assert!(lines.iter().any(|l| l.starts_with(c)), "{c}");
    }
}

#[test]
fn config_print_default_is_the_builtin_default() {
    let out = cetrail(&["config", "--print-default"], Path::new("."));
    assert!(out.status.success());
    let text = stdout(&out);
    assert!(text.contains("external_id = \"continuous.engineer\""));
    let parsed = cetrail::config::Config::from_toml(&text, Path::new("stdout")).expect("parses");
    assert_eq!(parsed, cetrail::config::Config::default());
    assert_eq!(
        parsed
            .roles
            .iter()
            .find(|r| r.name == "CE-Admin")
            .map(|r| r.mfa_max_age_hours),
        Some(1)
    );
}

#[test]
fn rerun_ingests_nothing_and_new_files_only() {
    let dir = tempdir();
    let src = dir.path().join("archive");
    let lake = dir.path().join("lake");
    generate(&src, SMALL);
    let (_, first) = ingest(&src, &lake, &[]);
    let files_before = lake_files(&lake);
    let (code, again) = ingest(&src, &lake, &[]);
    assert_eq!(code, 0);
    assert_eq!(n(&again, "already_in_ledger"), n(&first, "objects_seen"));
    assert_eq!(n(&again, "ingested"), 0);
    assert_eq!(n(&again, "kept_total"), 0);
    assert_eq!(lake_files(&lake), files_before);

    // New days arrive: only they are read.
    let more = dir.path().join("more");
    generate(
        &more,
        &[
            "--days",
            "3",
            "--events-per-day",
            "40",
            "--seed",
            "99",
            "--start",
            "2026-11-02",
            "--no-digests",
        ],
    );
    let new_logs = count_files(&more, "/CloudTrail/");
    let new_other = count_files(&more, "/CloudTrail-Insight/");
    copy_tree(&more, &src);
    let (code, third) = ingest(&src, &lake, &[]);
    assert_eq!(code, 0);
    assert_eq!(n(&third, "ingested"), new_logs);
    assert_eq!(n(&third, "skipped_not_a_log"), new_other);
    assert_eq!(n(&third, "already_in_ledger"), n(&first, "objects_seen"));
    let total = rows(&lake).len() as u64;
    assert_eq!(total, n(&first, "kept_total") + n(&third, "kept_total"));
}

fn record(id: &str, t: &str) -> serde_json::Value {
    json!({
        "eventVersion": "1.08", "eventTime": t, "eventID": id, "eventName": "DescribeInstances",
        "eventSource": "ec2.amazonaws.com", "awsRegion": "eu-west-1", "recipientAccountId": "111122223333",
        "readOnly": true, "requestParameters": null, "responseElements": null,
        "userIdentity": {"type": "AssumedRole", "accessKeyId": "ASIAAAAAAAAAAAAAAAAA", "accountId": "111122223333",
            "arn": "arn:aws:sts::111122223333:assumed-role/CE-SRE/alice",
            "sessionContext": {"sessionIssuer": {"type": "Role", "userName": "CE-SRE"},
                "attributes": {"creationDate": "2026-10-01T09:00:00Z", "mfaAuthenticated": "false"}}}
    })
}

fn log_key(day: &str, n: u32) -> String {
    format!(
        "AWSLogs/111122223333/CloudTrail/eu-west-1/2026/10/{day}/111122223333_CloudTrail_eu-west-1_202610{day}T1000Z_f{n}.json.gz"
    )
}

#[test]
fn duplicate_event_ids_are_removed_and_counted() {
    let dir = tempdir();
    let src = dir.path().join("src");
    let lake = dir.path().join("lake");
    let a = record(
        "aaaaaaaa-0000-4000-8000-000000000001",
        "2026-10-01T10:00:00Z",
    );
    let b = record(
        "aaaaaaaa-0000-4000-8000-000000000002",
        "2026-10-01T10:01:00Z",
    );
    let c = record(
        "aaaaaaaa-0000-4000-8000-000000000003",
        "2026-10-01T10:02:00Z",
    );
    write(
        &src.join(log_key("01", 1)),
        &gzip(json!({"Records": [a, b]}).to_string().as_bytes()),
    );
    write(
        &src.join(log_key("01", 2)),
        &gzip(json!({"Records": [b, c]}).to_string().as_bytes()),
    );
    write(
        &src.join(log_key("02", 3)),
        &gzip(json!({"Records": [a, a, c]}).to_string().as_bytes()),
    );
    let (code, s) = ingest(&src, &lake, &[]);
    assert_eq!(code, 0, "{s}");
    assert_eq!(n(&s, "records_read"), 7);
    assert_eq!(n(&s, "duplicates_dropped"), 4);
    assert_eq!(n(&s, "kept_total"), 3);
    let r = rows(&lake);
    assert_eq!(r.len(), 3);
    // The copy kept is the one from the first object in key order.
    let first = r
        .iter()
        .find(|x| x["event_id"].ends_with("0001"))
        .expect("a");
    assert!(first["source_object"].ends_with("_f1.json.gz"));
}

#[test]
fn pruning_by_account_and_dates_reads_only_matching_keys() {
    let dir = tempdir();
    let src = dir.path().join("archive");
    generate(&src, SMALL);
    let accounts = generated_accounts("7");
    let acct0 = accounts[0].clone();
    let acct1 = accounts[1].clone();

    let lake = dir.path().join("lake-acct");
    let (code, s) = ingest(&src, &lake, &["--accounts", &acct0]);
    assert_eq!(code, 0);
    assert!(n(&s, "pruned") > 0);
    let r = rows(&lake);
    assert!(!r.is_empty());
    assert!(r.iter().all(|x| x["account"] == acct0));
    assert!(r.iter().all(|x| !x["source_object"].contains(&acct1)));

    let lake = dir.path().join("lake-dates");
    let (code, s) = ingest(&src, &lake, &["--from", "2026-09-10", "--to", "2026-09-12"]);
    assert_eq!(code, 0);
    assert!(n(&s, "pruned") > n(&s, "ingested"));
    let r = rows(&lake);
    assert!(!r.is_empty());
    for x in &r {
        // Files delivered 09-10 ..= 09-12 (one day of slack): events from late 09-09 on.
        let t = &x["event_time"];
        assert!(
            t.as_str() >= "2026-09-09T22" && t.as_str() < "2026-09-13",
            "{t}"
        );
        let folder = x["source_object"]
            .split('/')
            .rev()
            .nth(1)
            .expect("day")
            .to_string();
        assert!(["10", "11", "12"].contains(&folder.as_str()), "{folder}");
    }
    // A later run without the filter reads the rest and only the rest.
    let (_, all) = ingest(&src, &lake, &[]);
    assert_eq!(
        n(&all, "already_in_ledger"),
        n(&s, "ingested") + n(&s, "skipped_not_a_log")
    );
}

#[test]
fn lake_is_readable_by_polars_and_duckdb_with_the_same_row_count() {
    let dir = tempdir();
    let src = dir.path().join("archive");
    let lake = dir.path().join("lake");
    generate(&src, SMALL);
    let (_, s) = ingest(&src, &lake, &[]);
    let ours = rows(&lake).len() as u64;
    assert_eq!(ours, n(&s, "kept_total"));
    let polars = cetrail::query::count_rows(&lake).expect("polars reads the lake");
    assert_eq!(polars, ours);
    let Some(py) = python_with_duckdb() else {
        eprintln!("SKIPPED duckdb half: no Python with duckdb (run .ci/run)");
        return;
    };
    let script = format!(
        "import duckdb\nr = duckdb.connect().execute(\"SELECT count(*), count(DISTINCT event_id), min(month), typeof(any_value(event_time)) FROM read_parquet('{}/events/*/*.parquet', hive_partitioning=true)\").fetchone()\nprint(r[0], r[1], r[2], r[3])",
        lake.display()
    );
    let out = Command::new(py)
        .args(["-c", &script])
        .output()
        .expect("python");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let parts: Vec<&str> = text.split_whitespace().collect();
    assert_eq!(parts[0].parse::<u64>().ok(), Some(ours), "{text}");
    assert_eq!(parts[1].parse::<u64>().ok(), Some(ours), "{text}");
    assert!(parts[2].starts_with("2026-"), "{text}");
    assert!(text.contains("TIMESTAMP WITH TIME ZONE"), "{text}");
}

#[test]
fn stratus_records_as_log_files_ingest_with_no_rejection() {
    let dir = tempdir();
    let src = dir.path().join("src");
    let lake = dir.path().join("lake");
    for (name, recs) in stratus() {
        let body = json!({ "Records": recs }).to_string();
        write(&src.join(format!("{name}.json.gz")), &gzip(body.as_bytes()));
    }
    let (code, s) = ingest(&src, &lake, &["--all-events"]);
    assert_eq!(code, 0, "{s}");
    assert_eq!(n(&s, "records_read"), 310);
    assert_eq!(n(&s, "rejected"), 0);
    assert_eq!(n(&s, "bad_records"), 0);
    assert_eq!(n(&s, "kept_total"), 310);
    assert_eq!(s["kept"]["infra"].as_u64(), Some(3));
    assert_eq!(rows(&lake).len(), 310);
}

/// `bench-gunzip --stage …` (the benchmark's breakdown of the CE path, step by step)
/// does the work ingest does: the same bytes decompressed, and at the last stage the
/// same records counted and rows kept.
#[test]
fn bench_gunzip_stages_do_ingest_work() {
    let dir = tempdir();
    let src = dir.path().join("archive");
    generate(&src, SMALL);
    let (code, s) = ingest(&src, &dir.path().join("lake"), &[]);
    assert_eq!(code, 0, "{s}");
    let stage = |name: &str| -> serde_json::Value {
        let arch = src.to_string_lossy();
        let o = cetrail(
            &["bench-gunzip", &arch, "--threads", "2", "--stage", name],
            dir.path(),
        );
        assert!(o.status.success(), "{}", stderr(&o));
        serde_json::from_str(&stdout(&o)).expect("bench-gunzip prints JSON")
    };
    let gunzip = stage("gunzip");
    assert_eq!(n(&gunzip, "files"), n(&s, "ingested"));
    assert_eq!(n(&gunzip, "failed"), 0);
    assert_eq!(
        n(&gunzip, "bytes_decompressed"),
        n(&s, "bytes_decompressed")
    );
    assert_eq!(n(&gunzip, "checksum"), 0);
    // Files with a CE name: at least one, at most one per file.
    let prefilter = n(&stage("prefilter"), "checksum");
    assert!(
        prefilter > 0 && prefilter <= n(&s, "ingested"),
        "{prefilter}"
    );
    // Every record counted by its eventID, plus those files.
    assert_eq!(
        n(&stage("count"), "checksum"),
        n(&s, "records_read") + prefilter
    );
    // Records counted plus rows kept (before ingest's dedup across files).
    assert_eq!(
        n(&stage("parse"), "checksum"),
        n(&s, "records_read") + n(&s, "kept_total") + n(&s, "duplicates_dropped")
    );
}

/// The listing leaves files unstat'ed (their size and mtime come from the open file):
/// a rerun still stats the keys the ledger knows, so a rewritten file is read again
/// and an unchanged one is not; and the ledger records each file's true size.
#[test]
fn rerun_reads_a_rewritten_file_again() {
    let dir = tempdir();
    let src = dir.path().join("archive");
    let lake = dir.path().join("lake");
    generate(&src, SMALL);
    let (code, first) = ingest(&src, &lake, &[]);
    assert_eq!(code, 0, "{first}");
    let logs = log_files(&src);
    let compressed: u64 = logs
        .iter()
        .map(|p| std::fs::metadata(p).expect("stat").len())
        .sum();
    assert_eq!(n(&first, "bytes_read"), compressed);
    // One file rewritten with the same bytes and a later mtime: a new version.
    let target = &logs[logs.len() / 2];
    let file = std::fs::File::options()
        .write(true)
        .open(target)
        .expect("open");
    let later = std::fs::metadata(target)
        .and_then(|m| m.modified())
        .expect("mtime")
        + std::time::Duration::from_secs(60);
    file.set_modified(later).expect("set mtime");
    drop(file);
    let (code, again) = ingest(&src, &lake, &[]);
    assert_eq!(code, 0, "{again}");
    assert_eq!(n(&again, "ingested"), 1);
    assert_eq!(
        n(&again, "already_in_ledger"),
        n(&first, "objects_seen") - 1
    );
    assert_eq!(
        n(&again, "bytes_read"),
        std::fs::metadata(target).expect("stat").len()
    );
    // Its events were already in the lake: none is added twice.
    assert_eq!(
        rows(&lake).len() as u64,
        n(&first, "kept_total") + n(&again, "kept_total")
    );
}

/// A file larger (compressed) than `--max-decompressed` cannot decompress under it: it
/// is rejected unread, with the limit in the reason, and the others are ingested.
#[test]
fn an_object_larger_than_the_limit_is_rejected_unread() {
    let dir = tempdir();
    let src = dir.path().join("archive");
    let lake = dir.path().join("lake");
    generate(&src, SMALL);
    let mut sizes: Vec<u64> = log_files(&src)
        .into_iter()
        .map(|p| std::fs::metadata(p).expect("stat").len())
        .collect();
    sizes.sort_unstable();
    // A limit under the largest compressed file, above every file's decompressed size
    // but those few: the rejected are exactly the files above it when compressed.
    let limit = sizes[sizes.len() - 3];
    let over = sizes.iter().filter(|&&s| s > limit).count() as u64;
    assert!(over >= 1);
    let limit_arg = limit.to_string();
    let (code, s) = ingest(&src, &lake, &["--max-decompressed", &limit_arg]);
    assert_eq!(code, 3, "{s}");
    assert!(n(&s, "rejected") >= over, "{s}");
    let reasons = s["rejections"].as_array().expect("rejections");
    assert!(
        reasons
            .iter()
            .all(|r| r["reason"].as_str().is_some_and(|t| t.contains(&limit_arg))),
        "{s}"
    );
    assert_eq!(
        n(&s, "ingested") + n(&s, "rejected") + n(&s, "skipped_not_a_log"),
        n(&s, "objects_seen")
    );
}

/// An Insights record (no API call, no `eventName`) among a trail's records is skipped
/// by rule and counted, with `--all-events` too: never a bad record.
#[test]
fn insights_records_are_skipped_by_rule_even_with_all_events() {
    let dir = tempdir();
    let src = dir.path().join("trail");
    let call = json!({
        "eventVersion": "1.08", "eventTime": "2026-10-01T10:00:00Z", "eventID": "call-1",
        "eventName": "DescribeInstances", "eventSource": "ec2.amazonaws.com",
        "awsRegion": "eu-west-1", "recipientAccountId": "111122223333", "readOnly": true,
        "userIdentity": {"type": "IAMUser", "arn": "arn:aws:iam::111122223333:user/ops"},
        "eventType": "AwsApiCall", "managementEvent": true, "eventCategory": "Management"
    });
    let insight = json!({
        "eventVersion": "1.08", "eventTime": "2026-10-01T10:05:00Z", "eventID": "insight-1",
        "awsRegion": "eu-west-1", "recipientAccountId": "111122223333",
        "eventType": "AwsCloudTrailInsight", "sharedEventID": "4ba1bb56-e2a2-4e18-9e3c-8f5f0c3f1c7e",
        "insightDetails": {"state": "Start", "eventSource": "ec2.amazonaws.com",
            "eventName": "RunInstances", "insightType": "ApiCallRateInsight",
            "insightContext": {"statistics": {"baseline": {"average": 0.1}, "insight": {"average": 5.0}}}},
        "eventCategory": "Insight"
    });
    let key = "AWSLogs/111122223333/CloudTrail/eu-west-1/2026/10/01/111122223333_CloudTrail_eu-west-1_20261001T1010Z_ins.json.gz";
    write(
        &src.join(key),
        &gzip(json!({"Records": [call, insight]}).to_string().as_bytes()),
    );
    for extra in [&[][..], &["--all-events"][..]] {
        let lake = dir.path().join(format!("lake{}", extra.len()));
        let (code, s) = ingest(&src, &lake, extra);
        assert_eq!(code, 0, "{extra:?}: {s}");
        assert_eq!(n(&s, "bad_records"), 0, "{extra:?}: {s}");
        assert_eq!(
            n(&s, "skipped_records"),
            extra.len() as u64,
            "{extra:?}: {s}"
        );
        assert_eq!(n(&s, "records_read"), 2, "{extra:?}: {s}");
    }
    let ids: BTreeSet<String> = distinct_events(&dir.path().join("lake1"))
        .into_keys()
        .collect();
    assert_eq!(ids, BTreeSet::from(["call-1".to_string()]));
}
