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

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use polars::prelude::*;

use super::CollectOn as _;
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
    /// Only this engineer (role session name).
    pub engineer: Option<String>,
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
            engineer: None,
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

/// One row per event id: a trail's copy first (SPEC §10: its file is what `verify`
/// proves; a null `source_kind`, from a file written before the column, is a trail's),
/// then the copy from the smallest source object (the rule ingest's in-run dedup
/// follows), so every engine picks the same copy. Needs `source_object`; without
/// `source_kind` among the columns every copy counts as a trail's.
pub fn dedup(mut lf: LazyFrame) -> PolarsResult<LazyFrame> {
    let rank = if lf.collect_schema()?.contains("source_kind") {
        when(
            col("source_kind")
                .is_null()
                .or(col("source_kind").cast(DataType::String).eq(lit("trail"))),
        )
        .then(lit("0"))
        .otherwise(lit("1"))
    } else {
        lit("0")
    };
    let copy = concat_str(
        [rank, col("source_object").cast(DataType::String)],
        "",
        false,
    );
    let first = copy.clone().min().over([col("event_id")])?;
    Ok(lf
        .filter(copy.eq(first))
        .unique_generic(Some(vec![col("event_id")]), UniqueKeepStrategy::First))
}

/// [`dedup`] for a materialised frame, fast when duplicates are rare (the lake's normal
/// state: ingest drops them within a run, compaction across runs): one pass over the
/// ids with a hash set proves there are none; otherwise [`dedup_duplicates`].
pub fn dedup_frame(df: DataFrame) -> PolarsResult<DataFrame> {
    if !super::order::has_duplicate_ids(df.column("event_id")?.str()?) {
        return Ok(df);
    }
    dedup_duplicates(df)
}

/// [`dedup`] applied to the rows whose id occurs more than once only (the others pass
/// through); needs `source_object`.
fn dedup_duplicates(df: DataFrame) -> PolarsResult<DataFrame> {
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

/// The kinds of event the widgets count.
pub const CE_KINDS: &[&str] = &["assume", "activity"];

/// `kind` is `assume` or `activity`: what the widgets count.
pub fn is_ce() -> Expr {
    col("kind").is_in(lit(Series::new("k".into(), CE_KINDS)).implode(false), false)
}

/// The lake columns the widgets and anomalies read (the view's projection of the
/// lake; [`materialise`] adds any other lake column a query names).
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
    "kind",
];

/// The view's text columns held as categoricals: the same strings (equal in
/// comparisons, sorted as text, printed as text), stored as 4-byte codes, so grouping
/// and distinct counts work on integers and the view holds two million events in a
/// fraction of the memory of their strings.
const CATEGORICAL_COLUMNS: &[&str] = &[
    "account",
    "aws_region",
    "role",
    "engineer",
    "event_source",
    "event_name",
    "source_ip",
    "error_code",
    "session_key",
    "target_instance",
    "bucket",
    "object_key",
    "db",
    "kind",
    "resource",
];

/// The lake columns (beyond [`VIEW_COLUMNS`]) that a query's text names, so that a
/// user's SQL can read any column of the lake (`user_agent`, `request_parameters`,
/// `source_object`, …) without every dashboard paying for all of them.
pub fn named_lake_columns(sql: &str) -> Vec<&'static str> {
    let words: std::collections::HashSet<&str> = sql
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| !w.is_empty())
        .collect();
    crate::lake::schema::COLUMNS
        .iter()
        .map(|c| c.name)
        .filter(|n| !VIEW_COLUMNS.contains(n) && words.contains(n))
        .collect()
}

/// The materialised part of the `events` view: the lake's CE events, one per event
/// id, filtered by account and role, in (`event_time`, `event_id`) order (an invariant
/// the activity feed relies on), text columns as categoricals, with the derived
/// columns most widgets read. [`finish`] adds the rest lazily. `extra` names lake
/// columns to carry besides [`VIEW_COLUMNS`].
///
/// Memory: the scan runs on polars' streaming engine with the categorical casts inside
/// it, so the strings of those columns are never all held at once; `source_object`
/// (long keys, needed only to choose among copies of an id) is read only when some id
/// does occur twice.
pub fn materialise(
    lake: &Path,
    p: &ViewParams,
    extra: &[&str],
) -> PolarsResult<(DataFrame, Stages)> {
    let mut names: Vec<&str> = VIEW_COLUMNS.to_vec();
    names.extend(extra.iter().filter(|c| !VIEW_COLUMNS.contains(c)));
    let (df, mut stages) = materialise_rows(lake, p, &names, Rows::default())?;
    let df = with_core(df, p)?;
    stages.lap("calendar");
    Ok((df, stages))
}

