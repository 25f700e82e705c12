//! The one view every widget, the audit and the timeline read (polars definition; the
//! DuckDB and Spark definitions of the same columns live in `queries/views/`).
//!
//! `events` = the lake's rows, one per `event_id` (the copy from the smallest source
//! key, the same rule as ingest's dedup), with derived columns:
//!
//! | column | meaning |
//! |---|---|
//! | `is_ce` | kind is `assume` or `activity` (what widgets count) |
//! | `in_range` | `event_time` in the half-open query range `[from, to)` |
//! | `day`, `week` | local date and the local Monday of its ISO week (configured zone) |
//! | `next_week` | the Monday after `week` |
//! | `week_in_range`, `next_week_in_range` | that Monday's local 00:00 is in `[from, to)` |
//! | `local_hour`, `weekday` | local hour 0–23, ISO weekday 1 (Mon) – 7 (Sun) |
//! | `business` | inside business hours (local, half-open `[start, end)`, configured days) |
//! | `hour`, `period`, `period_end` | UTC hour, UTC 5-minute period and its end (timestamps) |
//! | `hour_idx`, `period_idx` | the same as integers since the epoch (for gaps-and-islands) |
//! | `action` | `event_source:event_name` |
//! | `resource` | target instance, else `bucket/object_key`, else bucket, else db, else the first resource ARN |

use std::path::Path;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use polars::prelude::*;

use crate::config::Config;

/// What the view needs besides the lake.
#[derive(Debug, Clone)]
pub struct ViewParams {
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    pub zone: Tz,
    /// Business hours as minutes of the local day, half-open.
    pub business_start: u32,
    pub business_end: u32,
    /// ISO weekdays (1 = Monday) that have business hours.
    pub business_days: Vec<u32>,
    pub account: Option<String>,
    pub role: Option<String>,
}

fn minutes(hhmm: &str) -> u32 {
    chrono::NaiveTime::parse_from_str(hhmm, "%H:%M")
        .map(|t| {
            use chrono::Timelike;
            t.hour() * 60 + t.minute()
        })
        .unwrap_or(0)
}

fn iso_weekday(name: &str) -> Option<u32> {
    let n = name.to_ascii_lowercase();
    ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
        .iter()
        .position(|d| n.starts_with(d))
        .map(|i| i as u32 + 1)
}

impl ViewParams {
    /// Parameters from the configuration (zone and business hours), no range, no filter.
    pub fn from_config(config: &Config) -> Self {
        Self {
            from: None,
            to: None,
            zone: config.time.zone.parse().unwrap_or(Tz::UTC),
            business_start: minutes(&config.time.business_start),
            business_end: minutes(&config.time.business_end),
            business_days: config
                .time
                .business_days
                .iter()
                .filter_map(|d| iso_weekday(d))
                .collect(),
            account: None,
            role: None,
        }
    }
}

fn ts_lit(t: DateTime<Utc>) -> Expr {
    lit(t.timestamp_micros()).cast(DataType::Datetime(
        TimeUnit::Microseconds,
        Some(TimeZone::UTC),
    ))
}

/// Keeps events in `[from, to)` of `account` (each optional): the range filter the
/// audit and the timeline apply to their scans before deduplication.
pub fn restrict(
    mut lf: LazyFrame,
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
    account: Option<&str>,
) -> LazyFrame {
    if let Some(f) = from {
        lf = lf.filter(col("event_time").gt_eq(ts_lit(f)));
    }
    if let Some(t) = to {
        lf = lf.filter(col("event_time").lt(ts_lit(t)));
    }
    if let Some(a) = account {
        lf = lf.filter(col("account").eq(lit(a.to_string())));
    }
    lf
}

/// One row per event id: the copy from the smallest source object (the rule ingest's
/// in-run dedup follows), so every engine picks the same copy.
pub fn dedup(lf: LazyFrame) -> PolarsResult<LazyFrame> {
    let first_source = col("source_object").min().over([col("event_id")])?;
    Ok(lf
        .filter(col("source_object").eq(first_source))
        .unique_generic(Some(vec![col("event_id")]), UniqueKeepStrategy::First))
}

/// [`dedup`] for a materialised frame, fast when duplicates are rare (the lake's normal
/// state: ingest drops them within a run, compaction across runs): one pass over the
/// ids with a hash set proves there are none; otherwise the ids seen twice, and only
/// their rows, go through the window and `unique`.
pub fn dedup_frame(df: DataFrame) -> PolarsResult<DataFrame> {
    if !has_duplicate_ids(df.column("event_id")?.str()?) {
        return Ok(df);
    }
    let marked = df
        .lazy()
        .with_column(len().over([col("event_id")])?.gt(lit(1)).alias("_dup"))
        .collect()?;
    let unique_rows = marked.clone().lazy().filter(col("_dup").not());
    let dup_rows = dedup(marked.lazy().filter(col("_dup")))?;
    concat([unique_rows, dup_rows], UnionArgs::default())?
        .drop(cols(["_dup"]))
        .collect()
}

