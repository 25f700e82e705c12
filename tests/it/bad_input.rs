//! SPEC §9: no input may crash the tool or vanish. Each broken input is named, goes to
//! the ledger with its reason, and the run goes on (exit status 3).

use std::path::Path;

use crate::util::*;

fn ledger_entries(lake: &Path) -> Vec<serde_json::Value> {
    let mut out = Vec::new();
    for f in walk(&lake.join("_cetrail/ledger")) {
        let text = std::fs::read_to_string(&f).expect("segment");
        for line in text.lines().skip(1) {
            out.push(serde_json::from_str(line).expect("ledger line"));
        }
    }
    out
}

#[test]
fn every_broken_input_is_rejected_with_its_reason() {
    let dir = tempdir();
    let src = dir.path().join("src");
    let lake = dir.path().join("lake");
    copy_tree(&fixtures().join("bad"), &src);
    std::fs::remove_file(src.join("README.md")).expect("rm");

    // A gzip bomb: 600 MB of zeros in ~600 KB (members of 10 MB each).
    let member = gzip(&vec![0u8; 10 << 20]);
    let bomb: Vec<u8> = std::iter::repeat_n(member.as_slice(), 60)
        .flatten()
        .copied()
        .collect();
    assert!(bomb.len() < 2 << 20);
    write(&src.join("bomb.json.gz"), &bomb);
    // A 50 MB record (it names a CE role, so the pre-filter cannot skip it).
    let big = format!(
        "{{\"Records\":[{{\"eventID\":\"big\",\"eventTime\":\"2026-10-01T10:00:00Z\",\"eventName\":\"X\",\"eventSource\":\"ec2.amazonaws.com\",\"userAgent\":\"CE-SRE {}\"}}]}}",
        "a".repeat(50 << 20)
    );
    write(&src.join("huge-record.json.gz"), &gzip(big.as_bytes()));
    // A file name that is not UTF-8.
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        let name = std::ffi::OsStr::from_bytes(b"bad-\xff\xfe-name.json.gz");
        write(&src.join(name), &gzip(b"{\"Records\":[]}"));
    }

    let (code, s) = ingest(&src, &lake, &[]);
    assert_eq!(code, 3, "{s}");
    let expect_object = [
        ("truncated-gzip.json.gz", "corrupt or truncated gzip"),
        ("truncated-json.json.gz", "not JSON"),
        ("not-json.json.gz", "not JSON"),
        ("no-records.json.gz", "not a CloudTrail log file"),
        ("records-not-array.json", "not a CloudTrail log file"),
        ("empty.json.gz", "empty file"),
        ("bomb.json.gz", "exceeds the limit"),
        ("-name.json.gz", "not valid UTF-8"),
    ];
    let rejections = s["rejections"].as_array().expect("rejections");
    for (key, reason) in expect_object {
        let r = rejections
            .iter()
            .find(|r| r["key"].as_str().is_some_and(|k| k.ends_with(key)))
            .unwrap_or_else(|| panic!("{key} not reported in {s}"));
        assert!(
            r["reason"].as_str().is_some_and(|x| x.contains(reason)),
            "{key}: {r}"
        );
    }
    assert_eq!(n(&s, "rejected"), expect_object.len() as u64);
    // Bad records inside readable files: the rest of the file is kept.
    assert_eq!(n(&s, "bad_records"), 3);
    let wrong = rejections
        .iter()
        .find(|r| r["key"] == "wrong-types.json.gz")
        .expect("wrong types reported");
    let reason = wrong["reason"].as_str().expect("reason");
    assert!(
        reason.contains("2 record(s) rejected") && reason.contains("field readOnly"),
        "{reason}"
    );
    let huge = rejections
        .iter()
        .find(|r| r["key"] == "huge-record.json.gz")
        .expect("huge");
    assert!(
        huge["reason"]
            .as_str()
            .is_some_and(|r| r.contains("exceeds the limit"))
    );
    assert_eq!(n(&s, "kept_total"), 1);
    assert_eq!(rows(&lake).len(), 1);

    // The ledger holds every object with its status and reason.
    let entries = ledger_entries(&lake);
    assert_eq!(entries.len() as u64, n(&s, "objects_seen"));
    let rejected: Vec<_> = entries
        .iter()
        .filter(|e| e["status"] == "rejected")
        .collect();
    assert_eq!(rejected.len(), expect_object.len());
    assert!(
        rejected
            .iter()
            .all(|e| e["reason"].as_str().is_some_and(|r| !r.is_empty()))
    );
    let w = entries
        .iter()
        .find(|e| e["key"] == "wrong-types.json.gz")
        .expect("entry");
    assert_eq!(
        (
            w["status"].as_str(),
            w["bad_records"].as_u64(),
            w["kept"].as_u64()
        ),
        (Some("ingested"), Some(2), Some(1))
    );

    // Unchanged rejected objects are not retried; a fixed one is.
    let (code, again) = ingest(&src, &lake, &[]);
    assert_eq!(
        (code, n(&again, "ingested"), n(&again, "rejected")),
        (0, 0, 0)
    );
    write(&src.join("empty.json.gz"), &gzip(b"{\"Records\":[]}"));
    let (code, fixed) = ingest(&src, &lake, &[]);
    assert_eq!((code, n(&fixed, "ingested")), (0, 1));
}

#[test]
fn human_summary_names_rejected_objects() {
    let dir = tempdir();
    let src = dir.path().join("src");
    copy_tree(&fixtures().join("bad"), &src);
    let lake = dir.path().join("lake");
    let out = cetrail(
        &[
            "ingest",
            src.to_str().expect("p"),
            "--lake",
            lake.to_str().expect("p"),
        ],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(3));
    let text = stdout(&out);
    assert!(
        text.contains("rejected truncated-gzip.json.gz: corrupt or truncated gzip"),
        "{text}"
    );
    assert!(text.contains("skipped (not logs)"), "{text}");
}
