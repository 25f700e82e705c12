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
use rayon::prelude::*;

use super::CollectOn as _;
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
    /// The wall time of the audit's steps (`--timings`).
    #[serde(skip)]
    pub stages: super::view::Stages,
}

impl Audit {
    /// The number of findings of every control (more than `findings` holds when
    /// [`AuditParams::max_findings`] cut them).
    pub fn findings_total(&self) -> u64 {
        self.results.iter().map(|r| r.findings).sum()
    }

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
    /// Keep at most this many findings of each control, the earliest (`None`: all).
    /// The counts are exact either way: a caller that shows the first rows, or none,
    /// does not hold the evidence of every AssumeRole of a long range.
    pub max_findings: Option<usize>,
    /// How the sessions' use is read: the lake files directly (the default), or
    /// polars' scan (the fallback; tests compare the two).
    pub scanner: super::view::Scanner,
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

/// One control's findings: all of them counted, the earliest `limit` (by time, then
/// id) kept.
struct Evidence {
    limit: usize,
    count: usize,
    kept: std::collections::BinaryHeap<Earliest>,
}

/// A finding ordered by (time, id): the heap's top is the latest kept.
struct Earliest(Finding);

impl PartialEq for Earliest {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == std::cmp::Ordering::Equal
    }
}

impl Eq for Earliest {}

impl PartialOrd for Earliest {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Earliest {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.0.event_time, &self.0.event_id).cmp(&(other.0.event_time, &other.0.event_id))
    }
}

impl Evidence {
    fn new(limit: Option<usize>) -> Self {
        Self {
            limit: limit.unwrap_or(usize::MAX),
            count: 0,
            kept: std::collections::BinaryHeap::new(),
        }
    }

    fn push(&mut self, f: Finding) {
        self.count += 1;
        if self.kept.len() < self.limit {
            self.kept.push(Earliest(f));
        } else if let Some(mut top) = self.kept.peek_mut()
            && (f.event_time, &f.event_id) < (top.0.event_time, &top.0.event_id)
        {
            *top = Earliest(f);
        }
    }

    /// For `fold`.
    fn with(mut self, f: Finding) -> Self {
        self.push(f);
        self
    }

    fn len(&self) -> usize {
        self.count
    }

    fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The kept findings, earliest first.
    fn into_sorted(self) -> Vec<Finding> {
        self.kept
            .into_sorted_vec()
            .into_iter()
            .map(|e| e.0)
            .collect()
    }
}

/// The events of `df` (the audit's columns, `t` and `created` as µs), each text value
/// copied once, straight from the column into its event.
fn rows(df: &DataFrame) -> PolarsResult<Vec<Ev>> {
    let n = df.height();
    let time = df.column("t")?.i64()?;
    let created = df.column("created")?.i64()?;
    let mfa = df.column("mfa_authenticated")?.bool()?;
    let ro = df.column("read_only")?.bool()?;
    let dur = df.column("duration_seconds")?.i64()?;
    let text = |name: &str| -> PolarsResult<_> {
        Ok(df
            .column(name)?
            .str()?
            .iter()
            .map(|v| v.map(str::to_string)))
    };
    let (mut id, mut account, mut region, mut kind, mut role, mut engineer) = (
        text("event_id")?,
        text("account")?,
        text("aws_region")?,
        text("kind")?,
        text("role")?,
        text("engineer")?,
    );
    let (mut source, mut name, mut ip, mut error, mut identity_type) = (
        text("event_source")?,
        text("event_name")?,
        text("source_ip")?,
        text("error_code")?,
        text("identity_type")?,
    );
    let (mut identity_account, mut identity_arn, mut key, mut session_key) = (
        text("identity_account")?,
        text("identity_arn")?,
        text("access_key_id")?,
        text("session_key")?,
    );
    let (mut external_id, mut params) = (text("external_id")?, text("request_parameters")?);
    let mut out = Vec::with_capacity(n);
    for ((((t, c), m), r), d) in time
        .iter()
        .zip(created.iter())
        .zip(mfa.iter())
        .zip(ro.iter())
        .zip(dur.iter())
    {
        out.push(Ev {
            time: t.unwrap_or(0),
            id: id.next().flatten().unwrap_or_default(),
            account: account.next().flatten(),
            region: region.next().flatten(),
            kind: kind.next().flatten(),
            role: role.next().flatten(),
            engineer: engineer.next().flatten(),
            source: source.next().flatten(),
            name: name.next().flatten(),
            ip: ip.next().flatten(),
            error: error.next().flatten(),
            identity_type: identity_type.next().flatten(),
            identity_account: identity_account.next().flatten(),
            identity_arn: identity_arn.next().flatten(),
            key: key.next().flatten(),
            session_key: session_key.next().flatten(),
            session_created: c,
            mfa: m,
            external_id: external_id.next().flatten(),
            duration: d,
            read_only: r,
            params: params.next().flatten(),
        });
    }
    Ok(out)
}

