//! `coverage`: what the lake holds, from its ledger, per account × region × delivery day,
//! and the gaps: hours in which no log file was delivered although the trail delivered
//! before and after (a stopped trail, a deleted file, an ingest that was pruned).
//!
//! The ledger is the source of truth: it names every input object the lake has seen,
//! ingested, skipped or rejected. When an object was seen in several runs (a new
//! version), its latest entry counts.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;

use crate::error::LakeError;
use crate::lake::ledger::{ObjectEntry, Status, read_segments};
use crate::source::delivery_stamp;

/// One account × region × delivery day.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DayCoverage {
    pub account: Option<String>,
    pub region: Option<String>,
    /// The delivery day (UTC, from the key); null for files outside the standard layout.
    pub day: Option<String>,
    /// Log files ingested.
    pub log_files: u64,
    /// Records read from them.
    pub events_read: u64,
    /// CE events kept in the lake.
    pub events_kept: u64,
    /// Records rejected inside readable files.
    pub bad_records: u64,
    /// Objects rejected whole.
    pub rejected: u64,
    /// Hours of this day inside a gap.
    pub gap_hours: u64,
}

/// A run of hours with no log file between two deliveries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Gap {
    pub account: String,
    pub region: String,
    /// First hour without a file (RFC 3339, UTC).
    pub start: String,
    /// The hour the next file came (exclusive end).
    pub end: String,
    pub hours: u64,
}

/// A rejected object and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rejected {
    pub key: String,
    pub reason: String,
}

/// The lake's coverage.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Coverage {
    pub days: Vec<DayCoverage>,
    pub gaps: Vec<Gap>,
    pub rejected: Vec<Rejected>,
    /// Objects skipped by rule (digests, insight files, other files).
    pub skipped_not_a_log: u64,
    pub log_files: u64,
    pub events_kept: u64,
    /// Which sources hold the lake's events, per account × region × event day (SPEC
    /// §10; `lake::sources`).
    pub sources: Vec<super::sources::SourceDay>,
    /// Sources fed by an EventBridge rule that hold no read-only event.
    pub warnings: Vec<String>,
}

const HOUR_S: i64 = 3600;

fn hour_str(h: i64) -> String {
    DateTime::<Utc>::from_timestamp(h * HOUR_S, 0)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_default()
}

/// Reads the ledger of the lake at `root` and summarises it for delivery days in
/// `[from, to)` (either open).
pub fn coverage(
    root: &Path,
    from: Option<NaiveDate>,
    to: Option<NaiveDate>,
) -> Result<Coverage, LakeError> {
    if !root.join("_cetrail").is_dir() {
        return Err(LakeError::NotALake {
            path: root.to_path_buf(),
            message: "no _cetrail/ folder (run `cetrail ingest` first)".into(),
        });
    }
    // Latest entry per key.
    let mut latest: HashMap<String, ObjectEntry> = HashMap::new();
    for segment in read_segments(root)? {
        for mut o in segment.objects {
            o.fill_from_key();
            latest.insert(o.key.clone(), o);
        }
    }
    let in_range = |day: Option<&str>| {
        let d = day.and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok());
        match d {
            Some(d) => from.is_none_or(|f| d >= f) && to.is_none_or(|t| d < t),
            None => from.is_none() && to.is_none(),
        }
    };
    let mut out = Coverage::default();
    type DayKey = (Option<String>, Option<String>, Option<String>);
    let mut days: BTreeMap<DayKey, DayCoverage> = BTreeMap::new();
    // Delivery hours per account × region (all days: a gap needs its neighbours).
    let mut hours: BTreeMap<(String, String), BTreeSet<i64>> = BTreeMap::new();
    let mut keys: Vec<&String> = latest.keys().collect();
    keys.sort();
    for key in keys {
        let o = &latest[key];
        if o.status == Status::SkippedNotALog {
            if in_range(o.day.as_deref()) {
                out.skipped_not_a_log += 1;
            }
            continue;
        }
        if let (Some(a), Some(r), Some(t)) = (&o.account, &o.region, delivery_stamp(&o.key)) {
            hours
                .entry((a.clone(), r.clone()))
                .or_default()
                .insert(t.timestamp().div_euclid(HOUR_S));
        }
        if !in_range(o.day.as_deref()) {
            continue;
        }
        let d = days
            .entry((o.account.clone(), o.region.clone(), o.day.clone()))
            .or_insert_with(|| DayCoverage {
                account: o.account.clone(),
                region: o.region.clone(),
                day: o.day.clone(),
                ..DayCoverage::default()
            });
        match o.status {
            Status::Ingested => {
                d.log_files += 1;
                d.events_read += o.records;
                d.events_kept += o.kept;
                d.bad_records += o.bad_records;
            }
            Status::Rejected => {
                d.rejected += 1;
                out.rejected.push(Rejected {
                    key: o.key.clone(),
                    reason: o.reason.clone().unwrap_or_default(),
                });
            }
            Status::SkippedNotALog => {}
        }
    }
    for ((account, region), set) in &hours {
        let list: Vec<i64> = set.iter().copied().collect();
        for w in list.windows(2) {
            let (a, b) = (w[0], w[1]);
            if b - a <= 1 {
                continue;
            }
            let mut counted = 0u64;
            for h in a + 1..b {
                let day = DateTime::<Utc>::from_timestamp(h * HOUR_S, 0)
                    .map(|t| t.date_naive().format("%Y-%m-%d").to_string());
                if !in_range(day.as_deref()) {
                    continue;
                }
                counted += 1;
                let d = days
                    .entry((Some(account.clone()), Some(region.clone()), day.clone()))
                    .or_insert_with(|| DayCoverage {
                        account: Some(account.clone()),
                        region: Some(region.clone()),
                        day,
                        ..DayCoverage::default()
                    });
                d.gap_hours += 1;
            }
            if counted > 0 {
                out.gaps.push(Gap {
                    account: account.clone(),
                    region: region.clone(),
                    start: hour_str(a + 1),
                    end: hour_str(b),
                    hours: (b - a - 1) as u64,
                });
            }
        }
    }
    out.days = days.into_values().collect();
    out.log_files = out.days.iter().map(|d| d.log_files).sum();
    out.events_kept = out.days.iter().map(|d| d.events_kept).sum();
    let files = match super::check::read_files(root) {
        Ok(f) => Some(f),
        Err(LakeError::NotALake { .. }) => None,
        Err(e) => return Err(e),
    };
    if let Some(files) = files {
        let midnight = |d: NaiveDate| {
            d.and_hms_opt(0, 0, 0)
                .map(|t| t.and_utc().timestamp_micros())
        };
        let range = super::sources::TimeRange {
            from: from.and_then(midnight),
            to: to.and_then(midnight),
        };
        let sources = super::sources::source_coverage(&files, Some(range))?;
        out.sources = sources
            .days
            .into_iter()
            .filter(|d| in_range(Some(&d.day)))
            .collect();
        out.warnings = sources.warnings;
    }
    Ok(out)
}
