//! Forensic timelines: a session stitched from AssumeRole through its calls to an SSM
//! shell session, both sides of a cross-account call joined by sharedEventID, stable
//! order for equal timestamps, and every selector.

use std::path::{Path, PathBuf};

use cetrail::config::Config;
use cetrail::query::timeline::{Selector, Timeline, timeline};
use cetrail::query::view::ViewParams;
use serde_json::{Value, json};

use crate::util::*;

const CLIENT: &str = "111122223333";
const VENDOR: &str = "999988887777";
const KEY: &str = "ASIAALICESESSION0001";
const CREATED: &str = "2026-03-30T08:00:00Z";

fn at(mut v: Value, id: &str, t: &str) -> Value {
    v["eventID"] = json!(id);
    v["eventTime"] = json!(t);
    v["recipientAccountId"] = json!(CLIENT);
    v["awsRegion"] = json!("eu-west-1");
    v
}

fn call(
    name: &str,
    pred: impl Fn(&Value) -> bool,
    id: &str,
    t: &str,
    key: &str,
    eng: &str,
) -> Value {
    as_ce_session(at(find(name, pred), id, t), "CE-SRE", eng, key, CREATED)
}

fn records() -> Vec<Value> {
    let mut assume = at(
        find("AssumeRole", |r| r["errorCode"].is_null()),
        "t-assume",
        "2026-03-30T08:00:00Z",
    );
    assume["userIdentity"] =
        json!({"type": "AWSAccount", "principalId": "AROAVENDOR:alice", "accountId": VENDOR});
    assume["requestParameters"] = json!({"roleArn": format!("arn:aws:iam::{CLIENT}:role/ce/CE-SRE"),
        "roleSessionName": "alice", "externalId": "continuous.engineer", "durationSeconds": 7200});
    assume["responseElements"]["credentials"]["accessKeyId"] = json!(KEY);
    assume["sharedEventID"] = json!("shared-0001");
    // The vendor's own record of the same call (its trail is in the lake too); no
    // response elements, so only the sharedEventID ties it to the session.
    let mut vendor = assume.clone();
    vendor["eventID"] = json!("t-vendor");
    vendor["recipientAccountId"] = json!(VENDOR);
    vendor["responseElements"] = Value::Null;
    vendor["userIdentity"] = json!({"type": "AssumedRole", "accountId": VENDOR,
        "arn": format!("arn:aws:sts::{VENDOR}:assumed-role/AWSReservedSSO_Engineer/alice"),
        "accessKeyId": "ASIAVENDORSIDE000001",
        "sessionContext": {"sessionIssuer": {"type": "Role", "userName": "AWSReservedSSO_Engineer"},
            "attributes": {"creationDate": "2026-03-30T07:40:00Z", "mfaAuthenticated": "true"}}});
    let describe = call(
        "DescribeInstances",
        |_| true,
        "t-describe",
        "2026-03-30T08:10:00Z",
        KEY,
        "alice",
    );
    let start = call(
        "StartSession",
        |r| r["requestParameters"]["target"] == "i-eA1d1296c1dE3Aa1f",
        "t-start",
        "2026-03-30T08:20:00Z",
        KEY,
        "alice",
    );
    let mut denied = call(
        "DescribeInstances",
        |_| true,
        "t-denied",
        "2026-03-30T08:30:00Z",
        KEY,
        "alice",
    );
    denied["eventName"] = json!("DeleteSecurityGroup");
    denied["readOnly"] = json!(false);
    denied["errorCode"] = json!("Client.UnauthorizedOperation");
    denied["errorMessage"] = json!("You are not authorized to perform this operation.");
    // Two calls at the same instant: ordered by event id.
    let mut w2 = call(
        "DescribeInstances",
        |_| true,
        "t-write-b",
        "2026-03-30T08:40:00Z",
        KEY,
        "alice",
    );
    w2["eventName"] = json!("CreateTags");
    w2["readOnly"] = json!(false);
    let mut w1 = w2.clone();
    w1["eventID"] = json!("t-write-a");
    let terminate = call(
        "TerminateSession",
        |r| r["requestParameters"]["sessionId"] == "christophe-wzleysigzmbd6fmkefjqvt5w4u",
        "t-stop",
        "2026-03-30T08:50:00Z",
        KEY,
        "alice",
    );
    // Someone else's session: never in alice's story.
    let other = call(
        "DescribeInstances",
        |_| true,
        "t-other",
        "2026-03-30T08:15:00Z",
        "ASIABOBSESSION000001",
        "bob",
    );
    vec![
        w2, terminate, other, denied, start, describe, vendor, assume, w1,
    ]
}

fn lake(dir: &Path) -> PathBuf {
    let src = dir.join("src");
    let lake = dir.join("lake");
    write(
        &src.join(format!("AWSLogs/{CLIENT}/CloudTrail/eu-west-1/2026/03/30/{CLIENT}_CloudTrail_eu-west-1_20260330T0900Z_a.json.gz")),
        &gzip(json!({"Records": records()}).to_string().as_bytes()),
    );
    let (code, s) = ingest(&src, &lake, &[]);
    assert_eq!(code, 0, "{s}");
    lake
}

fn config() -> Config {
    let mut c = Config::default();
    c.access.vendor_accounts = vec![VENDOR.into()];
    c
}

