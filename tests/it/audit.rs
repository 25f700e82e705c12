//! The conformance audit (SPEC §7): every control passes on a conforming lake, fails
//! with the right evidence on a lake built from real stratus-red-team records rewritten
//! into CE sessions, and is `unknown` where the trail cannot decide.

use std::path::{Path, PathBuf};

use cetrail::config::Config;
use cetrail::query::audit::{Audit, AuditParams, Status, audit};
use cetrail::query::view::Scanner;
use serde_json::{Value, json};

use crate::util::*;

const CLIENT: &str = "111122223333";
const VENDOR: &str = "999988887777";
const EXT: &str = "continuous.engineer";

fn config() -> Config {
    let mut c = Config::default();
    c.access.vendor_accounts = vec![VENDOR.into()];
    c.access.onboarded_accounts = vec![CLIENT.into()];
    c
}

/// A record placed at `t` in the client account, with a fresh event id.
fn at(mut v: Value, id: &str, t: &str) -> Value {
    v["eventID"] = json!(id);
    v["eventTime"] = json!(t);
    v["recipientAccountId"] = json!(CLIENT);
    v["awsRegion"] = json!("eu-west-1");
    v
}

/// The stratus AssumeRole, rewritten as a cross-account AssumeRole into `role` from
/// `caller`, returning key `key`.
#[allow(clippy::too_many_arguments)]
fn assume(
    id: &str,
    t: &str,
    role: &str,
    eng: &str,
    key: &str,
    ext: Option<&str>,
    secs: u32,
    caller: &str,
) -> Value {
    let mut v = at(find("AssumeRole", |r| r["errorCode"].is_null()), id, t);
    v["userIdentity"] = json!({"type": "AWSAccount", "principalId": format!("AROAVENDOR:{eng}"), "accountId": caller});
    v["requestParameters"] = json!({
        "roleArn": format!("arn:aws:iam::{CLIENT}:role/ce/{role}"),
        "roleSessionName": eng, "durationSeconds": secs
    });
    if let Some(x) = ext {
        v["requestParameters"]["externalId"] = json!(x);
    }
    v["responseElements"]["credentials"]["accessKeyId"] = json!(key);
    v
}

/// The vendor-side record of an AssumeRole (the engineer's own session, with MFA).
fn vendor_side(id: &str, t: &str, role: &str, eng: &str, mfa_at: &str, key: &str) -> Value {
    let mut v = assume(id, t, role, eng, key, Some(EXT), 7200, VENDOR);
    v["recipientAccountId"] = json!(VENDOR);
    v["userIdentity"] = json!({
        "type": "AssumedRole", "principalId": format!("AROASSO:{eng}"),
        "arn": format!("arn:aws:sts::{VENDOR}:assumed-role/AWSReservedSSO_Engineer/{eng}"),
        "accountId": VENDOR, "accessKeyId": "ASIAVENDORSESSION01",
        "sessionContext": {"sessionIssuer": {"type": "Role", "userName": "AWSReservedSSO_Engineer"},
            "attributes": {"creationDate": mfa_at, "mfaAuthenticated": "true"}}
    });
    v
}

/// A stratus record rewritten into a CE session call at `t`.
fn ce_call(
    name: &str,
    id: &str,
    t: &str,
    role: &str,
    eng: &str,
    key: &str,
    created: &str,
) -> Value {
    let v = find(name, |r| r["errorCode"].is_null());
    as_ce_session(at(v, id, t), role, eng, key, created)
}

fn lake(dir: &Path, records: Vec<Value>) -> PathBuf {
    let src = dir.join("src");
    let lake = dir.join("lake");
    let body = json!({ "Records": records }).to_string();
    write(
        &src.join(format!("AWSLogs/{CLIENT}/CloudTrail/eu-west-1/2026/03/30/{CLIENT}_CloudTrail_eu-west-1_20260330T0000Z_a.json.gz")),
        &gzip(body.as_bytes()),
    );
    let (code, s) = ingest(&src, &lake, &[]);
    assert_eq!(code, 0, "{s}");
    lake
}

fn run(lake: &Path) -> Audit {
    audit(lake, &config(), &AuditParams::default()).expect("audit")
}

fn status(a: &Audit, control: &str) -> (Status, u64, String) {
    let r = a
        .results
        .iter()
        .find(|r| r.control == control)
        .unwrap_or_else(|| panic!("no control {control}"));
    (r.status, r.findings, r.reason.clone())
}

fn evidence(a: &Audit, control: &str) -> Vec<String> {
    a.findings
        .iter()
        .filter(|f| f.control == control)
        .map(|f| f.event_id.clone())
        .collect()
}

const KEY: &str = "ASIAGOODSESSION00001";
const CREATED: &str = "2026-03-30T08:00:00Z";

