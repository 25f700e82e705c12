//! Scale-out (issue 8): sharded ingest into one lake, compaction.

use std::path::{Path, PathBuf};
use std::process::Command;

use cetrail::source::{KeyClass, Shard, classify_key};

use crate::util::*;

fn shard_of(key: &str, n: u32) -> u32 {
    let class = classify_key(key);
    (1..=n)
        .find(|&k| Shard { k, n }.owns(key, &class))
        .expect("every key has an owner")
}

/// A generated archive plus a copy of one log file placed in another day's folder
/// owned by another shard of 3: a duplicate that no single shard can see.
fn archive_with_cross_shard_copy(dir: &Path) -> PathBuf {
    let src = dir.join("archive");
    generate(
        &src,
        &[
            "--days",
            "6",
            "--events-per-day",
            "150",
            "--no-digests",
            "--seed",
            "21",
        ],
    );
    let logs: Vec<PathBuf> = walk(&src)
        .into_iter()
        .filter(|p| p.to_string_lossy().ends_with(".json.gz"))
        .collect();
    let rel = |p: &Path| {
        p.strip_prefix(&src)
            .expect("prefix")
            .to_string_lossy()
            .into_owned()
    };
    // A file with CE events (largest of the first day) and a folder of another shard.
    let original = logs
        .iter()
        .take(40)
        .max_by_key(|p| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0))
        .expect("log files");
    let key = rel(original);
    let KeyClass::Log(_) = classify_key(&key) else {
        panic!("{key} is not a log key")
    };
    let target = logs
        .iter()
        .map(|p| rel(p))
        .find(|k| shard_of(k, 3) != shard_of(&key, 3))
        .expect("a folder of another shard");
    let folder = Path::new(&target).parent().expect("folder");
    let name = Path::new(&key)
        .file_name()
        .expect("name")
        .to_string_lossy()
        .replace(".json.gz", "_copy.json.gz");
    let copy = src.join(folder).join(name);
    std::fs::copy(original, &copy).expect("copy");
    src
}

fn compact(lake: &Path, extra: &[&str]) -> serde_json::Value {
    let mut args = vec![
        "lake",
        "compact",
        "--lake",
        lake.to_str().expect("utf-8"),
        "--json",
    ];
    args.extend_from_slice(extra);
    let out = cetrail(&args, Path::new("."));
    assert!(out.status.success(), "compact failed: {}", stderr(&out));
    serde_json::from_slice(&out.stdout).expect("compact JSON")
}

fn dashboard_json(lake: &Path) -> String {
    let out = cetrail(
        &[
            "dashboard",
            "--lake",
            lake.to_str().expect("utf-8"),
            "--format",
            "json",
        ],
        Path::new("."),
    );
    assert!(out.status.success(), "dashboard failed: {}", stderr(&out));
    stdout(&out)
}

/// Files of each month are sorted by (event_time, event_id).
fn assert_sorted_files(lake: &Path) {
    for f in lake_files(lake) {
        let file = std::fs::File::open(&f).expect("open");
        let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
            .expect("reader")
            .build()
            .expect("build");
        let mut prev: Option<(i64, String)> = None;
        for b in reader {
            let b = b.expect("batch");
            let t = b
                .column_by_name("event_time")
                .expect("event_time")
                .as_any()
                .downcast_ref::<arrow::array::TimestampMicrosecondArray>()
                .expect("timestamp")
                .clone();
            let id = b
                .column_by_name("event_id")
                .expect("event_id")
                .as_any()
                .downcast_ref::<arrow::array::StringArray>()
                .expect("string")
                .clone();
            for i in 0..b.num_rows() {
                let k = (t.value(i), id.value(i).to_string());
                if let Some(p) = &prev {
                    assert!(*p <= k, "{} not sorted at {k:?}", f.display());
                }
                prev = Some(k);
            }
        }
    }
}

#[test]
fn sharded_ingest_equals_one_machine_also_after_compact() {
    let dir = tempdir();
    let src = archive_with_cross_shard_copy(dir.path());
    let single = dir.path().join("single");
    let (code, one) = ingest(&src, &single, &[]);
    assert_eq!(code, 0, "{one}");
    assert!(
        n(&one, "duplicates_dropped") > 0,
        "the copy is deduplicated in one run"
    );

    let sharded = dir.path().join("sharded");
    let mut ingested = 0;
    let mut kept = 0;
    let mut files = 0;
    for k in 1..=3 {
        let shard = format!("{k}/3");
        let (code, s) = ingest(&src, &sharded, &["--shard", &shard]);
        assert_eq!(code, 0, "{s}");
        assert_eq!(
            n(&s, "ingested") + n(&s, "skipped_not_a_log") + n(&s, "other_shards"),
            n(&one, "objects_seen"),
            "shard {shard}: every object is this shard's or another's"
        );
        assert_eq!(n(&s, "already_in_ledger"), 0, "shards are disjoint");
        assert!(n(&s, "ingested") > 0, "shard {shard} took a part");
        ingested += n(&s, "ingested");
        kept += n(&s, "kept_total");
        let now = lake_files(&sharded).len();
        assert!(
            now > files,
            "shard {shard} added files without replacing any"
        );
        files = now;
    }
    assert_eq!(ingested, n(&one, "ingested"), "no overlap and no gap");
    // The copy sits in two shards: one more row than the single lake, the same events.
    assert_eq!(kept, n(&one, "kept_total") + n(&one, "duplicates_dropped"));
    assert_eq!(rows(&sharded).len() as u64, kept);
    let names: std::collections::BTreeSet<PathBuf> = lake_files(&sharded)
        .iter()
        .map(|p| PathBuf::from(p.file_name().expect("name")))
        .collect();
    assert_eq!(names.len(), lake_files(&sharded).len(), "no name collides");
    assert_eq!(distinct_events(&sharded), distinct_events(&single));
    assert_eq!(dashboard_json(&sharded), dashboard_json(&single));

    // Compaction removes the cross-shard copy: then every row and column is equal.
    let done = compact(&sharded, &[]);
    let removed: u64 = done
        .as_array()
        .expect("array")
        .iter()
        .map(|m| m["duplicates_removed"].as_u64().unwrap_or(0))
        .sum();
    assert_eq!(removed, n(&one, "duplicates_dropped"));
    assert_eq!(sorted_rows(&sharded), sorted_rows(&single));
    assert_sorted_files(&sharded);
    let months: std::collections::BTreeSet<PathBuf> = lake_files(&sharded)
        .iter()
        .map(|p| p.parent().expect("month").to_path_buf())
        .collect();
    assert_eq!(
        months.len(),
        lake_files(&sharded).len(),
        "one file per month"
    );
    assert_eq!(dashboard_json(&sharded), dashboard_json(&single));
    // A rerun of every shard finds nothing new.
    for k in 1..=3 {
        let (_, s) = ingest(&src, &sharded, &["--shard", &format!("{k}/3")]);
        assert_eq!(n(&s, "ingested"), 0);
    }
    assert_eq!(sorted_rows(&sharded), sorted_rows(&single));
}