/// Which events a scan keeps besides the account and role of [`ViewParams`].
#[derive(Clone, Copy, Default)]
pub struct Rows<'a> {
    /// Every kind of event (an `--all-events` lake's infra and other events too), not
    /// only the CE ones the widgets count.
    pub all_kinds: bool,
    /// Only events that pass this test of a few text columns. A narrowing for speed:
    /// the direct reader applies it, polars' reader (the fallback) may keep more rows.
    /// When no event passes, the frame has no columns.
    pub test: Option<super::view_scan::RowTest<'a>>,
    /// Text columns held as categoricals besides the view's own (few distinct values
    /// repeated over many events, such as `user_agent`).
    pub categorical: &'a [&'a str],
    /// Only the row groups whose `event_time` statistics meet the range of
    /// [`ViewParams`] are read (by the direct reader; a narrowing for speed, the
    /// frame may still hold events outside the range). For callers that keep the
    /// range's events only (the view keeps the history before its range: it does
    /// not set this).
    pub within_range: bool,
}

/// The lake columns a materialised frame needs whatever else it reads: the order
/// (`event_time`, `event_id`) and what `resource` is derived from.
pub const CORE_COLUMNS: &[&str] = &[
    "event_time",
    "event_id",
    "target_instance",
    "bucket",
    "object_key",
    "db",
];

/// [`materialise`] without the calendar columns: the lake columns `names` (at least
/// [`CORE_COLUMNS`]) and `resource`, of the events `rows` says.
pub fn materialise_rows(
    lake: &Path,
    p: &ViewParams,
    names: &[&str],
    rows: Rows<'_>,
) -> PolarsResult<(DataFrame, Stages)> {
    let mut stages = Stages::default();
    let mut names: Vec<&str> = names.to_vec();
    for c in CORE_COLUMNS {
        if !names.contains(c) {
            names.push(c);
        }
    }
    // The scan computes the order (and whether any id occurs twice) from the plain
    // columns it reads first, and then writes the other columns in that order.
    let mut duplicates = false;
    let mut df = scan_view_arranged(lake, p, &names, rows, |plain| {
        let (twice, order) = check_and_order(plain, true)?;
        duplicates = twice;
        Ok(if twice { None } else { order })
    })?;
    stages.lap("scan and order");
    if duplicates {
        let carried: Vec<&str> = ["source_object", "source_kind"]
            .into_iter()
            .filter(|c| !names.contains(c))
            .collect();
        names.extend(&carried);
        df = dedup_duplicates(scan_view_arranged(lake, p, &names, rows, |_| Ok(None))?)?;
        for c in carried {
            df = df.drop(c)?;
        }
        df.rechunk_mut_par();
        let order = check_and_order(&df, false)?.1;
        df = in_order(df, order)?;
        stages.lap("exact dedup");
    }
    Ok((df, stages))
}

/// Wall time of the steps of a computation, in milliseconds, in order.
#[derive(Debug, Clone)]
pub struct Stages {
    last: std::time::Instant,
    pub laps: Vec<(&'static str, f64)>,
}

impl Default for Stages {
    fn default() -> Self {
        Self {
            last: std::time::Instant::now(),
            laps: Vec::new(),
        }
    }
}

impl Stages {
    /// Appends `other`'s laps (steps timed elsewhere) and starts the next lap now.
    pub fn extend(&mut self, other: Stages) {
        self.laps.extend(other.laps);
        self.last = std::time::Instant::now();
    }

    /// Records the time since the previous lap (or the start) as `name`.
    pub fn lap(&mut self, name: &'static str) {
        let now = std::time::Instant::now();
        self.laps
            .push((name, now.duration_since(self.last).as_secs_f64() * 1e3));
        self.last = now;
    }
}

/// Which reader the view's scan uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Scanner {
    /// `view_scan.rs`: dictionary pages decoded straight into categoricals.
    #[default]
    Direct,
    /// polars' streaming Parquet scan, text cast to categoricals afterwards.
    Polars,
}

/// The lake's CE events (with copies of an id), `names` projected, filtered by account,
/// role and engineer, categorical columns cast, `resource` derived: what the view is made of,
/// in lake file order. The view reads with [`Scanner::Direct`] and falls back to
/// [`Scanner::Polars`] when that fails (a file the lake writer did not write, say);
/// both give the same frame.
pub fn scan_view(
    lake: &Path,
    p: &ViewParams,
    names: &[&str],
    scanner: Scanner,
) -> PolarsResult<DataFrame> {
    match scanner {
        Scanner::Direct => {
            let files = crate::lake::check::read_files(lake)
                .map_err(|e| PolarsError::ComputeError(e.to_string().into()))?;
            scan_view_direct(&files, p, names, Rows::default(), |_| Ok(None))
        }
        Scanner::Polars => scan_view_polars(lake, p, names, Rows::default()),
    }
}

