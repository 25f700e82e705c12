//! Our own Sigma rules (`queries/rules/`): each loads as a rule the engine runs, and
//! each has an event that hits it and a near miss that does not (SPEC §12).

use std::path::{Path, PathBuf};

use cetrail::detect::{Loaded, Rule, load};
use serde_json::{Value, json};

fn rules_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("queries/rules")
}

/// Our rule files, sorted.
fn rule_files() -> Vec<PathBuf> {
    yml_files(&rules_dir())
}

fn our_rule(file: &str) -> Rule {
    rule_at(&rules_dir().join(file))
}

fn rule_at(path: &Path) -> Rule {
    let text = std::fs::read_to_string(path).expect("rule file");
    match load(path, &text).expect("valid Sigma").pop() {
        Some(Loaded::Rule(r)) => *r,
        other => panic!("{} is not run by the engine: {other:?}", path.display()),
    }
}

/// The `.yml` files of `dir`, sorted.
fn yml_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("rules folder")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "yml"))
        .collect();
    files.sort();
    files
}

/// A CloudTrail record made by `role` (an assumed-role session).
fn by(role: &str, source: &str, name: &str, request: Value) -> Value {
    json!({
        "eventVersion": "1.09",
        "eventSource": source,
        "eventName": name,
        "userIdentity": {
            "type": "AssumedRole",
            "arn": format!("arn:aws:sts::111122223333:assumed-role/{role}/alice.martin"),
            "sessionContext": {"sessionIssuer": {"type": "Role", "userName": role}}
        },
        "requestParameters": request,
        "eventTime": "2026-10-01T10:00:00Z",
        "awsRegion": "eu-west-1",
        "recipientAccountId": "111122223333",
        "eventType": "AwsApiCall",
    })
}

#[test]
fn every_rule_of_ours_loads_and_is_run() {
    let files = rule_files();
    assert!(files.len() >= 4, "{files:?}");
    let mut ids = std::collections::BTreeSet::new();
    for f in files {
        let name = f
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("")
            .to_string();
        let r = our_rule(&name);
        assert!(ids.insert(r.id.clone()), "{name}: id {} used twice", r.id);
        // What the access model forbids is high or critical; what needs a look at
        // what CloudTrail does not carry (an instance's tags) is medium.
        assert!(
            ["medium", "high", "critical"].contains(&r.level.as_str()),
            "{name}"
        );
        assert!(r.tags.iter().any(|t| t.starts_with("attack.")), "{name}");
    }
}

#[test]
fn long_lived_credentials() {
    let r = our_rule("ce_long_lived_credentials.yml");
    let iam = "iam.amazonaws.com";
    assert!(r.matches(&by(
        "CE-Admin",
        iam,
        "CreateAccessKey",
        json!({"userName": "x"})
    )));
    assert!(r.matches(&by("CE-DevOps", iam, "CreateLoginProfile", json!({}))));
    // Near misses: another role, another call.
    assert!(!r.matches(&by("Admin", iam, "CreateAccessKey", json!({}))));
    assert!(!r.matches(&by("CE-Admin", iam, "ListAccessKeys", json!({}))));
}

#[test]
fn ce_admin_at_night() {
    let r = our_rule("ce_admin_at_night.yml");
    let at = |role: &str, time: &str| {
        let mut e = by(role, "ec2.amazonaws.com", "DescribeInstances", json!({}));
        e["eventTime"] = json!(time);
        e
    };
    assert!(r.matches(&at("CE-Admin", "2026-10-01T23:15:00Z")));
    assert!(r.matches(&at("CE-Admin", "2026-10-01T05:59:59Z")));
    // Near misses: the working day, another role at night.
    assert!(!r.matches(&at("CE-Admin", "2026-10-01T06:00:00Z")));
    assert!(!r.matches(&at("CE-Admin", "2026-10-01T19:59:59Z")));
    assert!(!r.matches(&at("CE-SRE", "2026-10-01T23:15:00Z")));
}