/// Whether any (non-null) id may occur twice: a set of 64-bit hashes of the ids (equal
/// ids have equal hashes; a false alarm, ~1e-7 for two million ids, only costs the
/// exact path).
fn has_duplicate_ids(ids: &StringChunked) -> bool {
    use std::hash::BuildHasher;
    let state = foldhash::fast::FixedState::default();
    let mut seen: std::collections::HashSet<u64, PassThrough> =
        std::collections::HashSet::with_capacity_and_hasher(ids.len(), PassThrough(0));
    for arr in ids.downcast_iter() {
        for id in arr.iter().flatten() {
            if !seen.insert(state.hash_one(id)) {
                return true;
            }
        }
    }
    false
}

/// A hasher for keys that are already hashes.
#[derive(Clone, Copy, Default)]
struct PassThrough(u64);

impl std::hash::Hasher for PassThrough {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = v;
    }
}

impl std::hash::BuildHasher for PassThrough {
    type Hasher = PassThrough;
    fn build_hasher(&self) -> PassThrough {
        PassThrough(0)
    }
}

/// Events in time order, with `event_time` and `session_created` as µs since the epoch
/// (`t`, `created`): the row form the audit and the timeline walk.
pub fn in_time_order(lf: LazyFrame) -> PolarsResult<DataFrame> {
    lf.with_columns([
        col("event_time")
            .dt()
            .timestamp(TimeUnit::Microseconds)
            .alias("t"),
        col("session_created")
            .dt()
            .timestamp(TimeUnit::Microseconds)
            .alias("created"),
    ])
    .sort(["t", "event_id"], SortMultipleOptions::default())
    .collect()
}

/// `kind` is `assume` or `activity`: what the widgets count.
pub fn is_ce() -> Expr {
    col("kind").is_in(
        lit(Series::new("k".into(), ["assume", "activity"])).implode(false),
        false,
    )
}

/// The columns the widgets and anomalies read (projection of the lake).
pub const VIEW_COLUMNS: &[&str] = &[
    "event_time",
    "event_id",
    "account",
    "aws_region",
    "role",
    "engineer",
    "event_source",
    "event_name",
    "source_ip",
    "error_code",
    "is_error",
    "is_denied",
    "is_write",
    "read_only",
    "session_key",
    "target_instance",
    "bucket",
    "object_key",
    "db",
    "resources",
    "kind",
    "source_object",
];

/// The materialised part of the `events` view: the lake's CE events (projected), one
/// per event id, filtered by account and role, grouping columns as categoricals (the
/// same strings; distinct counts on codes), with the derived columns most widgets read.
/// [`finish`] adds the rest lazily.
pub fn materialise(lake: &Path, p: &ViewParams) -> PolarsResult<DataFrame> {
    let cols: Vec<Expr> = VIEW_COLUMNS.iter().map(|c| col(*c)).collect();
    let raw = super::scan_lake(lake)?.select(cols).filter(is_ce());
    let mut lf = dedup_frame(raw.collect()?)?.lazy();
    if let Some(a) = &p.account {
        lf = lf.filter(col("account").eq(lit(a.clone())));
    }
    if let Some(r) = &p.role {
        lf = lf.filter(col("role").eq(lit(r.clone())));
    }
    let categorical = DataType::from_categories(Categories::global());
    let lf = lf.with_columns(
        ["session_key", "engineer", "source_ip", "role", "account"]
            .iter()
            .map(|c| col(*c).cast(categorical.clone()))
            .collect::<Vec<_>>(),
    );
    with_core(lf.collect()?, p)
}

/// Adds the derived columns most widgets read (worth materialising once): the local
/// calendar ones in one pass (`calendar.rs`), the rest as polars expressions.
pub fn with_core(mut df: DataFrame, p: &ViewParams) -> PolarsResult<DataFrame> {
    super::calendar::add_calendar_columns(&mut df, p)?;
    Ok(df)
}

/// Every derived column of the view over a frame holding at least [`VIEW_COLUMNS`]
/// (the timeline reads the view this way, filtered first).
pub fn derive(df: DataFrame, p: &ViewParams) -> PolarsResult<LazyFrame> {
    Ok(finish(with_core(df, p)?.lazy()))
}

/// Adds the other derived columns (computed by the queries that read them).
pub fn finish(lf: LazyFrame) -> LazyFrame {
    lf.with_columns(extra_columns())
}

/// The derived columns few widgets read (computed lazily by the queries that do).
fn extra_columns() -> Vec<Expr> {
    let resource = when(col("target_instance").is_not_null())
        .then(col("target_instance"))
        .when(
            col("bucket")
                .is_not_null()
                .and(col("object_key").is_not_null()),
        )
        .then(concat_str([col("bucket"), col("object_key")], "/", false))
        .when(col("bucket").is_not_null())
        .then(col("bucket"))
        .when(col("db").is_not_null())
        .then(col("db"))
        .otherwise(
            col("resources")
                .list()
                .first()
                .struct_()
                .field_by_name("arn"),
        );
    vec![
        col("event_time").dt().truncate(lit("1h")).alias("hour"),
        col("event_time").dt().truncate(lit("5m")).alias("period"),
        col("event_time")
            .dt()
            .truncate(lit("5m"))
            .dt()
            .offset_by(lit("5m"))
            .alias("period_end"),
        concat_str([col("event_source"), col("event_name")], ":", false).alias("action"),
        resource.alias("resource"),
    ]
}