/// The audited columns of the lake's events in range (every kind), with the columns
/// [`super::view::dedup`] chooses a copy by.
fn scan(lake: &Path, p: &AuditParams) -> PolarsResult<LazyFrame> {
    let lf = super::scan_lake(lake)?.select(
        COLUMNS
            .iter()
            .map(|c| col(*c))
            .chain([col("source_object"), col("source_kind")])
            .collect::<Vec<_>>(),
    );
    Ok(super::view::restrict(
        lf,
        p.from,
        p.to,
        p.account.as_deref(),
    ))
}

/// The rows of `df` where the boolean column `mask` holds, one per event id, in time
/// order: what a filtered scan of the lake gave before the scans were merged.
fn evs(df: &DataFrame, mask: &str) -> PolarsResult<Vec<Ev>> {
    let keep = df.column(mask)?.bool()?.clone();
    let picked = df.filter(&keep)?;
    let picked = picked.select(
        COLUMNS
            .iter()
            .copied()
            .chain(["source_object", "source_kind"]),
    )?;
    rows(&super::view::in_time_order(
        super::view::dedup_frame(picked)?.lazy(),
    )?)
}

/// The lake's events in range (every kind), one per event id, filtered by `filter`.
fn select(lake: &Path, p: &AuditParams, filter: Expr) -> PolarsResult<Vec<Ev>> {
    let df = scan(lake, p)?
        .filter(filter)
        .with_column(lit(true).alias("_all"))
        .collect_on(Engine::Streaming)?;
    evs(&df, "_all")
}

/// The lake's events in range whose id is one of `ids`, by id (the copy
/// [`super::view::dedup`] keeps).
fn fetch(lake: &Path, p: &AuditParams, ids: Vec<String>) -> PolarsResult<HashMap<String, Ev>> {
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let ids = Series::new("ids".into(), ids);
    Ok(select(
        lake,
        p,
        col("event_id").is_in(lit(ids).implode(false), false),
    )?
    .into_iter()
    .map(|e| (e.id.clone(), e))
    .collect())
}