#[test]
fn ce_data_beyond_database_instances() {
    let r = our_rule("ce_data_beyond_database_instances.yml");
    let ec2 = "ec2.amazonaws.com";
    let mut reboot = by(
        "CE-Data",
        ec2,
        "RebootInstances",
        json!({"instancesSet": {}}),
    );
    reboot["readOnly"] = json!(false);
    assert!(r.matches(&reboot));
    assert!(r.matches(&by(
        "CE-Data",
        "ssm.amazonaws.com",
        "StartSession",
        json!({"target": "i-0abc"})
    )));
    assert!(r.matches(&by("CE-Data", ec2, "DescribeInstances", json!({}))));
    // Near misses: the listing with the database filter (among others), a read, another
    // role changing an instance.
    let filtered = json!({"filterSet": {"items": [
        {"name": "instance-state-name", "valueSet": {"items": [{"value": "running"}]}},
        {"name": "tag:database", "valueSet": {"items": [{"value": "true"}]}}
    ]}});
    assert!(!r.matches(&by("CE-Data", ec2, "DescribeInstances", filtered)));
    let mut read = by("CE-Data", ec2, "DescribeVolumes", json!({}));
    read["readOnly"] = json!(true);
    assert!(!r.matches(&read));
    let mut other = reboot.clone();
    other["userIdentity"]["sessionContext"]["sessionIssuer"]["userName"] = json!("CE-SRE");
    assert!(!r.matches(&other));
}

#[test]
fn ssh_access() {
    let r = our_rule("ce_ssh_access.yml");
    let ec2 = "ec2.amazonaws.com";
    assert!(r.matches(&by(
        "CE-SRE",
        "ec2-instance-connect.amazonaws.com",
        "SendSSHPublicKey",
        json!({"instanceId": "i-1"})
    )));
    let ingress = |from: u16, to: u16| {
        json!({"groupId": "sg-1", "ipPermissions": {"items": [
            {"ipProtocol": "tcp", "fromPort": from, "toPort": to}
        ]}})
    };
    assert!(r.matches(&by(
        "CE-DevOps",
        ec2,
        "AuthorizeSecurityGroupIngress",
        ingress(22, 22)
    )));
    assert!(r.matches(&by(
        "CE-DevOps",
        ec2,
        "AuthorizeSecurityGroupIngress",
        ingress(0, 1024)
    )));
    // The older form: one range at the top of the request.
    let flat = |port: u16| json!({"groupId": "sg-1", "ipProtocol": "tcp", "fromPort": port, "toPort": port});
    assert!(r.matches(&by(
        "CE-DevOps",
        ec2,
        "AuthorizeSecurityGroupIngress",
        flat(22)
    )));
    assert!(!r.matches(&by(
        "CE-DevOps",
        ec2,
        "AuthorizeSecurityGroupIngress",
        flat(80)
    )));
    // Near misses: port 443, and SSM (the allowed way in).
    assert!(!r.matches(&by(
        "CE-DevOps",
        ec2,
        "AuthorizeSecurityGroupIngress",
        ingress(443, 443)
    )));
    assert!(!r.matches(&by(
        "CE-SRE",
        "ssm.amazonaws.com",
        "StartSession",
        json!({"target": "i-1"})
    )));
}

#[test]
fn trail_tampering() {
    let r = our_rule("ce_trail_tampering.yml");
    let ct = "cloudtrail.amazonaws.com";
    assert!(r.matches(&by(
        "CE-Security",
        ct,
        "StopLogging",
        json!({"name": "main"})
    )));
    assert!(r.matches(&by("CE-Admin", ct, "PutEventSelectors", json!({}))));
    assert!(
        !r.matches(&by("CE-Security", ct, "LookupEvents", json!({}))),
        "reading is fine"
    );
    assert!(
        !r.matches(&by("OrgAdmin", ct, "StopLogging", json!({}))),
        "not a CE role"
    );
}

#[test]
fn ce_roles_and_deny_prod_modified() {
    let r = our_rule("ce_roles_modified.yml");
    let iam = "iam.amazonaws.com";
    assert!(r.matches(&by(
        "CE-Admin",
        iam,
        "UpdateAssumeRolePolicy",
        json!({"roleName": "CE-ReadOnly", "policyDocument": "{}"})
    )));
    assert!(r.matches(&by(
        "CE-DevOps",
        iam,
        "DetachRolePolicy",
        json!({"roleName": "app", "policyArn": "arn:aws:iam::111122223333:policy/CE-DenyProd"})
    )));
    // Near misses: the client's own role, and a CE role changing an unrelated role.
    assert!(!r.matches(&by(
        "Admin",
        iam,
        "DeleteRole",
        json!({"roleName": "CE-Data"})
    )));
    assert!(!r.matches(&by(
        "CE-DevOps",
        iam,
        "AttachRolePolicy",
        json!({"roleName": "app-role", "policyArn": "arn:aws:iam::aws:policy/ReadOnlyAccess"})
    )));
}

