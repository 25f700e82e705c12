//! Forensic timelines (SPEC §7): the chronological story of one session, engineer,
//! source IP or resource.
//!
//! Stitching: the events the selector names seed the story; every event of a seed's
//! session (its `session_key`: the AssumeRole, then every call made with that key) joins
//! it; events that share a `sharedEventID` with one in the story join as the other side
//! of a cross-account call (the vendor's own trail, when it is in the lake); SSM shell
//! sessions are matched by session id (StartSession's response, TerminateSession's
//! request), with their durations. Order: event time, then event id (stable for equal
//! timestamps). The timeline reads the same view as the widgets.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use polars::prelude::*;
use serde::Serialize;

use super::view::{Stages, VIEW_COLUMNS, ViewParams, dedup_frame, derive, is_ce};
use crate::config::Config;

/// What the story is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selector {
    Session(String),
    Engineer(String),
    Ip(String),
    /// An instance, bucket, object key, db or first resource ARN (or a part of one).
    Resource(String),
}

/// One event of the story.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Step {
    /// µs since the epoch, UTC.
    pub event_time: i64,
    pub event_id: String,
    pub account: Option<String>,
    /// `client` or `vendor` (the account is one of the vendor's).
    pub side: &'static str,
    pub role: Option<String>,
    pub engineer: Option<String>,
    pub session_key: Option<String>,
    pub event_source: Option<String>,
    pub event_name: Option<String>,
    pub resource: Option<String>,
    pub source_ip: Option<String>,
    pub error_code: Option<String>,
    pub write: bool,
    pub denied: bool,
    pub after_hours: bool,
    /// The selector named this event itself (not only its session).
    pub matched: bool,
    pub shared_event_id: Option<String>,
    /// What matters about this event (AssumeRole details, SSM session, peer).
    pub detail: String,
    /// The titles of our Sigma rules (`queries/rules/`) this event hits.
    pub rules: Vec<String>,
}

/// One session's summary.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SessionSummary {
    pub session_key: String,
    pub role: Option<String>,
    pub engineer: Option<String>,
    pub account: Option<String>,
    pub source_ips: Option<String>,
    pub start: i64,
    pub end: i64,
    pub duration_seconds: i64,
    pub calls: u64,
    pub writes: u64,
    pub denials: u64,
    pub after_hours: u64,
}

/// One SSM shell session.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ShellSession {
    pub ssm_session_id: String,
    pub target: Option<String>,
    pub engineer: Option<String>,
    pub start: Option<i64>,
    pub end: Option<i64>,
    pub duration_seconds: Option<i64>,
}

/// The whole story.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Timeline {
    pub sessions: Vec<SessionSummary>,
    pub shell_sessions: Vec<ShellSession>,
    pub steps: Vec<Step>,
    /// How long each step of telling it took.
    #[serde(skip)]
    pub stages: Stages,
}

/// Lake columns the timeline reads besides the view's (`source_object` also chooses
/// among copies of an event id).
const EXTRA: [&str; 13] = [
    "source_object",
    "source_kind",
    "resources",
    "external_id",
    "duration_seconds",
    "identity_account",
    "identity_type",
    "mfa_authenticated",
    "session_created",
    "shared_event_id",
    "ssm_session_id",
    "user_agent",
    "assumed_key_id",
];

fn scan(lake: &Path, p: &ViewParams, filter: Expr) -> PolarsResult<DataFrame> {
    let cols: Vec<Expr> = VIEW_COLUMNS
        .iter()
        .chain(EXTRA.iter())
        .map(|c| col(*c))
        .collect();
    let lf = super::scan_lake(lake)?.select(cols).filter(is_ce());
    let lf = super::view::restrict(lf, p.from, p.to, p.account.as_deref());
    let df = dedup_frame(lf.filter(filter).collect()?)?;
    super::view::in_time_order(derive(df, p)?)
}

