//! A lake on S3 (issue 8): written, compacted and queried on in-process s3s-fs and,
//! end to end through the binary, on moto_server (with a writer killed mid-upload).
//! s3s-fs holds parts to S3's 5 MiB minimum, so multipart uploads are exercised on moto,
//! whose minimum .ci/run lowers.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use aws_sdk_s3::config::{Credentials, Region};
use cetrail::config::Config;
use cetrail::ingest::{IngestOptions, Progress, ingest_at};
use cetrail::lake::LakeLocation;
use cetrail::lake::compact::compact_at;
use cetrail::lake::remote::{RemoteLake, mirror};
use cetrail::query::view::ViewParams;
use cetrail::query::widgets::{Dashboard, WIDGETS};
use cetrail::render::Table;
use cetrail::source::local::LocalSource;

use crate::s3::{Faults, client, moto_endpoint};
use crate::util::*;

fn small_archive(dir: &Path, seed: &str) -> PathBuf {
    let archive = dir.join("archive");
    generate(
        &archive,
        &[
            "--days",
            "4",
            "--events-per-day",
            "90",
            "--no-digests",
            "--seed",
            seed,
        ],
    );
    archive
}

/// Every widget's table over a local lake folder.
fn widget_tables(lake: &Path) -> Vec<Table> {
    let config = Config::default();
    let mut d = Dashboard::open(lake, &config, ViewParams::from_config(&config)).expect("open");
    WIDGETS
        .iter()
        .map(|w| Table::from_frame(&d.widget(w).expect("widget")).expect("table"))
        .collect()
}

fn remote(root: &Path) -> RemoteLake {
    RemoteLake::new(
        client(root, Arc::new(Faults::default())),
        "lake-bucket",
        "team/cetrail",
    )
    .expect("remote")
}

#[test]
fn lake_on_s3_equals_the_local_lake_through_ingest_compact_and_queries() {
    let dir = tempdir();
    let archive = small_archive(dir.path(), "31");
    let local = dir.path().join("local");
    let (code, reference) = ingest(&archive, &local, &[]);
    assert_eq!(code, 0);

    let root = tempdir();
    std::fs::create_dir_all(root.path().join("lake-bucket")).expect("bucket");
    let options = IngestOptions {
        threads: 2,
        flush_objects: 40, // many commits: several files per month to compact
        ..IngestOptions::default()
    };
    let source = LocalSource::new(archive.clone()).expect("source");
    let location = || LakeLocation::S3 {
        remote: remote(root.path()),
        spool: dir.path().join("spool"),
    };
    let s = ingest_at(
        &source,
        location(),
        &Config::default(),
        &options,
        &Progress::default(),
    )
    .expect("ingest to S3");
    assert_eq!(s.ingested, n(&reference, "ingested"));
    assert_eq!(s.lake, "s3://lake-bucket/team/cetrail");
    let r = remote(root.path());
    assert!(
        r.list("_cetrail/staging/").expect("list").is_empty(),
        "nothing left staged"
    );
    let files = r.list("events/").expect("list");
    assert!(
        files
            .iter()
            .all(|o| o.rel.ends_with(".parquet") && o.size > 0)
    );
    let months: std::collections::BTreeSet<&str> = files
        .iter()
        .filter_map(|o| o.rel.split('/').nth(1))
        .collect();
    assert!(
        files.len() > months.len(),
        "several files per month before compaction"
    );

    // Readers work on a mirror: the same rows and the same widgets as the local lake.
    let m = dir.path().join("mirror");
    assert_eq!(
        mirror(&r, &m).expect("mirror"),
        files.len() as u64 + s.commits
    );
    assert_eq!(sorted_rows(&m), sorted_rows(&local));
    assert_eq!(widget_tables(&m), widget_tables(&local));
    assert_eq!(
        mirror(&r, &m).expect("mirror again"),
        0,
        "nothing new to fetch"
    );

    // The ledger is on S3: a rerun from another spool reads nothing again.
    let again = ingest_at(
        &source,
        LakeLocation::S3 {
            remote: remote(root.path()),
            spool: dir.path().join("spool2"),
        },
        &Config::default(),
        &options,
        &Progress::default(),
    )
    .expect("rerun");
    assert_eq!(again.ingested, 0);
    assert_eq!(again.already_in_ledger, s.objects_seen);

    // Compaction on S3: one file per month, the same rows; the mirror follows.
    let done = compact_at(location(), None, 128 << 20).expect("compact");
    assert_eq!(done.len(), months.len());
    let after = r.list("events/").expect("list");
    assert_eq!(after.len(), months.len(), "{after:?}");
    assert!(r.list("_cetrail/staging/").expect("list").is_empty());
    mirror(&r, &m).expect("mirror");
    assert_eq!(
        lake_files(&m).len(),
        months.len(),
        "replaced files left the mirror"
    );
    assert_eq!(sorted_rows(&m), sorted_rows(&local));
    assert_eq!(widget_tables(&m), widget_tables(&local));
}