/// `record` as a call of a CE-Admin session (a new event id), so that real records
/// exercise our rules' CE-role tests.
fn as_ce_call(record: &Value) -> Value {
    let mut ce = record.clone();
    let id = record["eventID"].as_str().unwrap_or("").to_string();
    ce["eventID"] = json!(format!("{id}-ce"));
    ce["userIdentity"] = json!({
        "type": "AssumedRole",
        "arn": "arn:aws:sts::111122223333:assumed-role/CE-Admin/alice.martin",
        "sessionContext": {"sessionIssuer": {"type": "Role", "userName": "CE-Admin"}}
    });
    ce
}

#[test]
fn our_rules_and_the_test_corpus_select_the_same_events_as_pysigma_over_duckdb() {
    let Some(python) = crate::util::python_with("sigma_backend_duckdb") else {
        eprintln!("SKIPPED Sigma oracle test: no Python with pysigma-backend-duckdb (run .ci/run)");
        return;
    };
    // The 310 real stratus-red-team records, each also rewritten as a CE-Admin call,
    // and hand-made CE events for what stratus does not do.
    let mut events: Vec<Value> = Vec::new();
    for (_, records) in crate::util::stratus() {
        for r in records {
            events.push(as_ce_call(&r));
            events.push(r);
        }
    }
    let iam = "iam.amazonaws.com";
    let made = [
        by(
            "CE-Admin",
            iam,
            "UpdateAssumeRolePolicy",
            json!({"roleName": "CE-ReadOnly"}),
        ),
        by(
            "CE-DevOps",
            iam,
            "DetachRolePolicy",
            json!({"roleName": "app", "policyArn": "arn:aws:iam::111122223333:policy/CE-DenyProd"}),
        ),
        by("Admin", iam, "DeleteRole", json!({"roleName": "CE-Data"})),
        by(
            "CE-Data",
            "ssm.amazonaws.com",
            "StartSession",
            json!({"target": "i-0abc"}),
        ),
        by(
            "CE-Data",
            "ec2.amazonaws.com",
            "DescribeInstances",
            json!({"filterSet": {"items": [{"name": "tag:database", "valueSet": {"items": [{"value": "true"}]}}]}}),
        ),
        // pySigma's SQL reads `not <test on a field the event lacks>` as NULL (SQL's
        // logic), where Sigma and cetrail read it as true: the oracle's events carry
        // the field (the unit test of the rule covers the event without it).
        by(
            "CE-Data",
            "ec2.amazonaws.com",
            "DescribeInstances",
            json!({"filterSet": {"items": [{"name": "instance-state-name", "valueSet": {"items": [{"value": "running"}]}}]}}),
        ),
        by(
            "CE-DevOps",
            iam,
            "AttachRolePolicy",
            json!({"roleName": "app-role", "policyArn": "arn:aws:iam::aws:policy/ReadOnlyAccess"}),
        ),
    ];
    for (i, mut e) in made.into_iter().enumerate() {
        e["eventID"] = json!(format!("made-{i}"));
        events.push(e);
    }
    let dir = crate::util::tempdir();
    let jsonl = dir.path().join("events.jsonl");
    let text: Vec<String> = events.iter().map(|e| e.to_string()).collect();
    std::fs::write(&jsonl, text.join("\n")).expect("write events");
    // Our rules, and test rules exercising every modifier and condition form.
    let mut files = rule_files();
    let corpus = yml_files(&Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sigma"));
    assert!(corpus.len() >= 9, "{corpus:?}");
    files.extend(corpus);
    let out = std::process::Command::new(python)
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sigma_oracle.py"))
        .arg(&jsonl)
        .args(&files)
        .output()
        .expect("run the oracle");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let oracle: Value = serde_json::from_slice(&out.stdout).expect("oracle JSON");
    // The same events in a trail file, ingested into an `--all-events` lake, for the
    // compiled rules.
    let src = dir.path().join("src");
    crate::util::write(
        &src.join("AWSLogs/111122223333/CloudTrail/eu-west-1/2026/10/01/111122223333_CloudTrail_eu-west-1_20261001T1000Z_sigma.json.gz"),
        &crate::util::gzip(json!({ "Records": events }).to_string().as_bytes()),
    );
    let lake = dir.path().join("lake");
    let (code, summary) = crate::util::ingest(&src, &lake, &["--all-events"]);
    assert_eq!(code, 0, "{summary}");
    assert_eq!(
        crate::util::n(&summary, "kept_total"),
        events.len() as u64,
        "{summary}"
    );
    let mut loaded = Vec::new();
    for f in &files {
        loaded.extend(cetrail::detect::library::from_path(f).expect("rule file"));
    }
    let (compiled, skipped) = cetrail::detect::run::prepare(loaded);
    assert!(skipped.is_empty(), "{skipped:?}");
    let view = cetrail::query::view::ViewParams::from_config(&cetrail::config::Config::default());
    let lake_hits = cetrail::detect::run::detect(&lake, &view, compiled, skipped).expect("detect");
    let in_lake = |file: &Path| -> std::collections::BTreeSet<String> {
        let ids = lake_hits.events.column("event_id").expect("event_id");
        let ids = ids.str().expect("text");
        lake_hits
            .hits
            .iter()
            .filter(|h| lake_hits.rules[h.rule].file == file.display().to_string())
            .filter_map(|h| ids.get(h.row).map(str::to_string))
            .collect()
    };
    for f in &files {
        let name = f.file_name().and_then(|n| n.to_str()).unwrap_or("");
        let rule = rule_at(f);
        let ours: std::collections::BTreeSet<String> = events
            .iter()
            .filter(|e| rule.matches(e))
            .filter_map(|e| e["eventID"].as_str().map(str::to_string))
            .collect();
        let theirs: std::collections::BTreeSet<String> =
            oracle[f.to_string_lossy().as_ref()]["ids"]
                .as_array()
                .unwrap_or_else(|| panic!("{name}: {}", oracle[f.to_string_lossy().as_ref()]))
                .iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect();
        assert!(!ours.is_empty(), "{name} hits nothing in the corpus");
        assert_eq!(ours, theirs, "{name}: cetrail vs pySigma's DuckDB SQL");
        assert_eq!(
            in_lake(f),
            theirs,
            "{name}: cetrail over the lake vs pySigma's DuckDB SQL"
        );
    }
}

/// A lake of CE calls: `CreateAccessKey` by CE-Admin (a high rule), an unfiltered
/// `DescribeInstances` by CE-Data (a medium rule), and calls no rule hits.
fn detections_lake(dir: &Path) -> PathBuf {
    use crate::util::as_ce_session;
    let call = |id: &str, t: &str, role: &str, eng: &str, key: &str, source: &str, name: &str| {
        let mut v = json!({
            "eventVersion": "1.09", "eventTime": t, "eventID": id, "eventName": name,
            "eventSource": source, "awsRegion": "eu-west-1", "sourceIPAddress": "203.0.113.10",
            "userAgent": "aws-cli/2", "recipientAccountId": "111122223333",
            "eventType": "AwsApiCall", "readOnly": name.starts_with("Describe"),
            "requestParameters": {}
        });
        v = as_ce_session(v, role, eng, key, "2026-10-01T09:00:00Z");
        v
    };
    let records = vec![
        call(
            "e-admin-key",
            "2026-10-01T10:00:00Z",
            "CE-Admin",
            "alice",
            "ASIAADMIN",
            "iam.amazonaws.com",
            "CreateAccessKey",
        ),
        call(
            "e-admin-list",
            "2026-10-01T10:05:00Z",
            "CE-Admin",
            "alice",
            "ASIAADMIN",
            "iam.amazonaws.com",
            "ListUsers",
        ),
        call(
            "e-data-list",
            "2026-10-01T11:00:00Z",
            "CE-Data",
            "bob",
            "ASIADATA",
            "ec2.amazonaws.com",
            "DescribeInstances",
        ),
        call(
            "e-sre-list",
            "2026-10-01T12:00:00Z",
            "CE-SRE",
            "carol",
            "ASIASRE",
            "ec2.amazonaws.com",
            "DescribeInstances",
        ),
    ];
    let src = dir.join("src");
    crate::util::write(
        &src.join("AWSLogs/111122223333/CloudTrail/eu-west-1/2026/10/01/111122223333_CloudTrail_eu-west-1_20261001T1200Z_d.json.gz"),
        &crate::util::gzip(json!({ "Records": records }).to_string().as_bytes()),
    );
    let lake = dir.join("lake");
    let (code, summary) = crate::util::ingest(&src, &lake, &[]);
    assert_eq!(code, 0, "{summary}");
    assert_eq!(crate::util::n(&summary, "kept_total"), 4, "{summary}");
    lake
}

fn jsonl(out: &std::process::Output) -> Vec<Value> {
    crate::util::stdout(out)
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect()
}

#[test]
fn detect_command_lists_hits_filters_levels_adds_rules_and_names_what_it_skips() {
    use crate::util::{cetrail, stderr};
    let dir = crate::util::tempdir();
    let lake = detections_lake(dir.path());
    let lake_arg = lake.to_str().expect("utf-8");
    let out = cetrail(
        &["detect", "--lake", lake_arg, "--format", "jsonl"],
        dir.path(),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let hits = jsonl(&out);
    let got: Vec<(&str, &str)> = hits
        .iter()
        .map(|h| {
            (
                h["event_id"].as_str().unwrap_or(""),
                h["rule"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            ("e-admin-key", "Long-lived credentials created by a CE role"),
            ("e-data-list", "CE-Data beyond database instances"),
        ]
    );
    assert_eq!(hits[0]["level"], "high");
    assert_eq!(hits[0]["engineer"], "alice");
    assert_eq!(hits[0]["role"], "CE-Admin");
    assert_eq!(hits[0]["tags"], "attack.persistence,attack.t1098.001");
    assert_eq!(hits[0]["event_time"], "2026-10-01T10:00:00Z");

    // --level: only high and above.
    let out = cetrail(
        &[
            "detect", "--lake", lake_arg, "--level", "high", "--format", "jsonl",
        ],
        dir.path(),
    );
    let ids: Vec<Value> = jsonl(&out).iter().map(|h| h["event_id"].clone()).collect();
    assert_eq!(ids, vec![json!("e-admin-key")]);

    // --level critical: no event of the lake is even a candidate; nothing is read.
    let out = cetrail(
        &[
            "detect", "--lake", lake_arg, "--level", "critical", "--format", "jsonl",
        ],
        dir.path(),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(jsonl(&out).is_empty());
    assert!(
        stderr(&out).contains("2 rules ran over 0 candidate events"),
        "{}",
        stderr(&out)
    );

    // --summary: one row per rule that ran, the two that hit first by level.
    let out = cetrail(
        &[
            "detect",
            "--lake",
            lake_arg,
            "--summary",
            "--format",
            "jsonl",
        ],
        dir.path(),
    );
    let rows = jsonl(&out);
    assert_eq!(rows.len(), cetrail::detect::library::BUILTIN.len());
    let hit: Vec<(&str, u64)> = rows
        .iter()
        .filter(|r| r["hits"].as_u64() > Some(0))
        .map(|r| {
            (
                r["rule"].as_str().unwrap_or(""),
                r["hits"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    assert_eq!(
        hit,
        vec![
            ("Long-lived credentials created by a CE role", 1),
            ("CE-Data beyond database instances", 1)
        ]
    );

    // --rules adds a rule of the user's; one this engine cannot run is named and skipped.
    let mine = dir.path().join("mine");
    std::fs::create_dir_all(&mine).expect("mkdir");
    std::fs::write(
        mine.join("sre.yml"),
        "title: SRE lists instances\nid: 11111111-2222-4333-8444-555555555555\nlevel: low\nlogsource: {product: aws, service: cloudtrail}\ndetection:\n  sel:\n    eventName: describeinstances\n    userIdentity.arn|endswith: '/carol'\n  condition: sel\n",
    )
    .expect("write rule");
    std::fs::write(
        mine.join("count.yml"),
        "title: Many denials\nid: 11111111-2222-4333-8444-666666666666\nlevel: low\nlogsource: {product: aws, service: cloudtrail}\ndetection:\n  sel:\n    errorCode: AccessDenied\n  condition: sel | count() > 10\n",
    )
    .expect("write rule");
    let mine_arg = mine.to_str().expect("utf-8");
    let out = cetrail(
        &[
            "detect",
            "--lake",
            lake_arg,
            "--rules",
            mine_arg,
            "--no-builtin",
            "--format",
            "jsonl",
        ],
        dir.path(),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let ids: Vec<Value> = jsonl(&out).iter().map(|h| h["event_id"].clone()).collect();
    assert_eq!(
        ids,
        vec![json!("e-sre-list")],
        "case-insensitive, the user's rule only"
    );
    let err = stderr(&out);
    assert!(
        err.contains("skipped: Many denials") && err.contains("count.yml"),
        "{err}"
    );
    assert!(
        err.contains("1 rules ran") && err.contains("1 skipped"),
        "{err}"
    );

    // A file that is not Sigma stops the command, naming the file and the line.
    std::fs::write(mine.join("zbroken.yml"), "title: x\ndetection:\n  sel: [\n").expect("write");
    let out = cetrail(
        &["detect", "--lake", lake_arg, "--rules", mine_arg],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("zbroken.yml:"), "{}", stderr(&out));
}

#[test]
fn dashboard_report_and_timeline_show_the_detections() {
    use crate::util::{cetrail, stderr};
    let dir = crate::util::tempdir();
    let lake = detections_lake(dir.path());
    let lake_arg = lake.to_str().expect("utf-8");
    // The dashboard: after the widgets, an alarm because a high rule hit.
    let out = cetrail(
        &["dashboard", "--lake", lake_arg, "--format", "json"],
        dir.path(),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let d: Value = serde_json::from_slice(&out.stdout).expect("dashboard JSON");
    assert_eq!(d["detections"]["alarm"], true, "{}", d["detections"]);
    assert_eq!(d["detections"]["hits"], 2);
    let rules: Vec<&str> = d["detections"]["rules"]
        .as_array()
        .expect("rules")
        .iter()
        .filter_map(|r| r["rule"].as_str())
        .collect();
    assert_eq!(
        rules,
        vec![
            "Long-lived credentials created by a CE role",
            "CE-Data beyond database instances"
        ]
    );
    let out = cetrail(&["dashboard", "--lake", lake_arg], dir.path());
    assert!(
        crate::util::stdout(&out).contains("18. detections ALARM"),
        "{}",
        crate::util::stdout(&out)
    );
    // Without the high hit (range after it): no alarm, the medium hit still listed.
    let out = cetrail(
        &[
            "dashboard",
            "--lake",
            lake_arg,
            "--from",
            "2026-10-01T10:30:00Z",
            "--to",
            "2026-10-02",
            "--format",
            "json",
        ],
        dir.path(),
    );
    let d: Value = serde_json::from_slice(&out.stdout).expect("dashboard JSON");
    assert_eq!(d["detections"]["alarm"], false, "{}", d["detections"]);
    assert_eq!(d["detections"]["hits"], 1);

    // The monthly report: per rule, and the events.
    let md = dir.path().join("report.md");
    let out = cetrail(
        &[
            "report",
            "--lake",
            lake_arg,
            "--month",
            "2026-10",
            "--format",
            "md",
            "--out",
            md.to_str().expect("utf-8"),
        ],
        dir.path(),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let text = std::fs::read_to_string(&md).expect("report");
    let section = text
        .split("## Detections")
        .nth(1)
        .and_then(|s| s.split("## The 17 widgets").next())
        .expect("a Detections section");
    assert!(
        section.contains("ALARM (2 hits, 2 of 6 rules)"),
        "{section}"
    );
    for needle in [
        "Long-lived credentials created by a CE role",
        "e-admin-key",
        "e-data-list",
    ] {
        assert!(section.contains(needle), "{needle}: {section}");
    }
    assert!(!section.contains("e-sre-list"), "{section}");

    // The timeline flags the event with the rule it hit.
    let out = cetrail(
        &[
            "timeline",
            "--lake",
            lake_arg,
            "--engineer",
            "alice",
            "--format",
            "json",
        ],
        dir.path(),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let t: Value = serde_json::from_slice(&out.stdout).expect("timeline JSON");
    let events = t["events"].as_array().expect("events");
    let key = events
        .iter()
        .find(|e| e["event_id"] == "e-admin-key")
        .expect("the CreateAccessKey step");
    assert_eq!(key["rules"], "Long-lived credentials created by a CE role");
    assert!(key["flags"].as_str().unwrap_or("").contains('!'));
    let list = events
        .iter()
        .find(|e| e["event_id"] == "e-admin-list")
        .expect("the ListUsers step");
    assert_eq!(list["rules"], Value::Null);
}