#[test]
fn compaction_with_small_files_rounds_and_a_crash_keeps_every_event() {
    let dir = tempdir();
    let src = dir.path().join("archive");
    generate(
        &src,
        &[
            "--days",
            "3",
            "--events-per-day",
            "200",
            "--no-digests",
            "--seed",
            "5",
        ],
    );
    let lake = dir.path().join("lake");
    // Many tiny commits: more files per month than one merge round takes.
    let (code, _) = ingest(&src, &lake, &["--commit-every", "2"]);
    assert_eq!(code, 0);
    let before = sorted_rows(&lake);
    let files_before = lake_files(&lake).len();
    assert!(
        files_before > cetrail::lake::compact::FAN_IN,
        "{files_before} files"
    );

    // Killed after the commit point: the next writer finishes the publish.
    for point in ["before-commit", "after-commit"] {
        let lake2 = dir.path().join(format!("lake-{point}"));
        copy_tree(&lake, &lake2);
        let out = Command::new(BIN)
            .args(["lake", "compact", "--lake", lake2.to_str().expect("utf-8")])
            .env("CETRAIL_CRASH_AT", point)
            .output()
            .expect("run");
        assert!(!out.status.success(), "{point}: the crash hook fired");
        // Readers between the crash and recovery see every event exactly as before.
        assert_eq!(distinct_events(&lake2), distinct_events(&lake));
        compact(&lake2, &[]);
        assert_eq!(sorted_rows(&lake2), before, "{point}");
        assert!(
            walk(&lake2.join("_cetrail/staging")).is_empty(),
            "{point}: nothing left staged"
        );
    }

    let done = compact(&lake, &["--target-mb", "1"]);
    assert!(!done.as_array().expect("array").is_empty());
    assert_eq!(sorted_rows(&lake), before);
    assert!(lake_files(&lake).len() < files_before);
    assert_sorted_files(&lake);
    // Compacting again has nothing to do.
    let again = compact(&lake, &[]);
    assert_eq!(again.as_array().map(Vec::len), Some(0));
}

#[test]
fn sql_and_athena_ddl_print_each_engines_script() {
    let dir = tempdir();
    let src = dir.path().join("archive");
    generate(
        &src,
        &[
            "--days",
            "2",
            "--events-per-day",
            "60",
            "--no-digests",
            "--seed",
            "8",
        ],
    );
    let lake = dir.path().join("lake");
    assert_eq!(ingest(&src, &lake, &[]).0, 0);
    let lake_s = lake.to_str().expect("utf-8");
    let out = cetrail(
        &[
            "sql",
            "top-actions",
            "data-s3",
            "--engine",
            "spark",
            "--lake",
            lake_s,
        ],
        Path::new("."),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains(&format!(
            "OPTIONS (path '{lake_s}/events', mergeSchema 'true')"
        )),
        "{text}"
    );
    assert!(text.contains("-- widget: top-actions") && text.contains("-- widget: data-s3"));
    assert!(
        !text.contains("-- widget: accounts"),
        "only the widgets asked for"
    );
    assert!(
        text.contains("collect_set(engineer)"),
        "Spark dialect: {text}"
    );
    assert!(!text.contains("{{"), "every placeholder filled: {text}");
    // The range defaults to the lake's days, as for the dashboard.
    assert!(text.contains("TIMESTAMP '2026-09-07 00:00:00'"), "{text}");

    let out = cetrail(
        &[
            "athena-ddl",
            "--lake",
            "s3://analytics/cetrail/",
            "--widgets",
        ],
        Path::new("."),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("CREATE EXTERNAL TABLE IF NOT EXISTS cetrail_events"));
    assert!(text.contains("LOCATION 's3://analytics/cetrail/events/'"));
    assert!(text.contains("CREATE OR REPLACE VIEW events AS"));
    assert!(
        text.contains("approx_percentile("),
        "anomalies in Athena's dialect"
    );
    assert_eq!(text.matches("-- widget: ").count(), 17);
    assert!(!text.contains("{{"));
    let bad = cetrail(&["athena-ddl", "--lake", "/tmp/x"], Path::new("."));
    assert!(!bad.status.success());
    assert!(stderr(&bad).contains("s3://"), "{}", stderr(&bad));
}
