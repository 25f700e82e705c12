//! Derived fields and the CE rule on real record shapes (stratus-red-team), with
//! identities rewritten into CE sessions where a CE event is needed.

use cetrail::config::Config;
use cetrail::record::filter::Prefilter;
use cetrail::record::{EventRow, Kind, ParseOptions, parse_log, parse_record};
use serde_json::{Value, json};

use crate::util::{as_ce_session, find, stratus};

fn parse_with(v: &Value, config: &Config, all: bool) -> Option<EventRow<'static>> {
    let text: &'static str = Box::leak(v.to_string().into_boxed_str());
    let pf = Box::leak(Box::new(Prefilter::new(config)));
    let opts = ParseOptions {
        config,
        prefilter: pf,
        all_events: all,
        max_record_bytes: 1 << 20,
    };
    parse_record(text, &opts).expect("record parses")
}

fn parse(v: &Value) -> Option<EventRow<'static>> {
    parse_with(v, &Config::default(), false)
}

#[test]
fn every_stratus_record_parses_with_all_events() {
    let config = Config::default();
    let pf = Prefilter::new(&config);
    let opts = ParseOptions {
        config: &config,
        prefilter: &pf,
        all_events: true,
        max_record_bytes: 1 << 20,
    };
    let mut total = 0;
    for (name, records) in stratus() {
        let file = json!({ "Records": records }).to_string();
        let parsed = parse_log(file.as_bytes(), &opts).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(parsed.bad_records, 0, "{name}: {:?}", parsed.record_errors);
        assert_eq!(parsed.rows.len() as u64, parsed.records, "{name}");
        assert!(
            parsed
                .rows
                .iter()
                .all(|r| r.kind == Some(Kind::Other) || r.kind == Some(Kind::Infra))
        );
        total += parsed.records;
    }
    assert_eq!(total, 310);
}

#[test]
fn stratus_tampering_calls_are_infra_even_without_ce_roles() {
    for name in ["StopLogging", "DeleteTrail", "PutEventSelectors"] {
        let r = parse(&find(name, |_| true)).unwrap_or_else(|| panic!("{name} not kept"));
        assert_eq!(r.kind, Some(Kind::Infra), "{name}");
        assert_eq!(r.role, None);
    }
    // Nothing else in the real records is a CE event.
    let kept: usize = stratus()
        .into_iter()
        .flat_map(|(_, r)| r)
        .filter(|r| parse(r).is_some())
        .count();
    assert_eq!(kept, 3);
}

#[test]
fn cross_account_assume_role_into_ce_role() {
    let mut v = find("AssumeRole", |r| r["errorCode"].is_null());
    v["userIdentity"] = json!({"type": "AWSAccount", "principalId": "AROAVENDOR:alice", "accountId": "999988887777"});
    v["requestParameters"]["roleArn"] = json!("arn:aws:iam::457448411975:role/ce/CE-SRE");
    v["requestParameters"]["roleSessionName"] = json!("alice");
    v["requestParameters"]["externalId"] = json!("continuous.engineer");
    v["requestParameters"]["durationSeconds"] = json!(14400);
    let r = parse(&v).expect("kept");
    assert_eq!(r.kind, Some(Kind::Assume));
    assert_eq!(r.role.as_deref(), Some("CE-SRE"));
    assert_eq!(r.engineer.as_deref(), Some("alice"));
    assert_eq!(r.session_key.as_deref(), Some("ASIA7RQR64ZW9JXKWPUO"));
    assert_eq!(r.assumed_key_id.as_deref(), Some("ASIA7RQR64ZW9JXKWPUO"));
    assert_eq!(r.external_id.as_deref(), Some("continuous.engineer"));
    assert_eq!(r.duration_seconds, Some(14400));
    assert_eq!(r.identity_account.as_deref(), Some("999988887777"));
    assert_eq!(r.identity_type.as_deref(), Some("AWSAccount"));
    assert_eq!(r.tls_version.as_deref(), Some("TLSv1.3"));
    assert_eq!(r.resources.as_ref().map(Vec::len), Some(1));
    assert!(!r.is_denied && !r.is_error && !r.is_write);
    assert_eq!(r.read_only, Some(true));
}

#[test]
fn denied_assume_role_read_from_error_message() {
    let mut v = find("AssumeRole", |r| r["errorCode"] == "AccessDenied");
    assert!(v["requestParameters"].is_null());
    // The original names a non-CE role: not kept.
    assert!(parse(&v).is_none());
    let msg = v["errorMessage"].as_str().expect("message").replace(
        "role/stratus-red-team-ec2-get-password-data-role",
        "role/ce/CE-Admin",
    );
    v["errorMessage"] = json!(msg);
    let r = parse(&v).expect("kept");
    assert_eq!(r.kind, Some(Kind::Assume));
    assert_eq!(r.role.as_deref(), Some("CE-Admin"));
    assert_eq!(r.engineer, None);
    assert_eq!(r.session_key, None);
    assert!(r.is_denied && r.is_error);
    assert_eq!(r.request_parameters, None);
    // A look-alike in the error message is not a CE role.
    let mut w = v.clone();
    w["errorMessage"] = json!(msg.replace("CE-Admin", "CE-Admins-Legacy"));
    assert!(parse(&w).is_none());
}

