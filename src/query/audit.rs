//! The conformance audit (SPEC §1, §7): does the vendor's access follow its model?
//!
//! One result per control, `pass` / `fail` / `unknown` (the trail cannot show it), with
//! the number of findings and a one-line reason; the findings are the evidence events.
//! Every control is a filter over the lake (polars) that leaves only candidate events,
//! so nothing larger than the evidence and the AssumeRole events is collected; checks
//! a column cannot express (port ranges inside `requestParameters`, the CE setup a call
//! names) run in Rust on those few rows, with the same request model ingest uses.
//!
//! Decisions where the spec is silent:
//! - Prohibitions (`no-long-lived-keys`, `no-ssh`, `no-passwords`, `no-tampering`)
//!   count attempts too: a denied `StopLogging` by a CE session is a finding.
//! - `external-id` is `unknown` when no successful CE AssumeRole in range records an
//!   external id at all (a trail that does not show the field), `fail` when some do and
//!   others lack it or carry another value.
//! - `vendor-accounts` judges successful AssumeRole calls; a CE session assuming another
//!   CE role (role chaining, caller in the client account) is left to `external-id`.
//! - `post-revocation`: the stack is deleted at its first successful `DeleteStack` in an
//!   account; activity later than the maximum session length after it, and any
//!   successful AssumeRole after it, are findings.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use chrono::{DateTime, Utc};
use polars::prelude::*;
use serde::Serialize;

use crate::config::Config;
use crate::record::filter::infra_role;
use crate::record::model::Params;

/// The controls, in report order: id and what it asserts.
pub const CONTROLS: [(&str, &str); 10] = [
    (
        "external-id",
        "every successful CE AssumeRole presents the configured ExternalId",
    ),
    (
        "session-duration",
        "requested duration ≤ the maximum, and no session used past it",
    ),
    (
        "vendor-accounts",
        "CE roles are assumed only from the vendor's accounts",
    ),
    (
        "mfa-age",
        "MFA present and within the role's age (where the trail shows it)",
    ),
    (
        "no-long-lived-keys",
        "no long-lived access keys (AKIA…) and no access-key APIs",
    ),
    ("no-ssh", "no SSH keys and no port-22 openings"),
    ("no-passwords", "no console passwords"),
    (
        "onboarded-accounts",
        "CE activity only in onboarded client accounts",
    ),
    (
        "post-revocation",
        "nothing after the CE stack's deletion but sessions already issued",
    ),
    (
        "no-tampering",
        "CE sessions leave the CE roles, the deny policy, CloudTrail and the monitoring alone",
    ),
];

/// The verdict of one control.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Pass,
    Fail,
    Unknown,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pass => "pass",
            Status::Fail => "fail",
            Status::Unknown => "unknown",
        }
    }
}

/// One control's result (the columns of `cetrail audit`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ControlResult {
    pub control: &'static str,
    pub status: Status,
    pub findings: u64,
    pub reason: String,
}

/// One evidence event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub control: &'static str,
    /// µs since the epoch, UTC.
    pub event_time: i64,
    pub event_id: String,
    pub account: Option<String>,
    pub region: Option<String>,
    pub role: Option<String>,
    pub engineer: Option<String>,
    pub event_source: Option<String>,
    pub event_name: Option<String>,
    pub source_ip: Option<String>,
    pub error_code: Option<String>,
    pub detail: String,
}

/// The audit of a range.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Audit {
    pub results: Vec<ControlResult>,
    pub findings: Vec<Finding>,
}

impl Audit {
    /// Whether any control failed.
    pub fn failed(&self) -> bool {
        self.results.iter().any(|r| r.status == Status::Fail)
    }
}

/// What to audit.
#[derive(Debug, Clone, Default)]
pub struct AuditParams {
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    pub account: Option<String>,
}

/// The columns the audit reads.
const COLUMNS: [&str; 22] = [
    "event_time",
    "event_id",
    "account",
    "aws_region",
    "kind",
    "role",
    "engineer",
    "event_source",
    "event_name",
    "source_ip",
    "error_code",
    "identity_type",
    "identity_account",
    "identity_arn",
    "access_key_id",
    "session_key",
    "session_created",
    "mfa_authenticated",
    "external_id",
    "duration_seconds",
    "read_only",
    "request_parameters",
];