/// The binary with `args` against moto at `endpoint` (test credentials, its own cache
/// folder) and the environment `env`.
fn on_moto(
    endpoint: &str,
    cache: &Path,
    args: &[&str],
    env: &[(&str, &str)],
) -> std::process::Output {
    let mut c = Command::new(BIN);
    c.args(args)
        .args(["--endpoint-url", endpoint])
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_REGION", "us-east-1")
        .env("CETRAIL_CACHE_DIR", cache)
        .env_remove("AWS_PROFILE")
        .env_remove("CETRAIL_CRASH_AT");
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().expect("cetrail")
}

/// A new bucket `<name>-<pid>` on moto, with a client and the runtime to drive it.
fn moto_bucket(
    endpoint: &str,
    name: &str,
) -> (String, aws_sdk_s3::Client, tokio::runtime::Runtime) {
    let bucket = format!("{name}-{}", std::process::id());
    let client = moto_client(endpoint);
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(client.create_bucket().bucket(&bucket).send())
        .expect("create bucket");
    (bucket, client, rt)
}

fn moto_client(endpoint: &str) -> aws_sdk_s3::Client {
    let conf = aws_sdk_s3::Config::builder()
        .behavior_version_latest()
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("test", "test", None, None, "test"))
        .endpoint_url(endpoint)
        .force_path_style(true)
        .build();
    aws_sdk_s3::Client::from_conf(conf)
}