#[test]
fn start_session_in_a_ce_session() {
    let v = find("StartSession", |_| true);
    let v = as_ce_session(
        v,
        "CE-SRE",
        "bob",
        "ASIAEXAMPLEKEY000001",
        "2024-08-01T12:00:00Z",
    );
    let r = parse(&v).expect("kept");
    assert_eq!(r.kind, Some(Kind::Activity));
    assert_eq!(r.role.as_deref(), Some("CE-SRE"));
    assert_eq!(r.engineer.as_deref(), Some("bob"));
    assert_eq!(r.target_instance.as_deref(), Some("i-eA1d1296c1dE3Aa1f"));
    assert_eq!(
        r.ssm_session_id.as_deref(),
        Some("christophe-wzleysigzmbd6fmkefjqvt5w4u")
    );
    assert_eq!(r.session_key.as_deref(), Some("ASIAEXAMPLEKEY000001"));
    assert_eq!(r.mfa_authenticated, Some(false));
    assert!(r.is_write);
    let t = find("TerminateSession", |_| true);
    let t = as_ce_session(
        t,
        "CE-SRE",
        "bob",
        "ASIAEXAMPLEKEY000001",
        "2024-08-01T12:00:00Z",
    );
    let r = parse(&t).expect("kept");
    assert_eq!(
        r.ssm_session_id.as_deref(),
        Some("christophe-wzleysigzmbd6fmkefjqvt5w4u")
    );
    assert_eq!(r.target_instance, None);
}

#[test]
fn unauthorized_operation_is_denied() {
    let v = find("GetPasswordData", |r| {
        r["errorCode"]
            .as_str()
            .is_some_and(|c| c.ends_with("UnauthorizedOperation"))
    });
    let v = as_ce_session(
        v,
        "CE-ReadOnly",
        "carla",
        "ASIAEXAMPLEKEY000002",
        "2024-08-01T12:00:00Z",
    );
    let r = parse(&v).expect("kept");
    assert!(r.is_denied && r.is_error);
    assert_eq!(
        r.error_code.as_deref(),
        Some("Client.UnauthorizedOperation")
    );
}

#[test]
fn look_alike_roles_and_case_are_not_ce() {
    let v = find("DescribeInstances", |r| r["errorCode"].is_null());
    for role in ["CE-Admins-Legacy", "ce-admin", "CE-Adm", "XCE-Admin"] {
        let w = as_ce_session(
            v.clone(),
            role,
            "eve",
            "ASIAEXAMPLEKEY000003",
            "2024-08-01T12:00:00Z",
        );
        assert!(parse(&w).is_none(), "{role} must not match");
    }
    let w = as_ce_session(
        v,
        "CE-Admin",
        "eve",
        "ASIAEXAMPLEKEY000003",
        "2024-08-01T12:00:00Z",
    );
    assert_eq!(
        parse(&w).and_then(|r| r.role.map(|s| s.into_owned())),
        Some("CE-Admin".into())
    );
}

#[test]
fn role_from_arn_when_session_issuer_is_missing() {
    let v = find("DescribeInstances", |r| r["errorCode"].is_null());
    let mut w = as_ce_session(
        v,
        "CE-Data",
        "dora",
        "ASIAEXAMPLEKEY000004",
        "2024-08-01T12:00:00Z",
    );
    w["userIdentity"]["sessionContext"]
        .as_object_mut()
        .expect("ctx")
        .remove("sessionIssuer");
    let r = parse(&w).expect("kept");
    assert_eq!(r.role.as_deref(), Some("CE-Data"));
}

#[test]
fn composite_session_key_without_temporary_key() {
    let v = find("DescribeInstances", |r| r["errorCode"].is_null());
    // Both creationDate formats give the same key.
    let a = as_ce_session(v.clone(), "CE-SRE", "bob", "", "2024-08-01T12:00:00Z");
    let b = as_ce_session(v.clone(), "CE-SRE", "bob", "", "20240801T120000Z");
    let ka = parse(&a).and_then(|r| r.session_key.map(|s| s.into_owned()));
    let kb = parse(&b).and_then(|r| r.session_key.map(|s| s.into_owned()));
    assert_eq!(ka.as_deref(), Some("CE-SRE/bob/2024-08-01T12:00:00Z"));
    assert_eq!(ka, kb);
    // A long-lived key is not a session key; no creationDate: no session.
    let mut c = as_ce_session(v, "CE-SRE", "bob", "AKIAEXAMPLE", "2024-08-01T12:00:00Z");
    c["userIdentity"]["sessionContext"]["attributes"]
        .as_object_mut()
        .expect("attrs")
        .remove("creationDate");
    assert_eq!(parse(&c).expect("kept").session_key, None);
}