/// One event, as the audit reads it.
#[derive(Debug, Clone, Default)]
struct Ev {
    time: i64,
    id: String,
    account: Option<String>,
    region: Option<String>,
    kind: Option<String>,
    role: Option<String>,
    engineer: Option<String>,
    source: Option<String>,
    name: Option<String>,
    ip: Option<String>,
    error: Option<String>,
    identity_type: Option<String>,
    identity_account: Option<String>,
    identity_arn: Option<String>,
    key: Option<String>,
    session_key: Option<String>,
    session_created: Option<i64>,
    mfa: Option<bool>,
    external_id: Option<String>,
    duration: Option<i64>,
    read_only: Option<bool>,
    params: Option<String>,
}

impl Ev {
    fn finding(&self, control: &'static str, detail: String) -> Finding {
        Finding {
            control,
            event_time: self.time,
            event_id: self.id.clone(),
            account: self.account.clone(),
            region: self.region.clone(),
            role: self.role.clone(),
            engineer: self.engineer.clone(),
            event_source: self.source.clone(),
            event_name: self.name.clone(),
            source_ip: self.ip.clone(),
            error_code: self.error.clone(),
            detail,
        }
    }

    fn ok(&self) -> bool {
        self.error.is_none()
    }
}

fn strs(df: &DataFrame, name: &str) -> PolarsResult<Vec<Option<String>>> {
    Ok(df
        .column(name)?
        .str()?
        .iter()
        .map(|v| v.map(str::to_string))
        .collect())
}

fn rows(df: &DataFrame) -> PolarsResult<Vec<Ev>> {
    let n = df.height();
    let time = df.column("t")?.i64()?;
    let created = df.column("created")?.i64()?;
    let mfa = df.column("mfa_authenticated")?.bool()?;
    let ro = df.column("read_only")?.bool()?;
    let dur = df.column("duration_seconds")?.i64()?;
    let mut s: HashMap<&str, Vec<Option<String>>> = HashMap::new();
    for c in COLUMNS {
        if !matches!(
            c,
            "event_time"
                | "session_created"
                | "mfa_authenticated"
                | "duration_seconds"
                | "read_only"
        ) {
            s.insert(c, strs(df, c)?);
        }
    }
    let mut take = |c: &str, i: usize| s.get_mut(c).and_then(|v| v[i].take());
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        out.push(Ev {
            time: time.get(i).unwrap_or(0),
            id: take("event_id", i).unwrap_or_default(),
            account: take("account", i),
            region: take("aws_region", i),
            kind: take("kind", i),
            role: take("role", i),
            engineer: take("engineer", i),
            source: take("event_source", i),
            name: take("event_name", i),
            ip: take("source_ip", i),
            error: take("error_code", i),
            identity_type: take("identity_type", i),
            identity_account: take("identity_account", i),
            identity_arn: take("identity_arn", i),
            key: take("access_key_id", i),
            session_key: take("session_key", i),
            session_created: created.get(i),
            mfa: mfa.get(i),
            external_id: take("external_id", i),
            duration: dur.get(i),
            read_only: ro.get(i),
            params: take("request_parameters", i),
        });
    }
    Ok(out)
}

/// The lake's events in range (every kind), one per event id, filtered by `filter`.
fn select(lake: &Path, p: &AuditParams, filter: Expr) -> PolarsResult<Vec<Ev>> {
    let lf = super::scan_lake(lake)?.select(
        COLUMNS
            .iter()
            .map(|c| col(*c))
            .chain([col("source_object"), col("source_kind")])
            .collect::<Vec<_>>(),
    );
    let lf = super::view::restrict(lf, p.from, p.to, p.account.as_deref());
    let df = lf.filter(filter).collect()?;
    let df = super::view::in_time_order(super::view::dedup_frame(df)?.lazy())?;
    rows(&df)
}

