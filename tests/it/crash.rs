//! Crash safety (SPEC §4): killing `ingest` at any instant and running it again gives
//! exactly the events of one clean run, with no visible partial file.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::util::*;

const ARCHIVE: &[&str] = &[
    "--days",
    "12",
    "--events-per-day",
    "80",
    "--ce-share",
    "0.3",
    "--seed",
    "11",
];

fn clean_run(
    src: &Path,
    lake: &Path,
) -> std::collections::BTreeMap<String, std::collections::BTreeMap<String, String>> {
    let (code, _) = ingest(src, lake, &["--commit-every", "5"]);
    assert_eq!(code, 0);
    distinct_events(lake)
}

fn no_partial_files(lake: &Path) {
    // A run killed before it created the lake leaves nothing to check.
    if !lake.join("events").is_dir() {
        return;
    }
    for f in lake_files(lake) {
        let file = std::fs::File::open(&f).expect("open");
        assert!(
            parquet::file::reader::SerializedFileReader::new(file).is_ok(),
            "unreadable visible file {}",
            f.display()
        );
    }
}

fn ingest_cmd(src: &Path, lake: &Path) -> Command {
    let mut c = Command::new(BIN);
    c.args([
        "ingest",
        src.to_str().expect("p"),
        "--lake",
        lake.to_str().expect("p"),
        "--quiet",
        "--commit-every",
        "5",
        "--threads",
        "2",
    ])
    .stdout(Stdio::null())
    .stderr(Stdio::null());
    c
}

#[test]
fn abort_at_each_commit_step_then_rerun_equals_clean_run() {
    let dir = tempdir();
    let src = dir.path().join("archive");
    generate(&src, ARCHIVE);
    let expected = clean_run(&src, &dir.path().join("clean"));
    assert!(expected.len() > 300);
    for point in ["before-commit", "after-commit"] {
        let lake = dir.path().join(format!("lake-{point}"));
        let status = ingest_cmd(&src, &lake)
            .env("CETRAIL_CRASH_AT", format!("{point}:4"))
            .status()
            .expect("run");
        assert!(
            !status.success(),
            "{point}: the crash hook must stop the run"
        );
        no_partial_files(&lake);
        let (code, s) = ingest(&src, &lake, &["--commit-every", "5"]);
        assert_eq!(code, 0, "{s}");
        if point == "after-commit" {
            assert_eq!(n(&s, "recovered_files"), 1, "{s}");
        } else {
            assert!(n(&s, "discarded_staged_files") >= 1, "{s}");
        }
        assert_eq!(distinct_events(&lake), expected, "{point}");
        // Nothing half-done is left behind.
        let staging = lake.join("_cetrail/staging");
        assert_eq!(
            std::fs::read_dir(&staging).map(|d| d.count()).unwrap_or(0),
            0
        );
        let (_, again) = ingest(&src, &lake, &[]);
        assert_eq!(n(&again, "ingested"), 0);
    }
}

#[test]
fn sigkill_at_several_instants_then_rerun_equals_clean_run() {
    let dir = tempdir();
    let src = dir.path().join("archive");
    generate(&src, ARCHIVE);
    let expected = clean_run(&src, &dir.path().join("clean"));
    let lake = dir.path().join("lake");
    // Kill repeatedly, each time later, resuming from whatever the last run left.
    let mut killed = 0;
    for delay_ms in [15u64, 40, 80, 150, 250, 400] {
        let mut child = ingest_cmd(&src, &lake).spawn().expect("spawn");
        std::thread::sleep(Duration::from_millis(delay_ms));
        if child.try_wait().expect("wait").is_none() {
            child.kill().expect("SIGKILL");
            killed += 1;
        }
        let _ = child.wait();
        no_partial_files(&lake);
    }
    assert!(
        killed >= 2,
        "the archive must be large enough to kill runs mid-way"
    );
    let (code, _) = ingest(&src, &lake, &["--commit-every", "5"]);
    assert_eq!(code, 0);
    assert_eq!(distinct_events(&lake), expected);
}

#[test]
fn a_second_writer_is_refused_while_the_lake_is_locked() {
    let dir = tempdir();
    let lake = dir.path().join("lake");
    let held = cetrail::lake::Lake::open(&lake).expect("open");
    let src = dir.path().join("empty");
    std::fs::create_dir_all(&src).expect("mkdir");
    let out = cetrail(
        &[
            "ingest",
            src.to_str().expect("p"),
            "--lake",
            lake.to_str().expect("p"),
        ],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("locked"), "{}", stderr(&out));
    drop(held);
    let out = cetrail(
        &[
            "ingest",
            src.to_str().expect("p"),
            "--lake",
            lake.to_str().expect("p"),
        ],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}