/// The events in range any of these controls judges one by one, with a boolean
/// column per control saying whose candidate each is (an event can be several's):
/// `_assume` every AssumeRole; `_keys`, `_ssh`, `_passwords` the CE calls on keys,
/// SSH and passwords; `_deletions` the CE stack's successful deletions; `_tampering`
/// CE sessions' writes to the services the CE setup lives in. A few thousand events
/// of millions: one scan, whose memory follows them.
fn candidates(lake: &Path, p: &AuditParams, ce: &Expr) -> PolarsResult<DataFrame> {
    let iam = || col("event_source").eq(lit("iam.amazonaws.com"));
    let masks = [
        ("_assume", kind_is(&["assume"])),
        (
            "_keys",
            ce.clone().and(
                col("access_key_id")
                    .str()
                    .starts_with(lit("AKIA"))
                    .or(name_in(&["CreateAccessKey", "UpdateAccessKey"]).and(iam())),
            ),
        ),
        (
            "_ssh",
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
        ),
        (
            "_passwords",
            ce.clone().and(
                name_in(&["CreateLoginProfile", "UpdateLoginProfile", "ChangePassword"])
                    .and(iam())
                    .or(col("event_name").eq(lit("ConsoleLogin"))),
            ),
        ),
        (
            "_deletions",
            col("event_source")
                .eq(lit("cloudformation.amazonaws.com"))
                .and(col("event_name").eq(lit("DeleteStack")))
                .and(col("error_code").is_null())
                .and(kind_is(&["infra", "activity", "other"])),
        ),
        (
            "_tampering",
            // Reads of the setup (GetRole, DescribeTrails) are not tampering.
            kind_is(&["activity"])
                .and(
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
                )
                .and(col("read_only").eq(lit(true)).fill_null(lit(false)).not()),
        ),
    ];
    let any = masks
        .iter()
        .map(|(_, m)| m.clone().fill_null(lit(false)))
        .reduce(|a, b| a.or(b))
        .unwrap_or_else(|| lit(false));
    scan(lake, p)?
        .filter(any)
        .with_columns(
            masks
                .into_iter()
                .map(|(name, m)| m.fill_null(lit(false)).alias(name))
                .collect::<Vec<_>>(),
        )
        // Read by the SSH and tampering checks only (an AssumeRole's is long).
        .with_column(
            when(col("_ssh").or(col("_tampering")))
                .then(col("request_parameters"))
                .otherwise(lit(NULL).cast(DataType::String))
                .alias("request_parameters"),
        )
        .collect_on(Engine::Streaming)
}

/// Per `key` of `lf` (columns `key`, `event_id`, `t`): the id of its earliest row
/// (`latest`: its latest), ties to the least (greatest) id, with `extra` aggregates
/// (name, expression) over all the key's rows.
fn id_at_extreme_time(lf: LazyFrame, key: &str, latest: bool, extra: &[(&str, Expr)]) -> LazyFrame {
    let (t, id) = if latest {
        (col("t").max(), col("event_id").max())
    } else {
        (col("t").min(), col("event_id").min())
    };
    let at = lf.clone().group_by([col(key)]).agg(
        std::iter::once(t)
            .chain(extra.iter().map(|(name, e)| e.clone().alias(*name)))
            .collect::<Vec<_>>(),
    );
    lf.join(
        at,
        [col(key), col("t")],
        [col(key), col("t")],
        JoinArgs::new(JoinType::Inner),
    )
    .group_by([col(key)])
    .agg(
        std::iter::once(id)
            .chain(extra.iter().map(|(name, _)| col(*name).first()))
            .collect::<Vec<_>>(),
    )
}

/// The CE events in range in accounts outside `known`, per account: the number of
/// events and the id of the first (earliest, then least id). Aggregated in the scan.
fn outside_accounts(
    lake: &Path,
    p: &AuditParams,
    ce: &Expr,
    known: &[&str],
) -> PolarsResult<Vec<(String, usize, String)>> {
    let lf = scan(lake, p)?
        .filter(
            ce.clone().and(
                col("account")
                    .is_in(
                        lit(Series::new("a".into(), known.to_vec())).implode(false),
                        false,
                    )
                    .not(),
            ),
        )
        .select([col("account"), col("event_id"), micros().alias("t")]);
    let per = id_at_extreme_time(lf, "account", false, &[("n", col("event_id").n_unique())])
        .collect_on(Engine::Streaming)?;
    let accounts = per.column("account")?.str()?;
    let ids = per.column("event_id")?.str()?;
    let n = per.column("n")?.cast(&DataType::UInt64)?;
    let n = n.u64()?;
    Ok(accounts
        .iter()
        .zip(ids.iter())
        .zip(n.iter())
        .filter_map(|((a, i), n)| Some((a?.to_string(), n? as usize, i?.to_string())))
        .collect())
}

/// `event_time` as µs since the epoch.
fn micros() -> Expr {
    col("event_time").dt().timestamp(TimeUnit::Microseconds)
}