/// [`scan`] of the events whose values of `columns` (at most four text columns) pass
/// `keep`, with the direct reader: it decides each row group's rows from those columns'
/// dictionaries and decodes the other columns of the kept rows only. The same frame
/// as [`scan`] with `filter`, the same test (text columns as text); `None` when no
/// event passes (the caller's polars scan then gives the empty frame its schema).
fn scan_rows(
    lake: &Path,
    p: &ViewParams,
    columns: &[&str],
    keep: &(dyn Fn(&[Option<&str>]) -> bool + Sync),
    filter: Expr,
) -> PolarsResult<Option<DataFrame>> {
    use super::view::{Rows, materialise_rows};
    use super::view_scan::RowTest;
    // The story is the account's, whatever the role or engineer of the view.
    let only_account = ViewParams {
        role: None,
        engineer: None,
        ..p.clone()
    };
    let names: Vec<&str> = VIEW_COLUMNS.iter().chain(EXTRA.iter()).copied().collect();
    let rows = Rows {
        all_kinds: false,
        test: Some(RowTest { columns, keep }),
        categorical: &[],
        // The events are restricted to the range below.
        within_range: true,
    };
    let (df, _) = materialise_rows(lake, &only_account, &names, rows)?;
    if df.width() == 0 {
        return Ok(None);
    }
    let text: Vec<Expr> = df
        .columns()
        .iter()
        .filter(|c| matches!(c.dtype(), DataType::Categorical(..)))
        .map(|c| col(c.name().clone()).cast(DataType::String))
        .collect();
    // The filter again: the direct reader's test is exact, but the reader it falls
    // back to (a file it cannot read) keeps every event.
    let lf = df
        .lazy()
        .with_columns(text)
        .drop(cols(["resource"]))
        .filter(filter);
    let df = super::view::restrict(lf, p.from, p.to, None).collect()?;
    if df.height() == 0 {
        return Ok(None);
    }
    Ok(Some(super::view::in_time_order(derive(df, p)?)?))
}

/// The events of the first test that reads them fast ([`scan_rows`]), else of
/// [`scan`] with `filter`.
fn scan_fast(
    lake: &Path,
    p: &ViewParams,
    columns: &[&str],
    keep: &(dyn Fn(&[Option<&str>]) -> bool + Sync),
    filter: Expr,
) -> PolarsResult<DataFrame> {
    match scan_rows(lake, p, columns, keep, filter.clone())? {
        Some(df) => Ok(df),
        None => scan(lake, p, filter),
    }
}

fn str_set(df: &DataFrame, name: &str) -> PolarsResult<BTreeSet<String>> {
    Ok(df
        .column(name)?
        .str()?
        .iter()
        .flatten()
        .map(str::to_string)
        .collect())
}

fn in_list(name: &str, values: &BTreeSet<String>) -> Expr {
    let v: Vec<&str> = values.iter().map(String::as_str).collect();
    col(name).is_in(lit(Series::new("v".into(), v)).implode(false), false)
}

fn seed_filter(s: &Selector) -> Expr {
    match s {
        Selector::Session(k) => col("session_key").eq(lit(k.clone())),
        Selector::Engineer(e) => col("engineer").eq(lit(e.clone())),
        Selector::Ip(ip) => col("source_ip").eq(lit(ip.clone())),
        Selector::Resource(r) => {
            let has = |c: &str| col(c).str().contains_literal(lit(r.clone()));
            has("target_instance")
                .or(has("bucket"))
                .or(has("object_key"))
                .or(has("db"))
                .or(col("resources")
                    .list()
                    .first()
                    .struct_()
                    .field_by_name("arn")
                    .str()
                    .contains_literal(lit(r.clone())))
        }
    }
}

fn hms(seconds: i64) -> String {
    let s = seconds.max(0);
    format!("{}:{:02}:{:02}", s / 3600, (s % 3600) / 60, s % 60)
}

