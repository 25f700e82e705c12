//! Test harness: temporary folders, the real `cetrail` binary, lake readers.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use arrow::array::RecordBatch;
use arrow::util::display::{ArrayFormatter, FormatOptions};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use serde_json::{Value, json};

pub const BIN: &str = env!("CARGO_BIN_EXE_cetrail");

pub fn tempdir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("cetrail-test-")
        .tempdir()
        .expect("temporary folder")
}

/// Runs the binary with the configuration environment cleared.
pub fn cetrail(args: &[&str], cwd: &Path) -> Output {
    Command::new(BIN)
        .args(args)
        .current_dir(cwd)
        .env_remove("CETRAIL_CRASH_AT")
        .output()
        .expect("run cetrail")
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// `cetrail ingest SRC --lake LAKE --json [extra]`, returning (exit code, summary).
pub fn ingest(src: &Path, lake: &Path, extra: &[&str]) -> (i32, serde_json::Value) {
    let mut args = vec![
        "ingest",
        src.to_str().expect("utf-8 path"),
        "--lake",
        lake.to_str().expect("utf-8 path"),
        "--json",
    ];
    args.extend_from_slice(extra);
    let out = cetrail(&args, src);
    let code = out.status.code().unwrap_or(-1);
    let summary = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "summary is not JSON ({e}); stdout: {} stderr: {}",
            stdout(&out),
            stderr(&out)
        )
    });
    (code, summary)
}

pub fn n(v: &serde_json::Value, field: &str) -> u64 {
    v[field]
        .as_u64()
        .unwrap_or_else(|| panic!("summary field {field} missing in {v}"))
}

/// Every Parquet file under `events/`.
pub fn lake_files(lake: &Path) -> Vec<PathBuf> {
    cetrail::lake::data_files(lake).expect("lake files")
}

pub fn read_batches(lake: &Path) -> Vec<RecordBatch> {
    let mut out = Vec::new();
    for f in lake_files(lake) {
        let file = std::fs::File::open(&f).expect("open parquet");
        let reader = ParquetRecordBatchReaderBuilder::try_new(file)
            .expect("parquet reader")
            .build()
            .expect("build reader");
        for b in reader {
            out.push(b.expect("batch"));
        }
    }
    out
}

/// All rows as maps column → displayed value ("" for null).
pub fn rows(lake: &Path) -> Vec<BTreeMap<String, String>> {
    let mut out = Vec::new();
    let opts = FormatOptions::default().with_null("∅");
    for b in read_batches(lake) {
        let schema = b.schema();
        let fmts: Vec<ArrayFormatter> = b
            .columns()
            .iter()
            .map(|c| ArrayFormatter::try_new(c.as_ref(), &opts).expect("formatter"))
            .collect();
        for i in 0..b.num_rows() {
            let mut row = BTreeMap::new();
            for (j, f) in fmts.iter().enumerate() {
                row.insert(schema.field(j).name().clone(), f.value(i).to_string());
            }
            out.push(row);
        }
    }
    out
}

/// Which copy of an event the query view keeps: a trail's first (a null kind is a
/// trail's), then the smallest source object.
fn copy_rank(r: &BTreeMap<String, String>) -> (bool, &str) {
    let kind = r.get("source_kind").map_or("trail", String::as_str);
    (
        !(kind == "trail" || kind == "∅"),
        r["source_object"].as_str(),
    )
}

/// Distinct events: rows keyed by event_id, keeping the copy the query view keeps (a
/// trail's, then the one from the smallest source object).
pub fn distinct_events(lake: &Path) -> BTreeMap<String, BTreeMap<String, String>> {
    let mut out: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for r in rows(lake) {
        let id = r["event_id"].clone();
        match out.get(&id) {
            Some(prev) if copy_rank(prev) <= copy_rank(&r) => {}
            _ => {
                out.insert(id, r);
            }
        }
    }
    out
}

/// Rows sorted by (event_id, source_object): the lake as a multiset of rows.
pub fn sorted_rows(lake: &Path) -> Vec<BTreeMap<String, String>> {
    let mut r = rows(lake);
    r.sort_by(|a, b| {
        (&a["event_id"], &a["source_object"]).cmp(&(&b["event_id"], &b["source_object"]))
    });
    r
}

pub fn gzip(data: &[u8]) -> Vec<u8> {
    cetrail::record::gunzip::gzip(data, 6)
}

/// Writes a file, creating its folder.
pub fn write(path: &Path, bytes: &[u8]) {
    if let Some(p) = path.parent() {
        std::fs::create_dir_all(p).expect("mkdir");
    }
    std::fs::write(path, bytes).expect("write");
}

/// Copies a folder tree.
pub fn copy_tree(from: &Path, to: &Path) {
    for e in walk(from) {
        let rel = e.strip_prefix(from).expect("prefix");
        let dst = to.join(rel);
        write(&dst, &std::fs::read(&e).expect("read"));
    }
}

pub fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("read_dir") {
            let p = e.expect("entry").path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// Generates a small archive with the binary.
pub fn generate(out: &Path, extra: &[&str]) {
    let mut args = vec!["generate", "--out", out.to_str().expect("utf-8"), "--json"];
    args.extend_from_slice(extra);
    let o = cetrail(&args, Path::new("."));
    assert!(o.status.success(), "generate failed: {}", stderr(&o));
}

pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("fixtures")
}