/// How the CE sessions in range were used: the number of distinct session keys of
/// activity events, and, per session used past the maximum session length, the id of
/// its last call past it (latest time, then greatest id). A call is past the maximum
/// when it comes more than `max_us` after its session's start: the session's first
/// successful AssumeRole in range (`starts`), else the creation time the call carries.
/// Every copy of an event counts (copies share their id, time and session). Read file
/// by file (in parallel) from five columns of the row groups in range, so memory
/// follows the sessions, not the events; polars' scan ([`session_use_polars`]) when a
/// file cannot be read that way.
fn session_use(
    lake: &Path,
    p: &AuditParams,
    starts: &HashMap<&str, i64>,
    max_us: i64,
) -> PolarsResult<(usize, Vec<(String, String)>)> {
    if p.scanner == super::view::Scanner::Polars {
        return session_use_polars(lake, p, starts, max_us);
    }
    let files = crate::lake::check::read_files(lake)
        .map_err(|e| PolarsError::ComputeError(e.to_string().into()))?;
    let range = crate::lake::sources::TimeRange {
        from: p.from.map(|t| t.timestamp_micros()),
        to: p.to.map(|t| t.timestamp_micros()),
    };
    // Merged as the files are read: one map per thread, not one per file.
    let merged = files
        .par_iter()
        .map(|f| file_session_use(f, &range, p.account.as_deref(), starts, max_us))
        .try_reduce(SessionUse::new, |a, b| {
            // The smaller map is merged into the larger.
            let (mut all, part) = if a.len() < b.len() { (b, a) } else { (a, b) };
            for (k, past) in part {
                match all.get_mut(&k) {
                    Some(best) => merge_past(best, past),
                    None => {
                        all.insert(k, past);
                    }
                }
            }
            Ok(all)
        });
    let Ok(all) = merged else {
        return session_use_polars(lake, p, starts, max_us);
    };
    let sessions = all.len();
    let mut last: Vec<(String, String)> = all
        .into_iter()
        .filter_map(|(k, past)| past.map(|(_, id)| (k, id)))
        .collect();
    last.sort();
    Ok((sessions, last))
}

/// Per session key: its latest call past the maximum, (time, id), if any.
type SessionUse = HashMap<String, Option<(i64, String)>>;

/// Keeps the later of two calls past the maximum (latest time, then greatest id).
fn merge_past(best: &mut Option<(i64, String)>, other: Option<(i64, String)>) {
    if let Some(o) = other
        && best
            .as_ref()
            .is_none_or(|b| (o.0, o.1.as_str()) > (b.0, b.1.as_str()))
    {
        *best = Some(o);
    }
}

/// [`session_use`] of one lake file. `Err`: the file is not as the lake writer writes
/// it (the caller falls back to polars).
fn file_session_use(
    path: &Path,
    range: &crate::lake::sources::TimeRange,
    account: Option<&str>,
    starts: &HashMap<&str, i64>,
    max_us: i64,
) -> Result<SessionUse, String> {
    use arrow::array::{Array, StringArray, TimestampMicrosecondArray};

    const NAMES: [&str; 6] = [
        "event_time",
        "event_id",
        "account",
        "kind",
        "session_key",
        "session_created",
    ];
    let mut out = SessionUse::new();
    let reader = crate::lake::sources::read_columns(path, &NAMES, |meta| {
        crate::lake::sources::row_groups_in(meta, range)
    })
    .map_err(|e| e.to_string())?;
    let Some(reader) = reader else {
        return Ok(out);
    };
    for batch in reader {
        let batch = batch.map_err(|e| e.to_string())?;
        let text = |name: &str| {
            batch
                .column_by_name(name)
                .and_then(|c| c.as_any().downcast_ref::<StringArray>())
                .ok_or_else(|| format!("{}: `{name}` is not text", path.display()))
        };
        let time = |name: &str| {
            batch
                .column_by_name(name)
                .and_then(|c| c.as_any().downcast_ref::<TimestampMicrosecondArray>())
                .ok_or_else(|| format!("{}: `{name}` is not a time", path.display()))
        };
        let (ids, accounts, kinds, keys) = (
            text("event_id")?,
            text("account")?,
            text("kind")?,
            text("session_key")?,
        );
        let (times, created) = (time("event_time")?, time("session_created")?);
        for i in 0..batch.num_rows() {
            if keys.is_null(i) || kinds.is_null(i) || kinds.value(i) != "activity" {
                continue;
            }
            let t = times.value(i);
            if times.is_null(i)
                || !range.holds(t)
                || account.is_some_and(|a| accounts.is_null(i) || accounts.value(i) != a)
            {
                continue;
            }
            let k = keys.value(i);
            let start = starts
                .get(k)
                .copied()
                .or_else(|| (!created.is_null(i)).then(|| created.value(i)));
            let past = start
                .filter(|s| t - s > max_us)
                .filter(|_| !ids.is_null(i))
                .map(|_| (t, ids.value(i)));
            let slot = match out.get_mut(k) {
                Some(slot) => slot,
                None => out.entry(k.to_string()).or_default(),
            };
            if let Some((t, id)) = past
                && slot.as_ref().is_none_or(|b| (t, id) > (b.0, b.1.as_str()))
            {
                *slot = Some((t, id.to_string()));
            }
        }
    }
    Ok(out)
}

