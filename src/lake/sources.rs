//! Which sources the lake's events came through (SPEC §10), per account × region ×
//! event day, from the lake's own `source_kind` column; and the warning that a
//! log-group source lacks read-only events.
//!
//! An EventBridge rule that is not `ENABLED_WITH_ALL_CLOUDTRAIL_MANAGEMENT_EVENTS`
//! receives no read-only management events (`Get*`, `List*`, `Describe*`): a log group
//! it feeds, the group's exports and its Firehose deliveries hold write calls only, and
//! the widgets that count all calls undercount. A source of those kinds that holds
//! events but not one read-only event is named.
//!
//! Only the files that hold events of a source other than a trail are read (a file's
//! `source_kind` statistics say so), and of them only four small columns: a lake built
//! from trails alone costs a footer per file.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::path::{Path, PathBuf};

use arrow::array::{Array, BooleanArray, StringArray, TimestampMicrosecondArray};
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::{ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder};
use parquet::file::metadata::ParquetMetaData;
use parquet::file::statistics::Statistics;
use rayon::prelude::*;
use serde::Serialize;

use crate::error::LakeError;

/// Events of one source kind on one account × region × UTC day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SourceDay {
    pub account: Option<String>,
    pub region: Option<String>,
    pub day: String,
    pub source_kind: String,
    pub events: u64,
    pub read_only_events: u64,
}

/// The lake's sources.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SourceCoverage {
    /// Per account × region × day × source kind (trail days included only when
    /// `with_trail` was asked for).
    pub days: Vec<SourceDay>,
    /// Sources (kinds other than a trail's) that hold events but no read-only one.
    pub warnings: Vec<String>,
}

/// The kinds fed by an EventBridge rule (which may not receive read-only events).
const RULE_FED: [&str; 3] = ["log-group", "log-export", "eventbridge"];

/// Whether a file may hold rows of a source other than a trail, from its statistics
/// (a file written before `source_kind` holds a trail's rows only).
fn may_hold_others(meta: &ParquetMetaData) -> bool {
    let schema = meta.file_metadata().schema_descr();
    let Some(col) = (0..schema.num_columns()).find(|i| schema.column(*i).name() == "source_kind")
    else {
        return false;
    };
    meta.row_groups()
        .iter()
        .any(|rg| match rg.column(col).statistics() {
            Some(Statistics::ByteArray(s)) => {
                let min = s.min_opt().map(|v| v.data());
                let max = s.max_opt().map(|v| v.data());
                min != Some(b"trail".as_slice()) || max != Some(b"trail".as_slice())
            }
            _ => true,
        })
}

/// The row groups whose `event_time` statistics may meet `range` (all of them when
/// a row group has no statistics).
pub(crate) fn row_groups_in(meta: &ParquetMetaData, range: &TimeRange) -> Vec<usize> {
    let schema = meta.file_metadata().schema_descr();
    let col = (0..schema.num_columns()).find(|i| schema.column(*i).name() == "event_time");
    (0..meta.num_row_groups())
        .filter(|&i| {
            let stats = col.and_then(|c| meta.row_group(i).column(c).statistics());
            match stats {
                Some(Statistics::Int64(s)) => match (s.min_opt(), s.max_opt()) {
                    (Some(lo), Some(hi)) => {
                        range.from.is_none_or(|f| *hi >= f) && range.to.is_none_or(|t| *lo < t)
                    }
                    _ => true,
                },
                _ => true,
            }
        })
        .collect()
}

/// The top-level columns `names` (those the file has) of the row groups `groups`
/// picks from the file's footer, as record batches; `None` when it picks none.
pub(crate) fn read_columns(
    path: &Path,
    names: &[&str],
    groups: impl FnOnce(&ParquetMetaData) -> Vec<usize>,
) -> Result<Option<ParquetRecordBatchReader>, LakeError> {
    let bad = |message: String| LakeError::Parquet {
        path: path.to_path_buf(),
        message,
    };
    let file = File::open(path).map_err(LakeError::io(path))?;
    let builder = ParquetRecordBatchReaderBuilder::try_new(file)
        .map_err(|e| bad(format!("reading the footer: {e}")))?;
    let groups = groups(builder.metadata());
    if groups.is_empty() {
        return Ok(None);
    }
    let schema = builder.parquet_schema();
    let wanted: Vec<usize> = (0..schema.num_columns())
        .filter(|i| {
            names.contains(&schema.column(*i).name()) && schema.column(*i).path().parts().len() == 1
        })
        .collect();
    let mask = ProjectionMask::leaves(schema, wanted);
    builder
        .with_projection(mask)
        .with_row_groups(groups)
        .build()
        .map(Some)
        .map_err(|e| bad(e.to_string()))
}

/// A half-open range of event times, µs since the epoch (either end open).
#[derive(Debug, Clone, Copy, Default)]
pub struct TimeRange {
    pub from: Option<i64>,
    pub to: Option<i64>,
}

impl TimeRange {
    pub fn holds(&self, t: i64) -> bool {
        self.from.is_none_or(|f| t >= f) && self.to.is_none_or(|to| t < to)
    }
}

type Key = (Option<String>, Option<String>, i64, String);
type Counts = BTreeMap<Key, (u64, u64)>;
/// [`Key`] borrowing its text from a batch.
type BorrowedKey<'a> = (Option<&'a str>, Option<&'a str>, i64, &'a str);