fn kind_is(kinds: &[&str]) -> Expr {
    col("kind").is_in(
        lit(Series::new("k".into(), kinds.to_vec())).implode(false),
        false,
    )
}

fn name_in(names: &[&str]) -> Expr {
    col("event_name").is_in(
        lit(Series::new("n".into(), names.to_vec())).implode(false),
        false,
    )
}

fn hours(seconds: i64) -> String {
    if seconds % 3600 == 0 {
        format!("{} h", seconds / 3600)
    } else {
        format!("{:.1} h", seconds as f64 / 3600.0)
    }
}

fn iso(micros: i64) -> String {
    DateTime::<Utc>::from_timestamp_micros(micros)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_default()
}

/// The role segment of an assumed-role ARN.
fn arn_role(arn: &str) -> Option<&str> {
    let rest = arn.split_once(":assumed-role/")?.1;
    rest.split('/').next()
}

/// Whether an EC2 security-group call's request opens TCP port 22.
pub fn opens_port_22(request_parameters: &str) -> bool {
    let Ok(v) = serde_json::from_str::<serde_json::Value>(request_parameters) else {
        return false;
    };
    let covers = |p: &serde_json::Value| {
        let num = |k: &str| {
            p.get(k).and_then(|x| {
                x.as_i64()
                    .or_else(|| x.as_str().and_then(|s| s.parse().ok()))
            })
        };
        let proto = p
            .get("ipProtocol")
            .map(|x| match x {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            })
            .unwrap_or_else(|| "tcp".into());
        let any = proto == "-1" || proto == "all";
        if !(any || proto == "tcp" || proto == "6") {
            return false;
        }
        match (num("fromPort"), num("toPort")) {
            (Some(f), Some(t)) => (f <= 22 && 22 <= t) || (any && f == -1),
            (Some(f), None) => f == 22 || (any && f == -1),
            (None, _) => any,
        }
    };
    let mut perms: Vec<&serde_json::Value> = Vec::new();
    if let Some(items) = v
        .get("ipPermissions")
        .and_then(|p| p.get("items").or(Some(p)))
        .and_then(|i| i.as_array())
    {
        perms.extend(items);
    }
    if v.get("fromPort").is_some() || v.get("ipProtocol").is_some() {
        perms.push(&v);
    }
    perms.into_iter().any(covers)
}

