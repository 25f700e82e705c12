//! `lake check`: the lake's files against the ledger that commits them (SPEC §11).

use std::path::Path;

use serde_json::Value;

use crate::util::*;

fn check(lake: &Path, deep: bool) -> (i32, Value) {
    let mut args = vec![
        "lake",
        "check",
        "--lake",
        lake.to_str().unwrap_or(""),
        "--format",
        "json",
    ];
    if deep {
        args.push("--deep");
    }
    let out = cetrail(&args, Path::new("."));
    let v = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("lake check JSON: {e}: {} {}", stdout(&out), stderr(&out)));
    (out.status.code().unwrap_or(-1), v)
}

/// The one problem found: (file, problem, segment).
fn only_problem(v: &Value) -> (String, String, String) {
    let p = v["problems"].as_array().cloned().unwrap_or_default();
    assert_eq!(p.len(), 1, "{v:#}");
    (
        p[0]["file"].as_str().unwrap_or("").to_string(),
        p[0]["problem"].as_str().unwrap_or("").to_string(),
        p[0]["segment"].as_str().unwrap_or("").to_string(),
    )
}

#[test]
fn damaged_and_stray_files_are_named_with_their_segment() {
    let dir = tempdir();
    let src = dir.path().join("archive");
    generate(
        &src,
        &[
            "--days",
            "6",
            "--events-per-day",
            "60",
            "--no-digests",
            "--seed",
            "3",
        ],
    );
    let clean = dir.path().join("clean");
    assert_eq!(ingest(&src, &clean, &["--commit-every", "40"]).0, 0);
    let files = lake_files(&clean);
    assert!(files.len() >= 3, "{files:?}");
    let (code, v) = check(&clean, false);
    assert_eq!(code, 0, "{v:#}");
    assert_eq!(v["files"].as_u64(), Some(files.len() as u64));
    let (code, v) = check(&clean, true);
    assert_eq!(code, 0, "{v:#}");
    assert_eq!(
        v["hashed"].as_u64(),
        Some(files.len() as u64),
        "every file hashed"
    );
    // The table says so too.
    let out = cetrail(
        &["lake", "check", "--lake", clean.to_str().unwrap_or("")],
        Path::new("."),
    );
    assert!(stdout(&out).starts_with("intact:"), "{}", stdout(&out));

    let fresh = |name: &str| {
        let p = dir.path().join(name);
        copy_tree(&clean, &p);
        let victim = lake_files(&p)[1].clone();
        let rel = victim
            .strip_prefix(&p)
            .map(|r| r.to_string_lossy().into_owned())
            .unwrap_or_default();
        (p, victim, rel)
    };
    // Deleted.
    let (lake, victim, rel) = fresh("deleted");
    std::fs::remove_file(&victim).expect("rm");
    let (code, v) = check(&lake, false);
    assert_eq!(code, 1);
    let (file, problem, segment) = only_problem(&v);
    assert_eq!((file.as_str(), problem.as_str()), (rel.as_str(), "missing"));
    assert!(
        segment.starts_with("_cetrail/ledger/") && lake.join(&segment).is_file(),
        "{segment}"
    );
    // Truncated.
    let (lake, victim, rel) = fresh("truncated");
    let bytes = std::fs::read(&victim).expect("read");
    std::fs::write(&victim, &bytes[..bytes.len() / 2]).expect("write");
    let (code, v) = check(&lake, false);
    assert_eq!(code, 1);
    assert_eq!(only_problem(&v).0, rel);
    assert_eq!(only_problem(&v).1, "size");
    // Bytes flipped in place (same size): the size passes, the checksum does not.
    let (lake, victim, rel) = fresh("flipped");
    let mut bytes = std::fs::read(&victim).expect("read");
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xFF;
    bytes[mid + 1] ^= 0x55;
    std::fs::write(&victim, &bytes).expect("write");
    assert_eq!(check(&lake, false).0, 0, "a size check cannot see it");
    let (code, v) = check(&lake, true);
    assert_eq!(code, 1);
    assert_eq!(only_problem(&v).0, rel);
    assert_eq!(only_problem(&v).1, "checksum");
    // Replaced by another valid lake file of the same name.
    let (lake, victim, rel) = fresh("replaced");
    let other = lake_files(&lake)[0].clone();
    std::fs::copy(&other, &victim).expect("copy");
    let (code, v) = check(&lake, true);
    assert_eq!(code, 1);
    assert_eq!(only_problem(&v).0, rel);
    // A stray Parquet file nobody committed.
    let (lake, victim, _) = fresh("stray");
    let stray = victim.with_file_name("part-stray.parquet");
    std::fs::copy(&victim, &stray).expect("copy");
    let (code, v) = check(&lake, false);
    assert_eq!(code, 1);
    let (file, problem, segment) = only_problem(&v);
    assert!(file.ends_with("part-stray.parquet"), "{file}");
    assert_eq!((problem.as_str(), segment.as_str()), ("not-committed", ""));
    // After compaction the replaced files are gone from the ledger's table too.
    let out = cetrail(
        &["lake", "compact", "--lake", clean.to_str().unwrap_or("")],
        Path::new("."),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let (code, v) = check(&clean, true);
    assert_eq!(code, 0, "{v:#}");
    assert_eq!(v["files"].as_u64(), Some(lake_files(&clean).len() as u64));
}

/// Every read command on a lake whose committed file is missing, truncated, replaced or
/// changed in place stops with exit status 2 and names the file and its segment; a
/// stray file is not read.
#[test]
fn read_commands_refuse_a_damaged_lake_and_ignore_stray_files() {
    let dir = tempdir();
    let src = dir.path().join("archive");
    generate(
        &src,
        &[
            "--days",
            "4",
            "--events-per-day",
            "60",
            "--no-digests",
            "--seed",
            "8",
        ],
    );
    let clean = dir.path().join("clean");
    assert_eq!(ingest(&src, &clean, &["--commit-every", "40"]).0, 0);
    let report_out = dir.path().join("report.html");
    let sql = dir.path().join("q.sql");
    std::fs::write(&sql, "SELECT count(*) AS n FROM events").expect("sql");
    let reads = |lake: &Path| -> Vec<(String, std::process::Output)> {
        let l = lake.to_str().unwrap_or("").to_string();
        let r = report_out.to_str().unwrap_or("").to_string();
        let q = sql.to_str().unwrap_or("").to_string();
        let commands: Vec<Vec<String>> = vec![
            vec!["dashboard".into(), "--lake".into(), l.clone()],
            vec![
                "query".into(),
                "top-actions".into(),
                "--lake".into(),
                l.clone(),
            ],
            vec!["query".into(), q, "--lake".into(), l.clone()],
            vec!["audit".into(), "--lake".into(), l.clone()],
            vec![
                "timeline".into(),
                "--lake".into(),
                l.clone(),
                "--engineer".into(),
                "alice.martin".into(),
            ],
            vec![
                "report".into(),
                "--lake".into(),
                l.clone(),
                "--month".into(),
                "2026-09".into(),
                "--out".into(),
                r,
            ],
            vec!["coverage".into(), "--lake".into(), l],
        ];
        commands
            .into_iter()
            .map(|c| {
                let args: Vec<&str> = c.iter().map(String::as_str).collect();
                (c.join(" "), cetrail(&args, Path::new(".")))
            })
            .collect()
    };
    for (name, out) in reads(&clean) {
        assert!(
            out.status.code().is_some_and(|c| c <= 1),
            "{name}: {}",
            stderr(&out)
        );
    }
    for damage in ["missing", "truncated", "replaced", "flipped"] {
        let lake = dir.path().join(damage);
        copy_tree(&clean, &lake);
        let files = lake_files(&lake);
        let victim = files[1].clone();
        match damage {
            "missing" => std::fs::remove_file(&victim).expect("rm"),
            "truncated" => {
                let b = std::fs::read(&victim).expect("read");
                std::fs::write(&victim, &b[..b.len() - 100]).expect("write");
            }
            // The same size, 16 bytes flipped wherever they fall (perhaps in a column
            // no command reads): its bytes are not those committed.
            "flipped" => {
                let mut b = std::fs::read(&victim).expect("read");
                let mid = b.len() / 2;
                for x in &mut b[mid..mid + 16] {
                    *x ^= 0xA5;
                }
                std::fs::write(&victim, &b).expect("write");
            }
            _ => {
                std::fs::copy(&files[0], &victim).expect("copy");
            }
        }
        let rel = victim
            .strip_prefix(&lake)
            .map(|r| r.to_string_lossy().into_owned())
            .unwrap_or_default();
        for (name, out) in reads(&lake) {
            let err = stderr(&out);
            assert_eq!(out.status.code(), Some(2), "{damage}: {name}: {err}");
            assert!(
                err.contains(&rel)
                    && err.contains("_cetrail/ledger/")
                    && err.contains("lake check"),
                "{damage}: {name} names the file, its segment and the way out: {err}"
            );
        }
    }
    // A stray file (a copy of a committed one) is not read: the dashboard is the clean
    // lake's, where a glob over events/ would count its events twice.
    let lake = dir.path().join("stray");
    copy_tree(&clean, &lake);
    let victim = lake_files(&lake)[0].clone();
    std::fs::copy(&victim, victim.with_file_name("part-copy.parquet")).expect("copy");
    assert_eq!(dashboard_json(&lake), dashboard_json(&clean));
}

/// A committed file of the right size whose bytes are damaged: a read command fails
/// (exit 2) naming the file, the segment that committed it and `lake check`; `lake
/// check --deep` finds it too.
#[test]
fn a_file_damaged_in_place_is_named_with_its_segment_when_read() {
    let dir = tempdir();
    let src = dir.path().join("archive");
    generate(
        &src,
        &[
            "--days",
            "3",
            "--events-per-day",
            "80",
            "--no-digests",
            "--seed",
            "9",
        ],
    );
    let lake = dir.path().join("lake");
    assert_eq!(ingest(&src, &lake, &[]).0, 0);
    let victim = lake_files(&lake)[0].clone();
    // Inside the pages of `event_name` (a column every widget reads).
    let (start, len) = {
        use parquet::file::reader::FileReader as _;
        let reader = parquet::file::serialized_reader::SerializedFileReader::new(
            std::fs::File::open(&victim).expect("open"),
        )
        .expect("footer");
        let rg = reader.metadata().row_group(0);
        let col = (0..rg.num_columns())
            .find(|i| rg.column(*i).column_path().string() == "event_name")
            .expect("event_name");
        rg.column(col).byte_range()
    };
    let mut bytes = std::fs::read(&victim).expect("read");
    let from = usize::try_from(start + len / 2).unwrap_or(0);
    for b in &mut bytes[from..from + 16] {
        *b ^= 0xA5;
    }
    std::fs::write(&victim, &bytes).expect("write");
    let rel = victim
        .strip_prefix(&lake)
        .map(|r| r.to_string_lossy().into_owned())
        .unwrap_or_default();
    let out = cetrail(
        &["dashboard", "--lake", lake.to_str().unwrap_or("")],
        Path::new("."),
    );
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains(&rel) && err.contains("_cetrail/ledger/") && err.contains("lake check"),
        "{err}"
    );
    assert_eq!(check(&lake, true).0, 1);
}