const DAY_US: i64 = 86_400_000_000;

/// Reads the sources of the lake's files: every source other than a trail, over the
/// whole lake (its warnings need them all), and with `trail_days` the trail's days in
/// that range too (only files and row groups whose times meet it are read).
pub fn source_coverage(
    files: &[PathBuf],
    trail_days: Option<TimeRange>,
) -> Result<SourceCoverage, LakeError> {
    let parts = files
        .par_iter()
        .map(|path| file_sources(path, trail_days))
        .collect::<Result<Vec<Counts>, LakeError>>()?;
    let mut days: Counts = BTreeMap::new();
    for part in parts {
        for (k, (n, ro)) in part {
            let e = days.entry(k).or_default();
            e.0 += n;
            e.1 += ro;
        }
    }
    let mut per_kind: BTreeMap<&str, (u64, u64)> = BTreeMap::new();
    for ((_, _, _, kind), (events, ro)) in &days {
        if let Some(k) = RULE_FED.iter().find(|k| **k == kind) {
            let e = per_kind.entry(k).or_default();
            e.0 += events;
            e.1 += ro;
        }
    }
    let warnings = per_kind
        .into_iter()
        .filter(|(_, (events, ro))| *events > 0 && *ro == 0)
        .map(|(kind, (events, _))| read_only_warning(kind, events))
        .collect();
    Ok(SourceCoverage {
        days: days
            .into_iter()
            .map(
                |((account, region, day, source_kind), (events, read_only_events))| SourceDay {
                    account,
                    region,
                    day: chrono::DateTime::from_timestamp_micros(day * DAY_US)
                        .map(|t| t.format("%Y-%m-%d").to_string())
                        .unwrap_or_default(),
                    source_kind,
                    events,
                    read_only_events,
                },
            )
            .collect(),
        warnings,
    })
}

/// The sources of one file (see [`source_coverage`]), per account × region × UTC day
/// (days since the epoch) × kind. Rows are counted under borrowed keys, one owned key
/// per distinct combination.
fn file_sources(path: &Path, trail_days: Option<TimeRange>) -> Result<Counts, LakeError> {
    let bad = |message: String| LakeError::Parquet {
        path: path.to_path_buf(),
        message,
    };
    let names = [
        "event_time",
        "account",
        "aws_region",
        "read_only",
        "source_kind",
    ];
    let reader = read_columns(path, &names, |meta| {
        match (may_hold_others(meta), trail_days) {
            (true, _) => (0..meta.num_row_groups()).collect(),
            (false, Some(range)) => row_groups_in(meta, &range),
            (false, None) => Vec::new(),
        }
    })?;
    let mut out = Counts::new();
    let Some(reader) = reader else {
        return Ok(out);
    };
    for batch in reader {
        let batch = batch.map_err(|e| bad(e.to_string()))?;
        let text = |name: &str| {
            batch
                .column_by_name(name)
                .and_then(|c| c.as_any().downcast_ref::<StringArray>())
                .cloned()
        };
        let (account, region, kind) = (text("account"), text("aws_region"), text("source_kind"));
        let time = batch
            .column_by_name("event_time")
            .and_then(|c| c.as_any().downcast_ref::<TimestampMicrosecondArray>())
            .cloned()
            .ok_or_else(|| bad("no event_time column".into()))?;
        let read_only = batch
            .column_by_name("read_only")
            .and_then(|c| c.as_any().downcast_ref::<BooleanArray>())
            .cloned();
        fn value(a: &Option<StringArray>, i: usize) -> Option<&str> {
            a.as_ref().filter(|a| a.is_valid(i)).map(|a| a.value(i))
        }
        let mut local: HashMap<BorrowedKey<'_>, (u64, u64)> = HashMap::new();
        for i in 0..batch.num_rows() {
            let kind = value(&kind, i).unwrap_or("trail");
            let t = time.value(i);
            if kind == "trail" && !trail_days.is_some_and(|r| r.holds(t)) {
                continue;
            }
            let e = local
                .entry((
                    value(&account, i),
                    value(&region, i),
                    t.div_euclid(DAY_US),
                    kind,
                ))
                .or_default();
            e.0 += 1;
            if read_only
                .as_ref()
                .is_some_and(|r| r.is_valid(i) && r.value(i))
            {
                e.1 += 1;
            }
        }
        for ((a, r, d, k), (n, ro)) in local {
            let e = out
                .entry((
                    a.map(str::to_string),
                    r.map(str::to_string),
                    d,
                    k.to_string(),
                ))
                .or_default();
            e.0 += n;
            e.1 += ro;
        }
    }
    Ok(out)
}

/// The warning for a rule-fed source without read-only events.
pub fn read_only_warning(kind: &str, events: u64) -> String {
    format!(
        "the {kind} source holds {events} event(s) and not one read-only call: its EventBridge rule does not receive read-only management events (Get*, List*, Describe*; it needs ENABLED_WITH_ALL_CLOUDTRAIL_MANAGEMENT_EVENTS), so the widgets that count all calls undercount"
    )
}

/// The warnings of the lake at `root` (see [`SourceCoverage::warnings`]); empty for a
/// lake without event files.
pub fn warnings(root: &Path) -> Result<Vec<String>, LakeError> {
    let files = match super::check::read_files(root) {
        Ok(f) => f,
        Err(LakeError::NotALake { .. }) => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    Ok(source_coverage(&files, None)?.warnings)
}