/// Runs every control over `lake`.
pub fn audit(lake: &Path, config: &Config, p: &AuditParams) -> PolarsResult<Audit> {
    let access = &config.access;
    let max_s = access.max_session_seconds;
    let mut audit = Audit::default();
    let push = |audit: &mut Audit,
                control: &'static str,
                status: Status,
                findings: Vec<Finding>,
                reason: String| {
        audit.results.push(ControlResult {
            control,
            status,
            findings: findings.len() as u64,
            reason,
        });
        audit.findings.extend(findings);
    };

    // AssumeRole events (kept whole: one per session, not per call).
    let assumes = select(lake, p, kind_is(&["assume"]))?;
    let ok_assumes: Vec<&Ev> = assumes.iter().filter(|e| e.ok()).collect();

    // external-id
    {
        let with_field = ok_assumes
            .iter()
            .filter(|e| e.external_id.is_some())
            .count();
        let bad: Vec<Finding> = ok_assumes
            .iter()
            .filter(|e| e.external_id.as_deref() != Some(access.external_id.as_str()))
            .filter(|e| e.external_id.is_some() || with_field > 0)
            .map(|e| {
                e.finding(
                    "external-id",
                    match &e.external_id {
                        Some(x) => format!("ExternalId `{x}`"),
                        None => "no ExternalId".into(),
                    },
                )
            })
            .collect();
        let (status, reason) = if ok_assumes.is_empty() {
            (
                Status::Unknown,
                "no successful CE AssumeRole in range".to_string(),
            )
        } else if with_field == 0 {
            (
                Status::Unknown,
                format!(
                    "none of {} successful CE AssumeRole calls records an ExternalId: the trail does not show it",
                    ok_assumes.len()
                ),
            )
        } else if bad.is_empty() {
            (
                Status::Pass,
                format!(
                    "all {} successful CE AssumeRole calls present `{}`",
                    ok_assumes.len(),
                    access.external_id
                ),
            )
        } else {
            (
                Status::Fail,
                format!(
                    "{} of {} successful CE AssumeRole calls lack `{}` or present another id",
                    bad.len(),
                    ok_assumes.len(),
                    access.external_id
                ),
            )
        };
        push(&mut audit, "external-id", status, bad, reason);
    }

    // session-duration: requested durations, then sessions used past the maximum.
    {
        let mut bad: Vec<Finding> = ok_assumes
            .iter()
            .filter(|e| e.duration.is_some_and(|d| d > max_s))
            .map(|e| {
                e.finding(
                    "session-duration",
                    format!(
                        "requested {} (maximum {})",
                        hours(e.duration.unwrap_or(0)),
                        hours(max_s)
                    ),
                )
            })
            .collect();
        // Session start: its AssumeRole, else the creation date its calls carry.
        let mut start: HashMap<&str, i64> = HashMap::new();
        for e in &ok_assumes {
            if let Some(k) = &e.session_key {
                start.entry(k).or_insert(e.time);
            }
        }
        let late = select(
            lake,
            p,
            kind_is(&["activity"]).and(col("session_key").is_not_null()),
        )?;
        // The last call of each session past its limit.
        let mut last: BTreeMap<String, &Ev> = BTreeMap::new();
        let mut sessions = 0usize;
        let mut seen: HashMap<&str, ()> = HashMap::new();
        for e in &late {
            let Some(k) = e.session_key.as_deref() else {
                continue;
            };
            if seen.insert(k, ()).is_none() {
                sessions += 1;
            }
            let Some(s) = start.get(k).copied().or(e.session_created) else {
                continue;
            };
            if e.time - s > max_s * 1_000_000 {
                last.insert(k.to_string(), e);
            }
        }
        for (k, e) in &last {
            let s = start
                .get(k.as_str())
                .copied()
                .or(e.session_created)
                .unwrap_or(e.time);
            bad.push(e.finding(
                "session-duration",
                format!(
                    "session {k} still used {} after it began at {}",
                    hours((e.time - s) / 1_000_000),
                    iso(s)
                ),
            ));
        }
        let (status, reason) = if ok_assumes.is_empty() && sessions == 0 {
            (Status::Unknown, "no CE session in range".to_string())
        } else if bad.is_empty() {
            (
                Status::Pass,
                format!(
                    "{} AssumeRole calls request ≤ {}; no session of {} used longer",
                    ok_assumes.len(),
                    hours(max_s),
                    sessions
                ),
            )
        } else {
            (
                Status::Fail,
                format!(
                    "{} request(s) or session(s) beyond {}",
                    bad.len(),
                    hours(max_s)
                ),
            )
        };
        bad.sort_by_key(|f| (f.event_time, f.event_id.clone()));
        push(&mut audit, "session-duration", status, bad, reason);
    }

    // vendor-accounts
    {
        let bad: Vec<Finding> = ok_assumes
            .iter()
            .filter(|e| {
                let chained = e.identity_type.as_deref() == Some("AssumedRole")
                    && e.identity_arn
                        .as_deref()
                        .and_then(arn_role)
                        .is_some_and(|r| config.is_ce_role(r));
                !chained
                    && !e
                        .identity_account
                        .as_ref()
                        .is_some_and(|a| access.vendor_accounts.contains(a))
            })
            .map(|e| {
                e.finding(
                    "vendor-accounts",
                    format!(
                        "caller account {}",
                        e.identity_account.as_deref().unwrap_or("unknown")
                    ),
                )
            })
            .collect();
        let (status, reason) = if access.vendor_accounts.is_empty() {
            (
                Status::Unknown,
                "no vendor accounts configured (access.vendor_accounts)".to_string(),
            )
        } else if ok_assumes.is_empty() {
            (
                Status::Unknown,
                "no successful CE AssumeRole in range".into(),
            )
        } else if bad.is_empty() {
            (
                Status::Pass,
                format!(
                    "all {} successful CE AssumeRole calls come from {}",
                    ok_assumes.len(),
                    access.vendor_accounts.join(", ")
                ),
            )
        } else {
            (
                Status::Fail,
                format!(
                    "{} successful CE AssumeRole call(s) from other accounts",
                    bad.len()
                ),
            )
        };
        push(&mut audit, "vendor-accounts", status, bad, reason);
    }

    // mfa-age: decidable only where the caller's session shows MFA (vendor-side trails).
    {
        let decidable: Vec<&&Ev> = ok_assumes
            .iter()
            .filter(|e| e.mfa.is_some() && e.identity_type.as_deref() != Some("AWSAccount"))
            .collect();
        let mut bad = Vec::new();
        for e in &decidable {
            let limit = e
                .role
                .as_deref()
                .and_then(|r| config.roles.iter().find(|x| x.name == r))
                .map(|r| i64::from(r.mfa_max_age_hours) * 3600);
            if e.mfa != Some(true) {
                bad.push(e.finding("mfa-age", "caller session without MFA".into()));
            } else if let (Some(limit), Some(c)) = (limit, e.session_created) {
                let age = (e.time - c) / 1_000_000;
                if age > limit {
                    bad.push(e.finding(
                        "mfa-age",
                        format!("MFA {} old (limit {})", hours(age), hours(limit)),
                    ));
                }
            }
        }
        let (status, reason) = if decidable.is_empty() {
            (
                Status::Unknown,
                "no AssumeRole shows the caller's MFA (a client-only trail cannot; ingest the vendor's trail)"
                    .to_string(),
            )
        } else if bad.is_empty() {
            (
                Status::Pass,
                format!(
                    "{} AssumeRole calls with MFA within the role's age",
                    decidable.len()
                ),
            )
        } else {
            (
                Status::Fail,
                format!(
                    "{} of {} AssumeRole calls without MFA or with MFA too old",
                    bad.len(),
                    decidable.len()
                ),
            )
        };
        push(&mut audit, "mfa-age", status, bad, reason);
    }

    // Prohibitions over CE events.
    let ce = kind_is(&["assume", "activity"]);
    let prohibition = |audit: &mut Audit,
                       control: &'static str,
                       evs: Vec<Ev>,
                       what: &str,
                       detail: &dyn Fn(&Ev) -> String| {
        let denied = evs.iter().filter(|e| !e.ok()).count();
        let findings: Vec<Finding> = evs.iter().map(|e| e.finding(control, detail(e))).collect();
        let (status, reason) = if findings.is_empty() {
            (Status::Pass, format!("no {what} by CE sessions in range"))
        } else {
            (
                Status::Fail,
                format!("{} {what} by CE sessions ({denied} denied)", findings.len()),
            )
        };
        audit.results.push(ControlResult {
            control,
            status,
            findings: findings.len() as u64,
            reason,
        });
        audit.findings.extend(findings);
    };

    let keys = select(
        lake,
        p,
        ce.clone().and(
            col("access_key_id")
                .str()
                .starts_with(lit("AKIA"))
                .or(name_in(&["CreateAccessKey", "UpdateAccessKey"])
                    .and(col("event_source").eq(lit("iam.amazonaws.com")))),
        ),
    )?;
    prohibition(
        &mut audit,
        "no-long-lived-keys",
        keys,
        "long-lived key uses or access-key calls",
        &|e| match &e.key {
            Some(k) if k.starts_with("AKIA") => format!("long-lived key {k}"),
            _ => format!("{} call", e.name.as_deref().unwrap_or("")),
        },
    );

    let ssh_candidates = select(
        lake,
        p,
        ce.clone().and(
            col("event_source")
                .eq(lit("ec2-instance-connect.amazonaws.com"))
                .and(name_in(&[
                    "SendSSHPublicKey",
                    "SendSerialConsoleSSHPublicKey",
                ]))
                .or(col("event_source")
                    .eq(lit("ec2.amazonaws.com"))
                    .and(name_in(&[
                        "AuthorizeSecurityGroupIngress",
                        "ImportKeyPair",
                        "CreateKeyPair",
                    ]))),
        ),
    )?;
    let ssh: Vec<Ev> = ssh_candidates
        .into_iter()
        .filter(|e| {
            e.name.as_deref() != Some("AuthorizeSecurityGroupIngress")
                || e.params.as_deref().is_some_and(opens_port_22)
        })
        .collect();
    prohibition(
        &mut audit,
        "no-ssh",
        ssh,
        "SSH key or port-22 calls",
        &|e| match e.name.as_deref() {
            Some("AuthorizeSecurityGroupIngress") => "opens TCP port 22".into(),
            Some(n) => format!("{n}: SSH key"),
            None => String::new(),
        },
    );

    let passwords = select(
        lake,
        p,
        ce.clone().and(
            name_in(&["CreateLoginProfile", "UpdateLoginProfile", "ChangePassword"])
                .and(col("event_source").eq(lit("iam.amazonaws.com")))
                .or(col("event_name").eq(lit("ConsoleLogin"))),
        ),
    )?;
    prohibition(
        &mut audit,
        "no-passwords",
        passwords,
        "console password calls",
        &|e| format!("{} call", e.name.as_deref().unwrap_or("")),
    );

    // onboarded-accounts: CE events in client accounts not onboarded (the vendor's own
    // trail, when ingested, is not a client account).
    {
        let onboarded = &access.onboarded_accounts;
        let (status, reason, findings) = if onboarded.is_empty() {
            (
                Status::Unknown,
                "no onboarded accounts configured (access.onboarded_accounts)".to_string(),
                Vec::new(),
            )
        } else {
            let known: Vec<&str> = onboarded
                .iter()
                .chain(access.vendor_accounts.iter())
                .map(String::as_str)
                .collect();
            let outside = select(
                lake,
                p,
                ce.clone().and(
                    col("account")
                        .is_in(
                            lit(Series::new("a".into(), known.clone())).implode(false),
                            false,
                        )
                        .not(),
                ),
            )?;
            // One finding per account: its first event, with the count.
            let mut per: BTreeMap<String, (usize, &Ev)> = BTreeMap::new();
            for e in &outside {
                let a = e.account.clone().unwrap_or_default();
                per.entry(a).or_insert((0, e)).0 += 1;
            }
            let findings: Vec<Finding> = per
                .iter()
                .map(|(a, (n, e))| {
                    e.finding(
                        "onboarded-accounts",
                        format!("{n} CE event(s) in account {a}, which is not onboarded"),
                    )
                })
                .collect();
            if findings.is_empty() {
                (
                    Status::Pass,
                    format!("CE activity only in {}", onboarded.join(", ")),
                    findings,
                )
            } else {
                (
                    Status::Fail,
                    format!("CE activity in {} account(s) not onboarded", findings.len()),
                    findings,
                )
            }
        };
        push(&mut audit, "onboarded-accounts", status, findings, reason);
    }

    // post-revocation
    {
        let deletions = select(
            lake,
            p,
            col("event_source")
                .eq(lit("cloudformation.amazonaws.com"))
                .and(col("event_name").eq(lit("DeleteStack")))
                .and(col("error_code").is_null())
                .and(kind_is(&["infra", "activity", "other"])),
        )?;
        let mut deleted: BTreeMap<String, &Ev> = BTreeMap::new();
        for e in &deletions {
            if let Some(a) = &e.account {
                deleted.entry(a.clone()).or_insert(e);
            }
        }
        let mut findings = Vec::new();
        if !deleted.is_empty() {
            let after = select(lake, p, ce.clone())?;
            for e in &after {
                let Some(d) = e.account.as_ref().and_then(|a| deleted.get(a)) else {
                    continue;
                };
                let since = e.time - d.time;
                if since <= 0 {
                    continue;
                }
                let assume = e.kind.as_deref() == Some("assume") && e.ok();
                if assume || since > max_s * 1_000_000 {
                    findings.push(e.finding(
                        "post-revocation",
                        format!(
                            "{} {} after the CE stack was deleted at {}",
                            if assume { "AssumeRole" } else { "activity" },
                            hours(since / 1_000_000),
                            iso(d.time)
                        ),
                    ));
                }
            }
        }
        let (status, reason) = if deleted.is_empty() {
            (
                Status::Pass,
                "the CE stack was not deleted in range".to_string(),
            )
        } else if findings.is_empty() {
            (
                Status::Pass,
                format!(
                    "stack deleted in {} account(s); no AssumeRole after, no activity past {}",
                    deleted.len(),
                    hours(max_s)
                ),
            )
        } else {
            (
                Status::Fail,
                format!(
                    "{} CE event(s) after the stack's deletion (+{} for live sessions)",
                    findings.len(),
                    hours(max_s)
                ),
            )
        };
        push(&mut audit, "post-revocation", status, findings, reason);
    }

    // no-tampering: CE sessions' own calls on the CE setup (the `infra` rule of §3).
    {
        let candidates = select(
            lake,
            p,
            kind_is(&["activity"]).and(
                col("event_source").is_in(
                    lit(Series::new(
                        "s".into(),
                        [
                            "iam.amazonaws.com",
                            "cloudformation.amazonaws.com",
                            "cloudtrail.amazonaws.com",
                            "logs.amazonaws.com",
                            "events.amazonaws.com",
                            "monitoring.amazonaws.com",
                        ],
                    ))
                    .implode(false),
                    false,
                ),
            ),
        )?;
        let tampering: Vec<Ev> = candidates
            .into_iter()
            .filter(|e| {
                let Some(source) = e.source.as_deref() else {
                    return false;
                };
                let name = e.name.as_deref().unwrap_or("");
                let raw = e.params.as_deref().unwrap_or("null");
                let params: Params<'_> = serde_json::from_str::<Option<Params<'_>>>(raw)
                    .ok()
                    .flatten()
                    .unwrap_or_default();
                // Reads of the setup (GetRole, DescribeTrails) are not tampering.
                e.read_only != Some(true)
                    && infra_role(source, name, e.read_only, &params, config).is_some()
            })
            .collect();
        prohibition(
            &mut audit,
            "no-tampering",
            tampering,
            "changes to the CE setup or the trail",
            &|e| {
                format!(
                    "{}:{}",
                    e.source.as_deref().unwrap_or(""),
                    e.name.as_deref().unwrap_or("")
                )
            },
        );
    }

    // Report order = CONTROLS order.
    audit.results.sort_by_key(|r| {
        CONTROLS
            .iter()
            .position(|(id, _)| *id == r.control)
            .unwrap_or(usize::MAX)
    });
    audit.findings.sort_by_key(|f| {
        (
            CONTROLS
                .iter()
                .position(|(id, _)| *id == f.control)
                .unwrap_or(usize::MAX),
            f.event_time,
            f.event_id.clone(),
        )
    });
    Ok(audit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_22_in_request_parameters() {
        let open = r#"{"groupId":"sg-1","ipPermissions":{"items":[{"ipProtocol":"tcp","fromPort":22,"toPort":22,"ipRanges":{"items":[{"cidrIp":"0.0.0.0/0"}]}}]}}"#;
        assert!(opens_port_22(open));
        let range =
            r#"{"ipPermissions":{"items":[{"ipProtocol":"tcp","fromPort":0,"toPort":1024}]}}"#;
        assert!(opens_port_22(range));
        let all = r#"{"ipPermissions":{"items":[{"ipProtocol":"-1"}]}}"#;
        assert!(opens_port_22(all));
        let https =
            r#"{"ipPermissions":{"items":[{"ipProtocol":"tcp","fromPort":443,"toPort":443}]}}"#;
        assert!(!opens_port_22(https));
        let udp = r#"{"ipPermissions":{"items":[{"ipProtocol":"udp","fromPort":22,"toPort":22}]}}"#;
        assert!(!opens_port_22(udp));
        let flat = r#"{"groupName":"g","ipProtocol":"tcp","fromPort":22,"toPort":22}"#;
        assert!(opens_port_22(flat));
        assert!(!opens_port_22("not json"));
    }
}
