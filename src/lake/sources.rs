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

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};

use arrow::array::{Array, BooleanArray, StringArray, TimestampMicrosecondArray};
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::file::statistics::Statistics;
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
fn may_hold_others(path: &Path) -> Result<bool, LakeError> {
    let file = File::open(path).map_err(LakeError::io(path))?;
    let builder =
        ParquetRecordBatchReaderBuilder::try_new(file).map_err(|e| LakeError::Parquet {
            path: path.to_path_buf(),
            message: format!("reading the footer: {e}"),
        })?;
    let meta = builder.metadata();
    let schema = meta.file_metadata().schema_descr();
    let Some(col) = (0..schema.num_columns()).find(|i| schema.column(*i).name() == "source_kind")
    else {
        return Ok(false);
    };
    for rg in meta.row_groups() {
        match rg.column(col).statistics() {
            Some(Statistics::ByteArray(s)) => {
                let min = s.min_opt().map(|v| v.data());
                let max = s.max_opt().map(|v| v.data());
                if min != Some(b"trail".as_slice()) || max != Some(b"trail".as_slice()) {
                    return Ok(true);
                }
            }
            _ => return Ok(true),
        }
    }
    Ok(false)
}

/// Reads the sources of the lake's files. `with_trail`: count the trail's days too
/// (every file is then read).
pub fn source_coverage(files: &[PathBuf], with_trail: bool) -> Result<SourceCoverage, LakeError> {
    type Key = (Option<String>, Option<String>, String, String);
    let mut days: BTreeMap<Key, (u64, u64)> = BTreeMap::new();
    for path in files {
        if !with_trail && !may_hold_others(path)? {
            continue;
        }
        let bad = |message: String| LakeError::Parquet {
            path: path.clone(),
            message,
        };
        let file = File::open(path).map_err(LakeError::io(path))?;
        let builder =
            ParquetRecordBatchReaderBuilder::try_new(file).map_err(|e| bad(e.to_string()))?;
        let schema = builder.parquet_schema();
        let wanted: Vec<usize> = (0..schema.num_columns())
            .filter(|i| {
                matches!(
                    schema.column(*i).name(),
                    "event_time" | "account" | "aws_region" | "read_only" | "source_kind"
                ) && schema.column(*i).path().parts().len() == 1
            })
            .collect();
        let mask = ProjectionMask::leaves(schema, wanted);
        let reader = builder
            .with_projection(mask)
            .build()
            .map_err(|e| bad(e.to_string()))?;
        for batch in reader {
            let batch = batch.map_err(|e| bad(e.to_string()))?;
            let text = |name: &str| {
                batch
                    .column_by_name(name)
                    .and_then(|c| c.as_any().downcast_ref::<StringArray>())
                    .cloned()
            };
            let (account, region, kind) =
                (text("account"), text("aws_region"), text("source_kind"));
            let time = batch
                .column_by_name("event_time")
                .and_then(|c| c.as_any().downcast_ref::<TimestampMicrosecondArray>())
                .cloned()
                .ok_or_else(|| bad("no event_time column".into()))?;
            let read_only = batch
                .column_by_name("read_only")
                .and_then(|c| c.as_any().downcast_ref::<BooleanArray>())
                .cloned();
            let value = |a: &Option<StringArray>, i: usize| {
                a.as_ref()
                    .filter(|a| a.is_valid(i))
                    .map(|a| a.value(i).to_string())
            };
            for i in 0..batch.num_rows() {
                let kind = value(&kind, i).unwrap_or_else(|| "trail".into());
                if kind == "trail" && !with_trail {
                    continue;
                }
                let day = chrono::DateTime::from_timestamp_micros(time.value(i))
                    .map(|t| t.format("%Y-%m-%d").to_string())
                    .unwrap_or_default();
                let e = days
                    .entry((value(&account, i), value(&region, i), day, kind))
                    .or_default();
                e.0 += 1;
                if read_only
                    .as_ref()
                    .is_some_and(|r| r.is_valid(i) && r.value(i))
                {
                    e.1 += 1;
                }
            }
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
                    day,
                    source_kind,
                    events,
                    read_only_events,
                },
            )
            .collect(),
        warnings,
    })
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
    Ok(source_coverage(&files, false)?.warnings)
}