/// Builds the timeline of `selector` over the lake.
pub fn timeline(
    lake: &Path,
    config: &Config,
    p: &ViewParams,
    selector: &Selector,
) -> PolarsResult<Timeline> {
    let mut stages = Stages::default();
    let seed_expr = seed_filter(selector);
    // The column a selector other than a resource names, and its value.
    let seed_column = match selector {
        Selector::Session(k) => Some(("session_key", k.as_str())),
        Selector::Engineer(e) => Some(("engineer", e.as_str())),
        Selector::Ip(ip) => Some(("source_ip", ip.as_str())),
        Selector::Resource(_) => None,
    };
    let seeds = match seed_column {
        Some((column, value)) => scan_fast(
            lake,
            p,
            &[column],
            &|v: &[Option<&str>]| v.first().copied().flatten() == Some(value),
            seed_expr.clone(),
        )?,
        None => scan(lake, p, seed_expr.clone())?,
    };
    stages.lap("seeds");
    let keys = str_set(&seeds, "session_key")?;
    let mut story = if keys.is_empty() {
        seeds
    } else {
        match seed_column {
            // The seeds' sessions: only their events beyond the seeds are read (most
            // often none), then the two in time order.
            Some((column, value)) => {
                let more = scan_rows(
                    lake,
                    p,
                    &[column, "session_key"],
                    &|v: &[Option<&str>]| {
                        v.first().copied().flatten() != Some(value)
                            && v.get(1)
                                .copied()
                                .flatten()
                                .is_some_and(|k| keys.contains(k))
                    },
                    in_list("session_key", &keys).and(seed_expr.clone().not()),
                )?;
                match more {
                    Some(more) => seeds
                        .vstack(&more)?
                        .sort(["t", "event_id"], SortMultipleOptions::default())?,
                    None => seeds,
                }
            }
            None => scan(lake, p, seed_expr.clone().or(in_list("session_key", &keys)))?,
        }
    };
    stages.lap("sessions");
    // The other side of cross-account calls.
    let shared = str_set(&story, "shared_event_id")?;
    if !shared.is_empty() {
        // A peer already in the story carries a shared id too: the story's ids of
        // such events are all a peer can be (not every id of the story).
        let ids = str_set(
            &story
                .clone()
                .lazy()
                .filter(col("shared_event_id").is_not_null())
                .select([col("event_id")])
                .collect()?,
            "event_id",
        )?;
        let wanted: std::collections::HashSet<&str> = shared.iter().map(String::as_str).collect();
        let peers = scan_fast(
            lake,
            p,
            &["shared_event_id"],
            &|v: &[Option<&str>]| {
                v.first()
                    .copied()
                    .flatten()
                    .is_some_and(|s| wanted.contains(s))
            },
            in_list("shared_event_id", &shared),
        )?;
        let new = peers
            .lazy()
            .filter(in_list("event_id", &ids).not())
            .collect()?;
        if new.height() > 0 {
            story = story
                .vstack(&new)?
                .sort(["t", "event_id"], SortMultipleOptions::default())?;
        }
    }
    stages.lap("cross-account");
    // The events the selector names itself: those of the story it matches (each seed
    // does, and an event that does is a seed: every scan reads the same range and
    // account, and the story holds each id once).
    let matched: Vec<bool> = story
        .clone()
        .lazy()
        .select([seed_expr.alias("matched")])
        .collect()?
        .column("matched")?
        .bool()?
        .iter()
        .map(|m| m == Some(true))
        .collect();
    let mut t = build(&story, config, &matched)?;
    stages.lap("build");
    flag_detections(lake, p, &mut t)?;
    stages.lap("detections");
    t.stages = stages;
    Ok(t)
}