/// A conforming month: cross-account sessions with the external id, short and within
/// limits, seen from both sides, SSM instead of SSH, reads of the setup only, the stack
/// deleted and nothing after but a live session's last calls.
fn conforming() -> Vec<Value> {
    let mut open_443 = ce_call(
        "AuthorizeSecurityGroupIngress",
        "g-443",
        "2026-03-30T08:20:00Z",
        "CE-SRE",
        "alice",
        KEY,
        CREATED,
    );
    open_443["requestParameters"]["fromPort"] = json!(443);
    open_443["requestParameters"]["toPort"] = json!(443);
    let mut read_trail = ce_call(
        "DescribeInstances",
        "g-read",
        "2026-03-30T08:30:00Z",
        "CE-Security",
        "bob",
        "ASIAGOODSESSION00002",
        "2026-03-30T08:25:00Z",
    );
    read_trail["eventSource"] = json!("cloudtrail.amazonaws.com");
    read_trail["eventName"] = json!("GetEventSelectors");
    read_trail["readOnly"] = json!(true);
    let mut delete_stack = at(
        find("DescribeInstances", |_| true),
        "g-del",
        "2026-03-31T10:00:00Z",
    );
    delete_stack["eventSource"] = json!("cloudformation.amazonaws.com");
    delete_stack["eventName"] = json!("DeleteStack");
    delete_stack["readOnly"] = json!(false);
    delete_stack["requestParameters"] = json!({"stackName": "continuous-engineering"});
    vec![
        assume(
            "g-a1",
            "2026-03-30T08:00:00Z",
            "CE-SRE",
            "alice",
            KEY,
            Some(EXT),
            14400,
            VENDOR,
        ),
        vendor_side(
            "g-v1",
            "2026-03-30T08:00:00Z",
            "CE-SRE",
            "alice",
            "2026-03-30T07:30:00Z",
            KEY,
        ),
        ce_call(
            "DescribeInstances",
            "g-c1",
            "2026-03-30T09:00:00Z",
            "CE-SRE",
            "alice",
            KEY,
            CREATED,
        ),
        ce_call(
            "DescribeInstances",
            "g-c2",
            "2026-03-30T11:59:00Z",
            "CE-SRE",
            "alice",
            KEY,
            CREATED,
        ),
        open_443,
        assume(
            "g-a2",
            "2026-03-30T08:25:00Z",
            "CE-Security",
            "bob",
            "ASIAGOODSESSION00002",
            Some(EXT),
            7200,
            VENDOR,
        ),
        read_trail,
        // Stack deleted at 10:00 on the 31st; a session issued at 09:00 ends by 13:00.
        assume(
            "g-a3",
            "2026-03-31T09:00:00Z",
            "CE-ReadOnly",
            "carol",
            "ASIAGOODSESSION00003",
            Some(EXT),
            14400,
            VENDOR,
        ),
        delete_stack,
        ce_call(
            "DescribeInstances",
            "g-c3",
            "2026-03-31T12:30:00Z",
            "CE-ReadOnly",
            "carol",
            "ASIAGOODSESSION00003",
            "2026-03-31T09:00:00Z",
        ),
    ]
}

#[test]
fn every_control_passes_on_a_conforming_trail() {
    let dir = tempdir();
    let a = run(&lake(dir.path(), conforming()));
    let ids: Vec<&str> = a.results.iter().map(|r| r.control).collect();
    assert_eq!(
        ids,
        [
            "external-id",
            "session-duration",
            "vendor-accounts",
            "mfa-age",
            "no-long-lived-keys",
            "no-ssh",
            "no-passwords",
            "onboarded-accounts",
            "post-revocation",
            "no-tampering"
        ]
    );
    for r in &a.results {
        assert_eq!(r.status, Status::Pass, "{}: {}", r.control, r.reason);
        assert_eq!(r.findings, 0, "{}", r.control);
    }
    assert!(a.findings.is_empty());
    assert!(!a.failed());
    let (_, _, reason) = status(&a, "post-revocation");
    assert!(reason.contains("stack deleted in 1 account"), "{reason}");
    let (_, _, reason) = status(&a, "mfa-age");
    assert!(reason.starts_with("1 AssumeRole"), "{reason}");
}