#[test]
fn binary_lake_on_moto_survives_a_writer_killed_mid_upload() {
    let Some(endpoint) = moto_endpoint() else {
        eprintln!("SKIPPED moto S3-lake test: no CETRAIL_MOTO_ENDPOINT (run .ci/run)");
        return;
    };
    let dir = tempdir();
    let archive = small_archive(dir.path(), "32");
    let local = dir.path().join("local");
    assert_eq!(ingest(&archive, &local, &[]).0, 0);

    let (bucket, client, rt) = moto_bucket(&endpoint, "lake");
    let url = format!("s3://{bucket}/cetrail");
    let cache = dir.path().join("cache");
    let cetrail_s3 = |args: &[&str], env: &[(&str, &str)]| on_moto(&endpoint, &cache, args, env);
    let arch = archive.to_str().expect("utf-8");

    // Killed after the first part of the first lake file.
    let out = cetrail_s3(
        &["ingest", arch, "--lake", &url, "--json"],
        &[
            ("CETRAIL_CRASH_AT", "mid-upload"),
            ("CETRAIL_S3_PART_BYTES", "8192"),
        ],
    );
    assert!(
        !out.status.success(),
        "the crash hook fired: {}",
        stderr(&out)
    );
    let visible = rt
        .block_on(
            client
                .list_objects_v2()
                .bucket(&bucket)
                .prefix("cetrail/")
                .send(),
        )
        .expect("list");
    let keys: Vec<&str> = visible.contents().iter().filter_map(|o| o.key()).collect();
    assert!(
        keys.iter()
            .all(|k| !k.contains("/events/") && !k.contains("/staging/")),
        "no partial or staged file is visible: {keys:?}"
    );
    let uploads = rt
        .block_on(client.list_multipart_uploads().bucket(&bucket).send())
        .expect("uploads");
    assert_eq!(uploads.uploads().len(), 1, "one upload left incomplete");

    // The rerun aborts it and ingests everything once, in multipart uploads (.ci/run
    // lowers moto's minimum part size with S3_UPLOAD_PART_MIN_SIZE).
    let out = cetrail_s3(
        &["ingest", arch, "--lake", &url, "--json"],
        &[("CETRAIL_S3_PART_BYTES", "8192")],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let s: serde_json::Value = serde_json::from_slice(&out.stdout).expect("summary");
    assert!(n(&s, "discarded_staged_files") >= 1, "{s}");
    let uploads = rt
        .block_on(client.list_multipart_uploads().bucket(&bucket).send())
        .expect("uploads");
    assert!(uploads.uploads().is_empty());

    let dash = |lake: &str| {
        let out = cetrail_s3(&["dashboard", "--lake", lake, "--format", "json"], &[]);
        assert!(out.status.success(), "{}", stderr(&out));
        stdout(&out)
    };
    let want = dash(local.to_str().expect("utf-8"));
    assert_eq!(dash(&url), want);
    let out = cetrail_s3(&["lake", "compact", "--lake", &url, "--json"], &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(dash(&url), want);
    let mirror = cache.join("lakes").join(&bucket).join("cetrail");
    assert_eq!(sorted_rows(&mirror), sorted_rows(&local));
}

/// A lake on S3 (moto) with a committed file deleted from the bucket: read commands
/// stop naming it, `lake check` names it, `lake repair` reads its sources again and the
/// lake on S3 is then intact with the events of a clean lake.
#[test]
fn a_damaged_lake_on_s3_is_named_and_repaired() {
    let Some(endpoint) = moto_endpoint() else {
        eprintln!("SKIPPED moto S3-lake repair test: no CETRAIL_MOTO_ENDPOINT (run .ci/run)");
        return;
    };
    let dir = tempdir();
    let archive = small_archive(dir.path(), "33");
    let local = dir.path().join("local");
    assert_eq!(ingest(&archive, &local, &[]).0, 0);
    let (bucket, client, rt) = moto_bucket(&endpoint, "repair");
    let url = format!("s3://{bucket}/lake");
    let cache = dir.path().join("cache");
    let run = |args: &[&str]| on_moto(&endpoint, &cache, args, &[]);
    let arch = archive.to_str().expect("utf-8");
    let out = run(&[
        "ingest",
        arch,
        "--lake",
        &url,
        "--commit-every",
        "20",
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let listed = rt
        .block_on(
            client
                .list_objects_v2()
                .bucket(&bucket)
                .prefix("lake/events/")
                .send(),
        )
        .expect("list");
    let keys: Vec<String> = listed
        .contents()
        .iter()
        .filter_map(|o| o.key().map(str::to_string))
        .collect();
    assert!(keys.len() >= 2, "{keys:?}");
    let victim = keys[keys.len() / 2].clone();
    rt.block_on(client.delete_object().bucket(&bucket).key(&victim).send())
        .expect("delete");
    let rel = victim.trim_start_matches("lake/").to_string();
    let out = run(&["dashboard", "--lake", &url]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains(&rel), "{}", stderr(&out));
    let out = run(&["lake", "check", "--lake", &url]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(stdout(&out).contains(&rel), "{}", stdout(&out));
    let out = run(&["lake", "repair", "--lake", &url, "--source", arch]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    let out = run(&["lake", "check", "--lake", &url, "--deep"]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    // An object damaged in place (same size): only a deep check sees it, from the
    // objects themselves, and a deep repair restores it.
    let listed = rt
        .block_on(
            client
                .list_objects_v2()
                .bucket(&bucket)
                .prefix("lake/events/")
                .send(),
        )
        .expect("list");
    let victim = listed.contents()[0].key().unwrap_or("").to_string();
    let body = rt
        .block_on(client.get_object().bucket(&bucket).key(&victim).send())
        .expect("get");
    let mut bytes = rt.block_on(body.body.collect()).expect("body").to_vec();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x5A;
    rt.block_on(
        client
            .put_object()
            .bucket(&bucket)
            .key(&victim)
            .body(aws_sdk_s3::primitives::ByteStream::from(bytes))
            .send(),
    )
    .expect("put");
    let rel = victim.trim_start_matches("lake/").to_string();
    // A read command downloads the rewritten object (its ETag changed) and refuses it.
    let out = run(&["dashboard", "--lake", &url]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&rel) && stderr(&out).contains("_cetrail/ledger/"),
        "{}",
        stderr(&out)
    );
    let out = run(&["lake", "check", "--lake", &url, "--deep"]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(stdout(&out).contains(&rel), "{}", stdout(&out));
    let out = run(&["lake", "repair", "--lake", &url, "--source", arch, "--deep"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    let quarantined = rt
        .block_on(
            client
                .head_object()
                .bucket(&bucket)
                .key(format!("lake/_cetrail/quarantine/{rel}"))
                .send(),
        )
        .is_ok();
    assert!(quarantined, "the damaged object is kept in quarantine");
    let out = run(&["lake", "check", "--lake", &url, "--deep"]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    // The mirror the read commands use holds the events of a clean lake.
    let mirror_root = {
        let remote = RemoteLake::new(moto_client(&endpoint), &bucket, "lake").expect("remote");
        let m = dir.path().join("mirror");
        mirror(&remote, &m).expect("mirror");
        m
    };
    assert_eq!(distinct_events(&mirror_root), distinct_events(&local));
    // All 17 widgets are the clean lake's.
    let out = run(&["dashboard", "--lake", &url, "--format", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let clean = cetrail(
        &[
            "dashboard",
            "--lake",
            local.to_str().unwrap_or(""),
            "--format",
            "json",
        ],
        Path::new("."),
    );
    assert_eq!(stdout(&out), stdout(&clean));
    // A truncated object: every read command through the mirror refuses the lake.
    let listed = rt
        .block_on(
            client
                .list_objects_v2()
                .bucket(&bucket)
                .prefix("lake/events/")
                .send(),
        )
        .expect("list");
    let victim = listed.contents()[0].key().unwrap_or("").to_string();
    let body = rt
        .block_on(client.get_object().bucket(&bucket).key(&victim).send())
        .expect("get");
    let bytes = rt.block_on(body.body.collect()).expect("body").to_vec();
    rt.block_on(
        client
            .put_object()
            .bucket(&bucket)
            .key(&victim)
            .body(aws_sdk_s3::primitives::ByteStream::from(
                bytes[..bytes.len() / 2].to_vec(),
            ))
            .send(),
    )
    .expect("put");
    let rel = victim.trim_start_matches("lake/").to_string();
    for args in [
        vec!["dashboard", "--lake", url.as_str()],
        vec!["audit", "--lake", url.as_str()],
        vec!["query", "top-actions", "--lake", url.as_str()],
        vec!["coverage", "--lake", url.as_str()],
    ] {
        let out = run(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains(&rel), "{args:?}: {}", stderr(&out));
    }
}