/// Flags each step with the titles of our Sigma rules it hits (one pass of the rules
/// over the story's time span).
fn flag_detections(lake: &Path, p: &ViewParams, t: &mut Timeline) -> PolarsResult<()> {
    let (Some(first), Some(last)) = (
        t.steps.iter().map(|s| s.event_time).min(),
        t.steps.iter().map(|s| s.event_time).max(),
    ) else {
        return Ok(());
    };
    let mut span = p.clone();
    span.from = chrono::DateTime::from_timestamp_micros(first);
    span.to = chrono::DateTime::from_timestamp_micros(last.saturating_add(1));
    // The story may cross roles and accounts (the other side of a cross-account call).
    span.account = None;
    span.role = None;
    span.engineer = None;
    let d = crate::detect::run::ours(lake, &span)?;
    if d.hits.is_empty() {
        return Ok(());
    }
    let ids = d.events.column("event_id")?.str()?.clone();
    let mut by_id: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for h in &d.hits {
        if let (Some(id), Some(rule)) = (ids.get(h.row), d.rules.get(h.rule)) {
            by_id.entry(id).or_default().push(rule.title.clone());
        }
    }
    for step in &mut t.steps {
        if let Some(rules) = by_id.get(step.event_id.as_str()) {
            step.rules = rules.clone();
        }
    }
    Ok(())
}