#[test]
fn every_control_fails_with_its_evidence() {
    let dir = tempdir();
    let bad_key = "ASIABADSESSION000001";
    let created = "2026-03-30T08:00:00Z";
    let mut records = conforming();
    let mut sec_open_22 = ce_call(
        "AuthorizeSecurityGroupIngress",
        "b-22",
        "2026-03-30T09:10:00Z",
        "CE-DevOps",
        "dave",
        bad_key,
        created,
    );
    sec_open_22["requestParameters"]["cidrIp"] = json!("0.0.0.0/0");
    let mut other_account = ce_call(
        "DescribeInstances",
        "b-acct",
        "2026-03-30T09:40:00Z",
        "CE-DevOps",
        "dave",
        bad_key,
        created,
    );
    other_account["recipientAccountId"] = json!("222233334444");
    let mut akia = vendor_side(
        "b-akia",
        "2026-03-30T07:00:00Z",
        "CE-ReadOnly",
        "erin",
        "2026-03-30T06:50:00Z",
        "ASIAERINSESSION00001",
    );
    akia["userIdentity"]["accessKeyId"] = json!("AKIAVENDORLONGLIVED1");
    records.extend([
        // external-id: no external id; vendor-accounts: from an unknown account.
        assume(
            "b-noext",
            "2026-03-30T08:05:00Z",
            "CE-DevOps",
            "dave",
            bad_key,
            None,
            3600,
            VENDOR,
        ),
        assume(
            "b-caller",
            "2026-03-30T08:06:00Z",
            "CE-Data",
            "mallory",
            "ASIAMALLORY000000001",
            Some(EXT),
            3600,
            "123456789012",
        ),
        // session-duration: 12 h requested; a session used 5 h after it began.
        assume(
            "b-12h",
            "2026-03-30T08:07:00Z",
            "CE-SRE",
            "frank",
            "ASIAFRANK00000000001",
            Some(EXT),
            43200,
            VENDOR,
        ),
        ce_call(
            "DescribeInstances",
            "b-late",
            "2026-03-30T13:05:00Z",
            "CE-SRE",
            "frank",
            "ASIAFRANK00000000001",
            "2026-03-30T08:07:00Z",
        ),
        // mfa-age: CE-Admin with MFA 2 h old (limit 1 h).
        vendor_side(
            "b-mfa",
            "2026-03-30T10:00:00Z",
            "CE-Admin",
            "grace",
            "2026-03-30T08:00:00Z",
            "ASIAGRACE00000000001",
        ),
        // no-long-lived-keys: an AKIA key, and CreateAccessKey from a CE session.
        akia,
        ce_call(
            "CreateAccessKey",
            "b-cak",
            "2026-03-30T09:15:00Z",
            "CE-DevOps",
            "dave",
            bad_key,
            created,
        ),
        // no-ssh: port 22 opened, EC2 Instance Connect key pushed.
        sec_open_22,
        ce_call(
            "SendSSHPublicKey",
            "b-ssh",
            "2026-03-30T09:20:00Z",
            "CE-DevOps",
            "dave",
            bad_key,
            created,
        ),
        // no-passwords.
        ce_call(
            "CreateLoginProfile",
            "b-pwd",
            "2026-03-30T09:25:00Z",
            "CE-DevOps",
            "dave",
            bad_key,
            created,
        ),
        // onboarded-accounts.
        other_account,
        // no-tampering: logging stopped and event selectors changed by a CE session.
        ce_call(
            "StopLogging",
            "b-stop",
            "2026-03-30T09:30:00Z",
            "CE-DevOps",
            "dave",
            bad_key,
            created,
        ),
        ce_call(
            "PutEventSelectors",
            "b-sel",
            "2026-03-30T09:31:00Z",
            "CE-DevOps",
            "dave",
            bad_key,
            created,
        ),
        // post-revocation: AssumeRole 1 h after the deletion, activity 5 h after.
        assume(
            "b-post-a",
            "2026-03-31T11:00:00Z",
            "CE-SRE",
            "alice",
            "ASIAPOST000000000001",
            Some(EXT),
            3600,
            VENDOR,
        ),
        ce_call(
            "DescribeInstances",
            "b-post-c",
            "2026-03-31T15:00:00Z",
            "CE-ReadOnly",
            "carol",
            "ASIAGOODSESSION00003",
            "2026-03-31T09:00:00Z",
        ),
    ]);
    let a = run(&lake(dir.path(), records));
    let expect: [(&str, &[&str]); 10] = [
        ("external-id", &["b-noext"]),
        // 12 h requested; frank's session still used 4 h 58 min after… past the limit?
        ("session-duration", &["b-12h", "b-late", "b-post-c"]),
        ("vendor-accounts", &["b-caller"]),
        ("mfa-age", &["b-mfa"]),
        ("no-long-lived-keys", &["b-akia", "b-cak"]),
        ("no-ssh", &["b-22", "b-ssh"]),
        ("no-passwords", &["b-pwd"]),
        ("onboarded-accounts", &["b-acct"]),
        ("post-revocation", &["b-post-a", "b-post-c"]),
        ("no-tampering", &["b-stop", "b-sel"]),
    ];
    for (control, ids) in expect {
        let (st, n, reason) = status(&a, control);
        assert_eq!(st, Status::Fail, "{control}: {reason}");
        assert_eq!(evidence(&a, control), ids, "{control}: {reason}");
        assert_eq!(n as usize, ids.len(), "{control}");
    }
    assert!(a.failed());

    // The sessions' use read by polars' scan (the fallback of the direct reader):
    // the same audit.
    let at = dir.path().join("lake");
    let by_polars = audit(
        &at,
        &config(),
        &AuditParams {
            scanner: Scanner::Polars,
            ..AuditParams::default()
        },
    )
    .expect("audit");
    assert_eq!(by_polars.results, a.results);
    assert_eq!(by_polars.findings, a.findings);

    // At most one finding kept per control: the earliest, and the counts exact.
    let first = audit(
        &at,
        &config(),
        &AuditParams {
            max_findings: Some(1),
            ..AuditParams::default()
        },
    )
    .expect("audit");
    assert_eq!(first.results, a.results);
    assert_eq!(first.findings_total(), a.findings.len() as u64);
    assert_eq!(
        first.findings.len(),
        expect.len(),
        "one per failing control"
    );
    for kept in &first.findings {
        let earliest = a
            .findings
            .iter()
            .filter(|f| f.control == kept.control)
            .min_by_key(|f| (f.event_time, f.event_id.clone()))
            .expect("findings");
        assert_eq!(kept, earliest, "{}: the earliest is kept", kept.control);
    }

    // The binary: exit status 1, findings listed with their event ids.
    let o = cetrail(
        &[
            "audit",
            "--lake",
            dir.path().join("lake").to_str().expect("p"),
            "--findings",
            "--format",
            "json",
        ],
        Path::new("."),
    );
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let v: Value = serde_json::from_slice(&o.stdout).expect("json");
    // Default configuration: no vendor or onboarded accounts configured → unknown.
    let st = |c: &str| {
        v["results"]
            .as_array()
            .and_then(|a| a.iter().find(|r| r["control"] == c))
            .map(|r| r["status"].clone())
    };
    assert_eq!(st("vendor-accounts"), Some(json!("unknown")));
    assert_eq!(st("onboarded-accounts"), Some(json!("unknown")));
    assert_eq!(st("no-ssh"), Some(json!("fail")));
    let ids: Vec<&str> = v["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .filter_map(|f| f["event_id"].as_str())
        .collect();
    assert!(ids.contains(&"b-stop") && ids.contains(&"b-22"));
}

#[test]
fn controls_the_trail_cannot_decide_are_unknown() {
    let dir = tempdir();
    // A client-only trail (no vendor side: MFA invisible) whose AssumeRole records carry
    // no externalId field at all.
    let records = vec![
        assume(
            "u-a1",
            "2026-03-30T08:00:00Z",
            "CE-SRE",
            "alice",
            KEY,
            None,
            3600,
            VENDOR,
        ),
        ce_call(
            "DescribeInstances",
            "u-c1",
            "2026-03-30T08:10:00Z",
            "CE-SRE",
            "alice",
            KEY,
            CREATED,
        ),
    ];
    let a = run(&lake(dir.path(), records));
    let (st, _, reason) = status(&a, "external-id");
    assert_eq!(st, Status::Unknown, "{reason}");
    assert!(reason.contains("does not show it"), "{reason}");
    let (st, _, reason) = status(&a, "mfa-age");
    assert_eq!(st, Status::Unknown, "{reason}");
    assert!(reason.contains("client-only"), "{reason}");
    assert!(!a.failed());

    // A lake with no CE session at all: the session controls cannot be judged.
    let dir = tempdir();
    let mut other = at(
        find("DescribeInstances", |_| true),
        "u-x",
        "2026-03-30T08:00:00Z",
    );
    other["userIdentity"] = json!({"type": "IAMUser", "accountId": CLIENT, "arn": "arn:aws:iam::111122223333:user/ops"});
    let src = dir.path().join("src");
    write(
        &src.join(format!("AWSLogs/{CLIENT}/CloudTrail/eu-west-1/2026/03/30/{CLIENT}_CloudTrail_eu-west-1_20260330T0000Z_b.json.gz")),
        &gzip(json!({"Records": [other]}).to_string().as_bytes()),
    );
    let lake = dir.path().join("lake");
    assert_eq!(ingest(&src, &lake, &[]).0, 0);
    let a = run(&lake);
    for c in [
        "external-id",
        "session-duration",
        "vendor-accounts",
        "mfa-age",
    ] {
        assert_eq!(status(&a, c).0, Status::Unknown, "{c}");
    }
    for c in ["no-ssh", "no-passwords", "no-tampering", "post-revocation"] {
        assert_eq!(status(&a, c).0, Status::Pass, "{c}");
    }
}