/// [`session_use`] by polars' streaming engine, aggregated in the scan (two scans:
/// the distinct sessions, then the calls past the maximum joined with `starts`).
fn session_use_polars(
    lake: &Path,
    p: &AuditParams,
    starts: &HashMap<&str, i64>,
    max_us: i64,
) -> PolarsResult<(usize, Vec<(String, String)>)> {
    let lf = super::view::restrict(
        super::scan_lake(lake)?.select([
            col("event_time"),
            col("event_id"),
            col("account"),
            col("kind"),
            col("session_key"),
            col("session_created"),
        ]),
        p.from,
        p.to,
        p.account.as_deref(),
    )
    .filter(kind_is(&["activity"]).and(col("session_key").is_not_null()))
    .select([
        col("session_key"),
        col("event_id"),
        micros().alias("t"),
        col("session_created")
            .dt()
            .timestamp(TimeUnit::Microseconds)
            .alias("created"),
    ]);
    let sessions = lf
        .clone()
        .select([col("session_key").n_unique().alias("n")])
        .collect_on(Engine::Streaming)?
        .column("n")?
        .cast(&DataType::UInt64)?
        .u64()?
        .get(0)
        .unwrap_or(0) as usize;
    let (keys, times): (Vec<&str>, Vec<i64>) = starts.iter().map(|(k, t)| (*k, *t)).unzip();
    let starts = DataFrame::new(
        keys.len(),
        vec![
            Column::new("session_key".into(), keys),
            Column::new("start".into(), times),
        ],
    )?;
    let past = lf
        .join(
            starts.lazy(),
            [col("session_key")],
            [col("session_key")],
            JoinArgs::new(JoinType::Left),
        )
        .filter((col("t") - coalesce(&[col("start"), col("created")])).gt(lit(max_us)))
        .select([col("session_key"), col("event_id"), col("t")]);
    let last = id_at_extreme_time(past, "session_key", true, &[]).collect_on(Engine::Streaming)?;
    let keys = last.column("session_key")?.str()?;
    let ids = last.column("event_id")?.str()?;
    let pairs = keys
        .iter()
        .zip(ids.iter())
        .filter_map(|(k, i)| Some((k?.to_string(), i?.to_string())))
        .collect();
    Ok((sessions, pairs))
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
    let limit = p.max_findings;
    let mut audit = Audit::default();
    let push = |audit: &mut Audit,
                control: &'static str,
                status: Status,
                findings: Evidence,
                reason: String| {
        audit.results.push(ControlResult {
            control,
            status,
            findings: findings.len() as u64,
            reason,
        });
        audit.findings.extend(findings.into_sorted());
    };

    // AssumeRole events (kept whole: one per session, not per call).
    let ce = kind_is(&["assume", "activity"]);
    let mut stages = super::view::Stages::default();
    // One scan gives the candidates of every control that reads a few events.
    let candidates = candidates(lake, p, &ce)?;
    stages.lap("candidates");
    let assumes = evs(&candidates, "_assume")?;
    let keys = evs(&candidates, "_keys")?;
    let ssh_candidates = evs(&candidates, "_ssh")?;
    let passwords = evs(&candidates, "_passwords")?;
    let deletions = evs(&candidates, "_deletions")?;
    let tampering_candidates = evs(&candidates, "_tampering")?;
    drop(candidates);
    stages.lap("events");
    let ok_assumes: Vec<&Ev> = assumes.iter().filter(|e| e.ok()).collect();

    // external-id
    {
        let with_field = ok_assumes
            .iter()
            .filter(|e| e.external_id.is_some())
            .count();
        let bad = ok_assumes
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
            .fold(Evidence::new(limit), Evidence::with);
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
        let mut bad = ok_assumes
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
            .fold(Evidence::new(limit), Evidence::with);
        // Session start: its AssumeRole, else the creation date its calls carry.
        let mut start: HashMap<&str, i64> = HashMap::new();
        for e in &ok_assumes {
            if let Some(k) = &e.session_key {
                start.entry(k).or_insert(e.time);
            }
        }
        // The last call of each session past its limit.
        let (sessions, last) = session_use(lake, p, &start, max_s * 1_000_000)?;
        let mut found = fetch(lake, p, last.iter().map(|(_, id)| id.clone()).collect())?;
        stages.lap("sessions");
        for (k, id) in &last {
            let Some(e) = found.remove(id) else {
                continue;
            };
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
        push(&mut audit, "session-duration", status, bad, reason);
    }

    // vendor-accounts
    {
        let bad = ok_assumes
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
            .fold(Evidence::new(limit), Evidence::with);
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
        let mut bad = Evidence::new(limit);
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
    let prohibition = |audit: &mut Audit,
                       control: &'static str,
                       evs: Vec<Ev>,
                       what: &str,
                       detail: &dyn Fn(&Ev) -> String| {
        let denied = evs.iter().filter(|e| !e.ok()).count();
        let findings = evs
            .iter()
            .map(|e| e.finding(control, detail(e)))
            .fold(Evidence::new(limit), Evidence::with);
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
        audit.findings.extend(findings.into_sorted());
    };

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
                Evidence::new(limit),
            )
        } else {
            let known: Vec<&str> = onboarded
                .iter()
                .chain(access.vendor_accounts.iter())
                .map(String::as_str)
                .collect();
            let outside = outside_accounts(lake, p, &ce, &known)?;
            let mut first = fetch(lake, p, outside.iter().map(|o| o.2.clone()).collect())?;
            // One finding per account: its first event, with the count.
            let mut per: BTreeMap<String, (usize, Ev)> = BTreeMap::new();
            for (a, n, id) in outside {
                if let Some(e) = first.remove(&id) {
                    per.insert(a, (n, e));
                }
            }
            let findings = per
                .iter()
                .map(|(a, (n, e))| {
                    e.finding(
                        "onboarded-accounts",
                        format!("{n} CE event(s) in account {a}, which is not onboarded"),
                    )
                })
                .fold(Evidence::new(limit), Evidence::with);
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
    stages.lap("accounts");

    // post-revocation
    {
        let mut deleted: BTreeMap<String, &Ev> = BTreeMap::new();
        for e in &deletions {
            if let Some(a) = &e.account {
                deleted.entry(a.clone()).or_insert(e);
            }
        }
        let mut findings = Evidence::new(limit);
        if !deleted.is_empty() {
            // Only the CE events after a deletion in its account are read.
            let after_deletion = deleted
                .iter()
                .map(|(a, d)| {
                    col("account")
                        .eq(lit(a.clone()))
                        .and(micros().gt(lit(d.time)))
                })
                .reduce(|x, y| x.or(y))
                .unwrap_or_else(|| lit(false));
            let after = select(lake, p, ce.clone().and(after_deletion))?;
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
    stages.lap("post-revocation");

    // no-tampering: CE sessions' own calls on the CE setup (the `infra` rule of §3).
    {
        let tampering: Vec<Ev> = tampering_candidates
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
    stages.lap("judging");
    audit.stages = stages;
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