/// The stratus-red-team records, by file stem.
pub fn stratus() -> Vec<(String, Vec<serde_json::Value>)> {
    let dir = fixtures().join("stratus-red-team");
    let mut out = Vec::new();
    for p in walk(&dir) {
        if p.extension().is_some_and(|e| e == "json") {
            let v: serde_json::Value =
                serde_json::from_slice(&std::fs::read(&p).expect("read")).expect("fixture json");
            let recs = v.as_array().cloned().expect("array of records");
            out.push((
                p.file_stem().expect("stem").to_string_lossy().into_owned(),
                recs,
            ));
        }
    }
    out
}

/// The Python interpreter with duckdb (CETRAIL_PYTHON, set by .ci/run), else python3
/// when it has duckdb. Under CI its absence is a failure, not a skip.
pub fn python_with_duckdb() -> Option<String> {
    python_with("duckdb")
}

/// The Python interpreter (CETRAIL_PYTHON, else python3) that can import `module`;
/// under CI its absence is a failure, not a skip.
pub fn python_with(module: &str) -> Option<String> {
    let candidates = [
        std::env::var("CETRAIL_PYTHON").ok(),
        Some("python3".to_string()),
    ];
    for c in candidates.into_iter().flatten() {
        let ok = Command::new(&c)
            .args(["-c", &format!("import {module}")])
            .output()
            .is_ok_and(|o| o.status.success());
        if ok {
            return Some(c);
        }
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "CI must provide Python with {module} (CETRAIL_PYTHON)"
    );
    None
}

/// The account ids `cetrail generate --seed SEED` uses (they depend on the seed only).
pub fn generated_accounts(seed: &str) -> Vec<String> {
    let dir = tempdir();
    let out = cetrail(
        &[
            "generate",
            "--out",
            dir.path().join("x").to_str().expect("p"),
            "--json",
            "--days",
            "1",
            "--seed",
            seed,
        ],
        Path::new("."),
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("generate --json");
    v["accounts"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// The first stratus-red-team record named `name` that satisfies `pred`.
pub fn find(name: &str, pred: impl Fn(&Value) -> bool) -> Value {
    stratus()
        .into_iter()
        .flat_map(|(_, r)| r)
        .find(|r| r["eventName"] == name && pred(r))
        .unwrap_or_else(|| panic!("fixture record {name} not found"))
}

/// Rewrites a record's identity into a CE session of `role` for `engineer`.
pub fn as_ce_session(mut v: Value, role: &str, engineer: &str, key: &str, created: &str) -> Value {
    let acct = v["recipientAccountId"]
        .as_str()
        .unwrap_or("111122223333")
        .to_string();
    v["userIdentity"] = json!({
        "type": "AssumedRole",
        "principalId": format!("AROAEXAMPLE:{engineer}"),
        "arn": format!("arn:aws:sts::{acct}:assumed-role/{role}/{engineer}"),
        "accountId": acct,
        "accessKeyId": key,
        "sessionContext": {
            "sessionIssuer": {"type": "Role", "principalId": "AROAEXAMPLE", "arn": format!("arn:aws:iam::{acct}:role/ce/{role}"), "accountId": acct, "userName": role},
            "attributes": {"creationDate": created, "mfaAuthenticated": "false"}
        }
    });
    v
}

/// `generate` arguments for one day of one account and region in 1-minute files
/// (~1,000 log files): add a seed and what else a test needs.
pub const MINUTE_FILES: &[&str] = &[
    "--days",
    "1",
    "--accounts",
    "1",
    "--regions",
    "1",
    "--events-per-day",
    "3000",
    "--file-minutes",
    "1",
];

/// Python with Playwright and a Chromium (CETRAIL_PYTHON / CETRAIL_CHROMIUM, set by
/// `.ci/run`); under CI their absence is a failure.
pub fn browser() -> Option<(String, String)> {
    let exe = std::env::var("CETRAIL_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    let found = Path::new(&exe).exists();
    assert!(
        found || std::env::var_os("CI").is_none(),
        "CI must provide Chromium (CETRAIL_CHROMIUM)"
    );
    Some((python_with("playwright")?, exe)).filter(|_| found)
}

/// Runs the browser script `tests/<script>` with `args` under `py` and Chromium `exe`,
/// and returns the JSON object it prints, after checking the page logged no console
/// error, threw nothing and opened no dialog.
pub fn browse(py: &str, exe: &str, script: &str, args: &[&std::ffi::OsStr]) -> Value {
    let o = Command::new(py)
        .arg(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests")
                .join(script),
        )
        .args(args)
        .env("CETRAIL_CHROMIUM", exe)
        .output()
        .expect("python");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: Value = serde_json::from_slice(&o.stdout).expect("json");
    let errors: Vec<&Value> = v["console"]
        .as_array()
        .expect("console")
        .iter()
        .filter(|m| m["type"] == "error")
        .collect();
    assert!(errors.is_empty(), "console errors: {errors:?}");
    assert_eq!(v["errors"], json!([]), "page errors");
    assert_eq!(v["dialogs"], json!([]), "dialogs");
    v
}