fn story(lake: &Path, s: Selector) -> Timeline {
    timeline(lake, &config(), &ViewParams::from_config(&config()), &s).expect("timeline")
}

fn ids(t: &Timeline) -> Vec<&str> {
    t.steps.iter().map(|s| s.event_id.as_str()).collect()
}

#[test]
fn a_session_is_stitched_from_assume_role_to_its_ssm_shell() {
    let dir = tempdir();
    let lake = lake(dir.path());
    let t = story(&lake, Selector::Session(KEY.into()));
    assert_eq!(
        ids(&t),
        [
            "t-assume",
            "t-vendor",
            "t-describe",
            "t-start",
            "t-denied",
            "t-write-a",
            "t-write-b",
            "t-stop"
        ]
    );
    // Both sides of the AssumeRole, joined by sharedEventID.
    let assume = &t.steps[0];
    let vendor = &t.steps[1];
    assert_eq!((assume.side, vendor.side), ("client", "vendor"));
    assert_eq!(assume.shared_event_id, vendor.shared_event_id);
    assert!(
        assume.detail.contains("other side: t-vendor"),
        "{}",
        assume.detail
    );
    assert!(
        assume.detail.contains("from account 999988887777")
            && assume.detail.contains("ExternalId continuous.engineer")
            && assume.detail.contains("7200 s"),
        "{}",
        assume.detail
    );
    assert!(
        vendor.detail.contains("MFA yes, 0:20:00 old"),
        "{}",
        vendor.detail
    );
    // The SSM shell session: opened, closed, 30 minutes.
    assert_eq!(t.shell_sessions.len(), 1);
    let sh = &t.shell_sessions[0];
    assert_eq!(sh.ssm_session_id, "christophe-wzleysigzmbd6fmkefjqvt5w4u");
    assert_eq!(sh.target.as_deref(), Some("i-eA1d1296c1dE3Aa1f"));
    assert_eq!(sh.duration_seconds, Some(1800));
    assert!(t.steps[7].detail.contains("closed after 0:30:00"));
    // Flags: the denied call, the writes.
    let by = |id: &str| t.steps.iter().find(|s| s.event_id == id).expect("step");
    assert!(by("t-denied").denied && by("t-denied").write);
    assert!(by("t-write-a").write && !by("t-write-a").denied);
    assert!(!by("t-describe").write && !by("t-describe").denied);
    // The summary heads the story.
    assert_eq!(t.sessions.len(), 1);
    let s = &t.sessions[0];
    assert_eq!(s.session_key, KEY);
    assert_eq!(s.engineer.as_deref(), Some("alice"));
    assert_eq!(s.account.as_deref(), Some(CLIENT));
    assert_eq!(s.duration_seconds, 50 * 60);
    // StartSession and TerminateSession are writes too (readOnly false).
    assert_eq!((s.calls, s.writes, s.denials), (6, 5, 1));
    assert_eq!(s.after_hours, 0);
}

#[test]
fn equal_timestamps_keep_a_stable_order_and_every_selector_finds_the_story() {
    let dir = tempdir();
    let lake = lake(dir.path());
    let first = ids(&story(&lake, Selector::Session(KEY.into())))
        .iter()
        .map(|s| s.to_string())
        .collect::<Vec<_>>();
    for _ in 0..3 {
        let again: Vec<String> = ids(&story(&lake, Selector::Session(KEY.into())))
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(again, first);
    }
    let at = first.iter().position(|i| i == "t-write-a").expect("a");
    assert_eq!(first[at + 1], "t-write-b");

    // By engineer, IP and resource: the same session, the seed marked.
    let by_engineer = story(&lake, Selector::Engineer("alice".into()));
    assert_eq!(
        ids(&by_engineer),
        first.iter().map(String::as_str).collect::<Vec<_>>()
    );
    let by_resource = story(&lake, Selector::Resource("i-eA1d1296c1dE3Aa1f".into()));
    assert_eq!(by_resource.steps.len(), first.len());
    let matched: Vec<&str> = by_resource
        .steps
        .iter()
        .filter(|s| s.matched)
        .map(|s| s.event_id.as_str())
        .collect();
    assert_eq!(matched, ["t-start"]);
    let ip = by_engineer.steps[2].source_ip.clone().expect("ip");
    let by_ip = story(&lake, Selector::Ip(ip));
    assert!(ids(&by_ip).contains(&"t-describe") && ids(&by_ip).contains(&"t-other"));
    // Nothing for an unknown session.
    assert!(
        story(&lake, Selector::Session("ASIANOPE".into()))
            .steps
            .is_empty()
    );

    // The binary: JSON with sessions, shell sessions and events.
    let o = cetrail(
        &[
            "timeline",
            "--lake",
            lake.to_str().expect("p"),
            "--session",
            KEY,
            "--format",
            "json",
        ],
        Path::new("."),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let v: Value = serde_json::from_slice(&o.stdout).expect("json");
    assert_eq!(v["events"].as_array().map(Vec::len), Some(8));
    assert_eq!(v["events"][0]["event_time"], "2026-03-30T08:00:00Z");
    assert_eq!(v["events"][4]["flags"], "*WD");
    assert_eq!(v["shell_sessions"][0]["duration_seconds"], 1800);
    let o = cetrail(
        &["timeline", "--lake", lake.to_str().expect("p")],
        Path::new("."),
    );
    assert_eq!(o.status.code(), Some(2), "a selector is required");
}
