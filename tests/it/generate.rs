//! `cetrail generate`: reproducible bytes, the real S3 layout, real record shapes.

use std::collections::BTreeMap;
use std::path::Path;

use sha2::{Digest, Sha256};

use crate::util::*;

fn fingerprint(dir: &Path) -> BTreeMap<String, String> {
    walk(dir)
        .into_iter()
        .map(|p| {
            let rel = p
                .strip_prefix(dir)
                .expect("prefix")
                .to_string_lossy()
                .into_owned();
            let hash = Sha256::digest(std::fs::read(&p).expect("read"));
            let hex: String = hash.iter().map(|b| format!("{b:02x}")).collect();
            (rel, hex)
        })
        .collect()
}

fn gunzip(bytes: &[u8]) -> Vec<u8> {
    let mut g = cetrail::record::gunzip::Gunzip::new().expect("decompressor");
    let mut out = Vec::new();
    g.decompress(bytes, &mut out, 1 << 30).expect("valid gzip");
    out
}

#[test]
fn same_seed_same_bytes_other_seed_other_bytes() {
    let dir = tempdir();
    let args = ["--days", "3", "--events-per-day", "50", "--seed", "5"];
    generate(&dir.path().join("a"), &args);
    generate(&dir.path().join("b"), &args);
    generate(
        &dir.path().join("c"),
        &["--days", "3", "--events-per-day", "50", "--seed", "6"],
    );
    let a = fingerprint(&dir.path().join("a"));
    assert!(a.len() > 20);
    assert_eq!(a, fingerprint(&dir.path().join("b")));
    assert_ne!(a, fingerprint(&dir.path().join("c")));
}

#[test]
fn layout_and_record_shapes_match_cloudtrail() {
    let dir = tempdir();
    let out = dir.path().join("a");
    generate(
        &out,
        &[
            "--days",
            "8",
            "--events-per-day",
            "60",
            "--ce-share",
            "0.3",
            "--seed",
            "3",
        ],
    );
    let mut plain = 0;
    let mut org = 0;
    let mut late = 0;
    let mut lookalikes = 0;
    let mut compact_dates = 0;
    let mut null_params_denied_assume = 0;
    let mut ids = std::collections::HashMap::<String, u32>::new();
    for p in walk(&out) {
        let key = p
            .strip_prefix(&out)
            .expect("prefix")
            .to_string_lossy()
            .into_owned();
        let parts: Vec<&str> = key.split('/').collect();
        if parts.len() == 1 && ["public-keys.json", "digest-signatures.json"].contains(&parts[0]) {
            continue; // what `verify` needs beside the trail
        }
        assert_eq!(parts[0], "AWSLogs");
        let rest = if parts[1].starts_with("o-") {
            org += 1;
            &parts[2..]
        } else {
            plain += 1;
            &parts[1..]
        };
        assert_eq!(rest.len(), 7, "{key}");
        assert!(rest[0].len() == 12 && rest[0].bytes().all(|b| b.is_ascii_digit()));
        if rest[1] != "CloudTrail" {
            assert!(
                ["CloudTrail-Digest", "CloudTrail-Insight"].contains(&rest[1]),
                "{key}"
            );
            continue;
        }
        let file = rest[6];
        assert!(
            file.starts_with(&format!("{}_CloudTrail_{}_", rest[0], rest[2]))
                && file.ends_with(".json.gz"),
            "{file}"
        );
        let body: serde_json::Value =
            serde_json::from_slice(&gunzip(&std::fs::read(&p).expect("read"))).expect("json");
        let recs = body["Records"].as_array().expect("Records array");
        assert!(!recs.is_empty());
        let folder_day = format!("{}-{}-{}", rest[3], rest[4], rest[5]);
        for r in recs {
            for f in [
                "eventVersion",
                "eventTime",
                "eventID",
                "eventName",
                "eventSource",
                "awsRegion",
                "recipientAccountId",
                "userIdentity",
                "eventType",
                "readOnly",
                "managementEvent",
                "eventCategory",
            ] {
                assert!(r.get(f).is_some(), "{f} missing in {r}");
            }
            assert!(r["readOnly"].is_boolean() && r["managementEvent"].is_boolean());
            assert_eq!(r["recipientAccountId"], rest[0]);
            assert_eq!(r["awsRegion"], rest[2]);
            let t = r["eventTime"].as_str().expect("time");
            if t[..10] < *folder_day.as_str() {
                late += 1;
            }
            let arn = r["userIdentity"]["arn"].as_str().unwrap_or("");
            if arn.contains("/CE-Admins-Legacy/") || arn.contains("/ce-admin/") {
                lookalikes += 1;
            }
            if let Some(m) =
                r["userIdentity"]["sessionContext"]["attributes"]["mfaAuthenticated"].as_str()
            {
                assert!(m == "true" || m == "false");
            }
            if r["userIdentity"]["sessionContext"]["attributes"]["creationDate"]
                .as_str()
                .is_some_and(|d| d.len() == 16)
            {
                compact_dates += 1;
            }
            if r["eventName"] == "AssumeRole"
                && r["errorCode"] == "AccessDenied"
                && r["requestParameters"].is_null()
            {
                null_params_denied_assume += 1;
            }
            *ids.entry(r["eventID"].as_str().expect("id").to_string())
                .or_default() += 1;
        }
    }
    assert!(plain > 0 && org > 0, "plain {plain} org {org}");
    assert!(
        late > 0,
        "some events are delivered in a later day's folder"
    );
    assert!(lookalikes > 0);
    assert!(compact_dates > 0);
    assert!(null_params_denied_assume > 0);
    assert!(ids.values().any(|n| *n > 1), "a few duplicate eventIDs");
    assert!(
        ids.values().filter(|n| **n > 1).count() * 100 < ids.len(),
        "only a few"
    );
}