/// [`scan_view`] in the order `arrange` gives (see [`super::view_scan::scan_arranged`]):
/// with the direct reader, else polars' (whose frame is then taken in that order).
fn scan_view_arranged<F>(
    lake: &Path,
    p: &ViewParams,
    names: &[&str],
    rows: Rows<'_>,
    mut arrange: F,
) -> PolarsResult<DataFrame>
where
    F: FnMut(&DataFrame) -> PolarsResult<Option<Vec<IdxSize>>>,
{
    // A damaged lake is not read (the error names the file); any other failure of
    // the direct reader falls back to polars' reader.
    let files = crate::lake::check::read_files(lake)
        .map_err(|e| PolarsError::ComputeError(e.to_string().into()))?;
    let direct = scan_view_direct(&files, p, names, rows, &mut arrange);
    let direct_error = match direct {
        Ok(df) => return Ok(df),
        // No event passes a row test (a narrowing for speed): nothing to read, and
        // the caller of a row test takes a frame without columns for that.
        Err(PolarsError::NoData(_)) if rows.test.is_some() => return Ok(DataFrame::empty()),
        Err(e) => e,
    };
    // When polars' reader fails too, the direct reader's error is the one that names
    // the file at fault (a committed file of the right size whose bytes are damaged).
    let mut df = scan_view_polars(lake, p, names, rows).map_err(|_| direct_error)?;
    df.rechunk_mut_par();
    let order = arrange(&df)?;
    in_order(df, order)
}

/// `df`'s rows taken in `order` (`None`: as they are).
fn in_order(df: DataFrame, order: Option<Vec<IdxSize>>) -> PolarsResult<DataFrame> {
    match order {
        Some(order) => df.take(&IdxCa::from_vec("order".into(), order)),
        None => Ok(df),
    }
}

fn scan_view_direct<F>(
    files: &[PathBuf],
    p: &ViewParams,
    names: &[&str],
    rows: Rows<'_>,
    arrange: F,
) -> PolarsResult<DataFrame>
where
    F: FnOnce(&DataFrame) -> PolarsResult<Option<Vec<IdxSize>>>,
{
    let categorical: Vec<&str> = CATEGORICAL_COLUMNS
        .iter()
        .chain(rows.categorical)
        .copied()
        .collect();
    let spec = super::view_scan::ScanSpec {
        names,
        categorical: &categorical,
        kinds: CE_KINDS,
        all_kinds: rows.all_kinds,
        row_test: rows.test,
        account: p.account.as_deref(),
        role: p.role.as_deref(),
        engineer: p.engineer.as_deref(),
        resource: true,
        within: rows.within_range.then(|| crate::lake::sources::TimeRange {
            from: p.from.map(|t| t.timestamp_micros()),
            to: p.to.map(|t| t.timestamp_micros()),
        }),
    };
    super::view_scan::scan_arranged(files, &spec, arrange)
}

fn scan_view_polars(
    lake: &Path,
    p: &ViewParams,
    names: &[&str],
    rows: Rows<'_>,
) -> PolarsResult<DataFrame> {
    let mut projection: Vec<Expr> = names.iter().map(|c| col(*c)).collect();
    // `resource` is derived once here, from `resources` (read only for it unless named).
    let keep_resources = names.contains(&"resources");
    if !keep_resources {
        projection.push(col("resources"));
    }
    let mut lf = super::scan_lake(lake)?.select(projection);
    if !rows.all_kinds {
        lf = lf.filter(is_ce());
    }
    if let Some(a) = &p.account {
        lf = lf.filter(col("account").eq(lit(a.clone())));
    }
    if let Some(r) = &p.role {
        lf = lf.filter(col("role").eq(lit(r.clone())));
    }
    if let Some(e) = &p.engineer {
        lf = lf.filter(col("engineer").eq(lit(e.clone())));
    }
    lf = lf.with_column(resource().alias("resource"));
    if !keep_resources {
        lf = lf.drop(cols(["resources"]));
    }
    let mut categorical: Vec<&str> = CATEGORICAL_COLUMNS
        .iter()
        .chain(rows.categorical)
        .copied()
        .filter(|c| *c == "resource" || names.contains(c))
        .collect();
    categorical.sort_unstable();
    categorical.dedup();
    let lf = lf.with_columns(
        categorical
            .into_iter()
            .map(|c| {
                col(c).map(to_categorical, |_, f| {
                    Ok(Field::new(
                        f.name().clone(),
                        DataType::from_categories(Categories::global()),
                    ))
                })
            })
            .collect::<Vec<_>>(),
    );
    lf.collect_on(Engine::Streaming)
}