fn build(df: &DataFrame, config: &Config, matched: &[bool]) -> PolarsResult<Timeline> {
    // Text columns borrowed (each cast once), numbers and flags as plain vectors: a
    // story of an engineer's months is hundreds of thousands of rows, and each text
    // is copied once, into its step.
    const TEXT: [&str; 17] = [
        "event_id",
        "account",
        "role",
        "engineer",
        "session_key",
        "event_source",
        "event_name",
        "resource",
        "source_ip",
        "error_code",
        "kind",
        "external_id",
        "identity_account",
        "shared_event_id",
        "ssm_session_id",
        "user_agent",
        "target_instance",
    ];
    let cast: Vec<Column> = TEXT
        .iter()
        .map(|name| df.column(name)?.cast(&DataType::String))
        .collect::<PolarsResult<_>>()?;
    let texts: Vec<Vec<Option<&str>>> = cast
        .iter()
        .map(|c| Ok(c.str()?.iter().collect()))
        .collect::<PolarsResult<_>>()?;
    let [
        id,
        account,
        role,
        engineer,
        key,
        source,
        name,
        resource,
        ip,
        error,
        kind,
        ext,
        caller,
        shared,
        ssm,
        agent,
        target,
    ] = &texts[..]
    else {
        return Err(PolarsError::ComputeError(
            "the timeline's text columns".into(),
        ));
    };
    let ints = |name: &str| -> PolarsResult<Vec<Option<i64>>> {
        Ok(df.column(name)?.i64()?.iter().collect())
    };
    let flags = |name: &str| -> PolarsResult<Vec<Option<bool>>> {
        Ok(df.column(name)?.bool()?.iter().collect())
    };
    let (t, created, duration) = (ints("t")?, ints("created")?, ints("duration_seconds")?);
    let (business, write, denied, mfa) = (
        flags("business")?,
        flags("is_write")?,
        flags("is_denied")?,
        flags("mfa_authenticated")?,
    );
    let own = |v: Option<&str>| v.map(str::to_string);
    let mut out = Timeline::default();
    out.steps.reserve_exact(df.height());
    // sharedEventID → event ids carrying it.
    let mut by_shared: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for i in 0..df.height() {
        if let (Some(sh), Some(e)) = (shared[i], id[i]) {
            by_shared.entry(sh).or_default().push(e);
        }
    }
    let mut shells: BTreeMap<&str, ShellSession> = BTreeMap::new();
    let mut sessions: BTreeMap<&str, SessionSummary> = BTreeMap::new();
    let mut ips: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for i in 0..df.height() {
        let time = t[i].unwrap_or(0);
        let eid = id[i].unwrap_or_default();
        let side = match account[i] {
            Some(a) if config.access.vendor_accounts.iter().any(|v| v == a) => "vendor",
            _ => "client",
        };
        let after = business[i] == Some(false);
        let (w, d) = (write[i] == Some(true), denied[i] == Some(true));
        let mut detail = Vec::new();
        if kind[i] == Some("assume") {
            detail.push(format!(
                "AssumeRole from account {} · ExternalId {} · {} requested",
                caller[i].unwrap_or("?"),
                ext[i].unwrap_or("none"),
                duration[i].map_or("no duration".to_string(), |d| format!("{} s", d))
            ));
            if let Some(m) = mfa[i] {
                let age = created[i]
                    .map(|c| format!(", {} old", hms((time - c) / 1_000_000)))
                    .unwrap_or_default();
                detail.push(format!("MFA {}{age}", if m { "yes" } else { "no" }));
            }
        }
        if let Some(sid) = ssm[i] {
            let sh = shells.entry(sid).or_insert_with(|| ShellSession {
                ssm_session_id: sid.to_string(),
                target: None,
                engineer: own(engineer[i]),
                start: None,
                end: None,
                duration_seconds: None,
            });
            match name[i] {
                Some("StartSession") => {
                    sh.start = Some(time);
                    sh.target = own(target[i]).or(sh.target.take());
                    detail.push(format!("SSM session {sid} opened"));
                }
                Some("TerminateSession") => {
                    sh.end = Some(time);
                    let dur = sh.start.map(|s| (time - s) / 1_000_000);
                    sh.duration_seconds = dur;
                    detail.push(match dur {
                        Some(d) => format!("SSM session {sid} closed after {}", hms(d)),
                        None => format!("SSM session {sid} closed"),
                    });
                }
                _ => detail.push(format!("SSM session {sid}")),
            }
        }
        if let Some(sh) = shared[i]
            && let Some(peers) = by_shared.get(sh)
        {
            let others: Vec<&str> = peers.iter().copied().filter(|p| *p != eid).collect();
            if !others.is_empty() {
                detail.push(format!("other side: {}", others.join(", ")));
            }
        }
        if d && let Some(a) = agent[i]
            && !a.is_empty()
        {
            detail.push(format!("user agent {a}"));
        }
        if let Some(k) = key[i] {
            let ss = sessions.entry(k).or_insert_with(|| SessionSummary {
                session_key: k.to_string(),
                role: own(role[i]),
                engineer: own(engineer[i]),
                account: None,
                source_ips: None,
                start: time,
                end: time,
                duration_seconds: 0,
                calls: 0,
                writes: 0,
                denials: 0,
                after_hours: 0,
            });
            ss.end = ss.end.max(time);
            ss.start = ss.start.min(time);
            if side == "client" && ss.account.is_none() {
                ss.account = own(account[i]);
            }
            if kind[i] == Some("activity") {
                ss.calls += 1;
                ss.writes += u64::from(w);
                ss.denials += u64::from(d);
                ss.after_hours += u64::from(after);
            }
            if ss.engineer.is_none() {
                ss.engineer = own(engineer[i]);
            }
            if let Some(ip) = ip[i] {
                ips.entry(k).or_default().insert(ip);
            }
        }
        out.steps.push(Step {
            event_time: time,
            matched: matched.get(i).copied().unwrap_or(false),
            event_id: eid.to_string(),
            account: own(account[i]),
            side,
            role: own(role[i]),
            engineer: own(engineer[i]),
            session_key: own(key[i]),
            event_source: own(source[i]),
            event_name: own(name[i]),
            resource: own(resource[i]),
            source_ip: own(ip[i]),
            error_code: own(error[i]),
            write: w,
            denied: d,
            after_hours: after,
            shared_event_id: own(shared[i]),
            detail: detail.join(" · "),
            rules: Vec::new(),
        });
    }
    for (k, mut s) in sessions {
        s.duration_seconds = (s.end - s.start) / 1_000_000;
        s.source_ips = ips
            .get(k)
            .map(|v| v.iter().copied().collect::<Vec<_>>().join(","));
        out.sessions.push(s);
    }
    out.sessions
        .sort_by(|a, b| (a.start, &a.session_key).cmp(&(b.start, &b.session_key)));
    out.shell_sessions = shells.into_values().collect();
    out.shell_sessions
        .sort_by(|a, b| (a.start, &a.ssm_session_id).cmp(&(b.start, &b.ssm_session_id)));
    Ok(out)
}