#[test]
fn ce_session_assuming_another_ce_role_is_assume() {
    let mut v = find("AssumeRole", |r| r["errorCode"].is_null());
    v = as_ce_session(
        v,
        "CE-SRE",
        "grace",
        "ASIAEXAMPLEKEY000005",
        "2024-07-30T21:00:00Z",
    );
    v["requestParameters"]["roleArn"] = json!("arn:aws:iam::457448411975:role/CE-ReadOnly");
    v["requestParameters"]["roleSessionName"] = json!("grace");
    let r = parse(&v).expect("kept");
    assert_eq!(r.kind, Some(Kind::Assume));
    assert_eq!(r.role.as_deref(), Some("CE-ReadOnly"));
    assert_eq!(r.external_id, None);
    // The new key, not the caller's, is the session key.
    assert_eq!(r.session_key.as_deref(), Some("ASIA7RQR64ZW9JXKWPUO"));
}

#[test]
fn ce_role_changing_ce_iam_is_activity_and_others_are_infra() {
    let v = find("AttachRolePolicy", |_| true);
    let mut w = v.clone();
    w["requestParameters"] =
        json!({"roleName": "CE-Admin", "policyArn": "arn:aws:iam::aws:policy/AdministratorAccess"});
    let r = parse(&w).expect("kept");
    assert_eq!(
        (r.kind, r.role.as_deref()),
        (Some(Kind::Infra), Some("CE-Admin"))
    );
    let mut d = v.clone();
    d["requestParameters"] =
        json!({"roleName": "app", "policyArn": "arn:aws:iam::1:policy/CE-DenyProd"});
    assert_eq!(parse(&d).expect("kept").kind, Some(Kind::Infra));
    let s = as_ce_session(
        w,
        "CE-Admin",
        "henrik",
        "ASIAEXAMPLEKEY000006",
        "2024-08-01T12:00:00Z",
    );
    let r = parse(&s).expect("kept");
    assert_eq!(
        (r.kind, r.role.as_deref()),
        (Some(Kind::Activity), Some("CE-Admin"))
    );
    let mut other = v;
    other["requestParameters"] =
        json!({"roleName": "CE-Admins-Legacy", "policyArn": "arn:aws:iam::aws:policy/X"});
    assert!(parse(&other).is_none());
}

#[test]
fn s3_and_rds_fields() {
    let v = find("DescribeInstances", |r| r["errorCode"].is_null());
    let mut s3 = as_ce_session(
        v.clone(),
        "CE-Data",
        "dora",
        "ASIAEXAMPLEKEY000007",
        "2024-08-01T12:00:00Z",
    );
    s3["eventSource"] = json!("s3.amazonaws.com");
    s3["eventName"] = json!("GetObject");
    s3["requestParameters"] = json!({"bucketName": "exports", "Key": "a/b.csv"});
    let r = parse(&s3).expect("kept");
    assert_eq!(
        (r.bucket.as_deref(), r.object_key.as_deref()),
        (Some("exports"), Some("a/b.csv"))
    );
    let mut rds = s3.clone();
    rds["eventSource"] = json!("rdsdata.amazonaws.com");
    rds["eventName"] = json!("ExecuteStatement");
    rds["requestParameters"] = json!({"resourceArn": "arn:aws:rds:eu-west-1:1:cluster:analytics"});
    let r = parse(&rds).expect("kept");
    assert_eq!(r.db.as_deref(), Some("analytics"));
    assert_eq!(r.bucket, None);
    rds["eventSource"] = json!("rds.amazonaws.com");
    rds["requestParameters"] =
        json!({"dBInstanceIdentifier": "orders-db", "dBClusterIdentifier": "c"});
    assert_eq!(parse(&rds).expect("kept").db.as_deref(), Some("orders-db"));
}

#[test]
fn missing_read_only_is_neither_read_nor_write() {
    let v = find("DescribeInstances", |r| r["errorCode"].is_null());
    let mut w = as_ce_session(
        v,
        "CE-SRE",
        "bob",
        "ASIAEXAMPLEKEY000008",
        "2024-08-01T12:00:00Z",
    );
    w.as_object_mut().expect("obj").remove("readOnly");
    let r = parse(&w).expect("kept");
    assert_eq!(r.read_only, None);
    assert!(!r.is_write);
}

#[test]
fn configured_role_names_are_used() {
    let mut config = Config::default();
    config.roles[0].name = "Vendor-Read".into();
    let v = find("DescribeInstances", |r| r["errorCode"].is_null());
    let w = as_ce_session(
        v.clone(),
        "Vendor-Read",
        "x",
        "ASIAEXAMPLEKEY000009",
        "2024-08-01T12:00:00Z",
    );
    assert!(parse_with(&w, &config, false).is_some());
    let old = as_ce_session(
        v,
        "CE-ReadOnly",
        "x",
        "ASIAEXAMPLEKEY000009",
        "2024-08-01T12:00:00Z",
    );
    assert!(parse_with(&old, &config, false).is_none());
}