/// A text column as a categorical of the global categories: what `cast` does, but the
/// category of each distinct string view of a chunk is looked up once (the lake's
/// columns are dictionary-encoded, so a chunk holds few distinct views).
fn to_categorical(c: Column) -> PolarsResult<Column> {
    let dtype = DataType::from_categories(Categories::global());
    let DataType::Categorical(_, mapping) = &dtype else {
        return Err(PolarsError::ComputeError(
            "global categories are not categorical".into(),
        ));
    };
    let strings = c.str()?;
    let validity = strings.rechunk_validity();
    let mut ids: Vec<u32> = Vec::with_capacity(strings.len());
    let mut memo: std::collections::HashMap<u128, u32, foldhash::fast::FixedState> =
        std::collections::HashMap::default();
    for arr in strings.downcast_iter() {
        // Equal views of one array are equal strings (a view holds the bytes of a
        // short string, the buffer and offset of a long one).
        memo.clear();
        for (i, view) in arr.views().iter().enumerate() {
            if validity.as_ref().is_some_and(|v| !v.get_bit(ids.len())) {
                ids.push(0);
                continue;
            }
            let id = match memo.get(&view.as_u128()) {
                Some(id) => *id,
                None => {
                    // SAFETY: `i` is in bounds.
                    let id = mapping.insert_cat(unsafe { arr.value_unchecked(i) })?;
                    memo.insert(view.as_u128(), id);
                    id
                }
            };
            ids.push(id);
        }
    }
    let codes = UInt32Chunked::from_vec_validity(c.name().clone(), ids, validity);
    // SAFETY: every id came from `insert_cat` on the dtype's own mapping.
    let cats = unsafe { Categorical32Chunked::from_cats_and_dtype_unchecked(codes, dtype) };
    Ok(cats.into_series().into_column())
}

/// Whether `df` has two rows with one id (if `check`, else `false`), and the order of
/// [`super::order::event_order`], computed side by side.
fn check_and_order(df: &DataFrame, check: bool) -> PolarsResult<(bool, Option<Vec<IdxSize>>)> {
    let times = df
        .column("event_time")?
        .as_materialized_series()
        .to_physical_repr();
    let times = times.i64()?;
    let ids = df.column("event_id")?.str()?;
    if !check {
        return Ok((false, super::order::event_order(times, ids)));
    }
    Ok(rayon::join(
        || super::order::has_duplicate_ids(ids),
        || super::order::event_order(times, ids),
    ))
}

/// Adds the derived columns most widgets read (worth materialising once): the local
/// calendar ones in one pass (`calendar.rs`), the rest as polars expressions.
pub fn with_core(mut df: DataFrame, p: &ViewParams) -> PolarsResult<DataFrame> {
    super::calendar::add_calendar_columns(&mut df, p)?;
    Ok(df)
}

/// Every derived column of the view over a frame holding at least [`VIEW_COLUMNS`] and
/// `resources` (the timeline reads the view this way, filtered first).
pub fn derive(df: DataFrame, p: &ViewParams) -> PolarsResult<LazyFrame> {
    Ok(finish(with_core(df, p)?.lazy()).with_column(resource().alias("resource")))
}

/// Adds the other derived columns (computed by the queries that read them).
pub fn finish(lf: LazyFrame) -> LazyFrame {
    lf.with_columns(extra_columns())
}

/// The column a widget names as an event's target: the instance, else
/// `bucket/object_key`, else the bucket, else the db, else the first resource ARN.
pub fn resource() -> Expr {
    let text = |c: &str| col(c).cast(DataType::String);
    when(col("target_instance").is_not_null())
        .then(text("target_instance"))
        .when(
            col("bucket")
                .is_not_null()
                .and(col("object_key").is_not_null()),
        )
        .then(concat_str([text("bucket"), text("object_key")], "/", false))
        .when(col("bucket").is_not_null())
        .then(text("bucket"))
        .when(col("db").is_not_null())
        .then(text("db"))
        .otherwise(
            col("resources")
                .list()
                .first()
                .struct_()
                .field_by_name("arn"),
        )
}

/// The derived columns few widgets read (computed lazily by the queries that do).
fn extra_columns() -> Vec<Expr> {
    let text = |c: &str| col(c).cast(DataType::String);
    vec![
        col("event_time").dt().truncate(lit("1h")).alias("hour"),
        col("event_time").dt().truncate(lit("5m")).alias("period"),
        col("event_time")
            .dt()
            .truncate(lit("5m"))
            .dt()
            .offset_by(lit("5m"))
            .alias("period_end"),
        concat_str([text("event_source"), text("event_name")], ":", false).alias("action"),
    ]
}