fn repair(lake: &Path, src: &Path, deep: bool, crash: Option<&str>) -> std::process::Output {
    let mut args = vec![
        "lake",
        "repair",
        "--lake",
        lake.to_str().unwrap_or(""),
        "--source",
        src.to_str().unwrap_or(""),
    ];
    if deep {
        args.push("--deep");
    }
    let mut cmd = std::process::Command::new(BIN);
    cmd.args(&args).env_remove("CETRAIL_CRASH_AT");
    if let Some(c) = crash {
        cmd.env("CETRAIL_CRASH_AT", c);
    }
    cmd.output().expect("run cetrail")
}

fn dashboard_json(lake: &Path) -> String {
    let out = cetrail(
        &[
            "dashboard",
            "--lake",
            lake.to_str().unwrap_or(""),
            "--format",
            "json",
        ],
        Path::new("."),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    stdout(&out)
}

/// `lake repair` reads the objects behind each damaged file again and retires it: the
/// lake is then intact, with the distinct events and the 17 widgets of a clean lake,
/// also for a compacted file and after a repair killed at its commit.
#[test]
fn repair_gives_back_a_clean_lake() {
    let dir = tempdir();
    let src = dir.path().join("archive");
    generate(
        &src,
        &[
            "--days",
            "5",
            "--events-per-day",
            "60",
            "--no-digests",
            "--seed",
            "12",
        ],
    );
    let clean = dir.path().join("clean");
    assert_eq!(ingest(&src, &clean, &["--commit-every", "30"]).0, 0);
    let want_events = distinct_events(&clean);
    let want_dashboard = dashboard_json(&clean);
    let compacted = dir.path().join("compacted");
    copy_tree(&clean, &compacted);
    let out = cetrail(
        &[
            "lake",
            "compact",
            "--lake",
            compacted.to_str().unwrap_or(""),
        ],
        Path::new("."),
    );
    assert!(out.status.success(), "{}", stderr(&out));

    let cases: [(&str, &Path, Option<&str>); 6] = [
        ("missing", &clean, None),
        ("truncated", &clean, None),
        ("flipped", &clean, None),
        ("compacted-missing", &compacted, None),
        ("crash-before", &clean, Some("before-commit")),
        ("crash-after", &clean, Some("after-commit")),
    ];
    for (name, base, crash) in cases {
        let lake = dir.path().join(name);
        copy_tree(base, &lake);
        let files = lake_files(&lake);
        let victim = files[files.len() / 2].clone();
        let deep = name == "flipped";
        if deep {
            let mut b = std::fs::read(&victim).expect("read");
            let mid = b.len() / 2;
            b[mid] ^= 0x5A;
            std::fs::write(&victim, &b).expect("write");
        } else if name == "truncated" {
            let b = std::fs::read(&victim).expect("read");
            std::fs::write(&victim, &b[..b.len() / 3]).expect("write");
        } else {
            std::fs::remove_file(&victim).expect("rm");
        }
        if let Some(point) = crash {
            let out = repair(&lake, &src, false, Some(point));
            assert!(
                !out.status.success(),
                "{name}: the crash hook must kill the repair"
            );
        }
        let out = repair(&lake, &src, deep, None);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{name}: {}{}",
            stdout(&out),
            stderr(&out)
        );
        let (code, v) = check(&lake, true);
        assert_eq!(code, 0, "{name}: {v:#}");
        assert_eq!(distinct_events(&lake), want_events, "{name}");
        assert_eq!(dashboard_json(&lake), want_dashboard, "{name}");
        if !deep && crash.is_none() {
            let rel = victim
                .strip_prefix(&lake)
                .map(|r| r.to_path_buf())
                .unwrap_or_default();
            assert!(
                name.ends_with("missing") || lake.join("_cetrail/quarantine").join(&rel).is_file(),
                "{name}: the damaged file is kept in quarantine"
            );
        }
    }
    // Killed (SIGKILL) at instants spread over the repair, then rerun: still a clean
    // lake every time.
    for (i, delay_ms) in [1u64, 4, 10, 25, 60, 150].into_iter().enumerate() {
        let lake = dir.path().join(format!("killed-{i}"));
        copy_tree(&clean, &lake);
        let files = lake_files(&lake);
        std::fs::remove_file(&files[i % files.len()]).expect("rm");
        let mut child = std::process::Command::new(BIN)
            .args([
                "lake",
                "repair",
                "--lake",
                lake.to_str().unwrap_or(""),
                "--source",
            ])
            .arg(&src)
            .env_remove("CETRAIL_CRASH_AT")
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("spawn");
        std::thread::sleep(std::time::Duration::from_millis(delay_ms));
        let _ = child.kill();
        let _ = child.wait();
        let out = repair(&lake, &src, false, None);
        assert_eq!(
            out.status.code(),
            Some(0),
            "killed after {delay_ms} ms: {}",
            stdout(&out)
        );
        assert_eq!(check(&lake, true).0, 0, "killed after {delay_ms} ms");
        assert_eq!(
            distinct_events(&lake),
            want_events,
            "killed after {delay_ms} ms"
        );
    }
    // A lake with nothing damaged: nothing to do.
    let out = repair(&clean, &src, true, None);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert!(
        stdout(&out).contains("nothing to repair"),
        "{}",
        stdout(&out)
    );
}
