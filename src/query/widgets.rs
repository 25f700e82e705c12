//! The 17 widgets of SPEC §5: each one a `queries/<name>.sql` file run through polars'
//! SQLContext over the `events` view, six of them over `session_facts` (the events
//! counted per session, day, region and IP; computed from `events` once). Five are
//! computed in Rust, their SQL kept beside the others as the definition DuckDB runs and
//! tests compare with: anomalies (`anomalies.rs`), top-actions (`top_actions.rs`),
//! write-actions and denied-actions (`action_groups.rs`) and access-denied-alarm
//! (`denied_alarm.rs`).

use std::collections::BTreeMap;
use std::path::Path;

use chrono::{DateTime, NaiveDate, TimeZone as _, Utc};
use polars::prelude::*;
use polars::sql::SQLContext;

use crate::config::Config;
use crate::query::CollectOn as _;
use crate::query::view::{self, ViewParams};

/// One widget of the dashboard.
#[derive(Debug, Clone, Copy)]
pub struct Widget {
    pub number: u8,
    pub name: &'static str,
    pub title: &'static str,
    pub sql: &'static str,
    /// Alarm widgets are shown first, as the real dashboard does.
    pub alarm: bool,
    /// Run on polars' streaming engine rather than the in-memory one. Chosen per widget
    /// by measurement (`BENCHMARKS.md`): the streaming engine aggregates with hash
    /// tables and wins on group-bys over millions of rows into tens of thousands of
    /// groups (anomalies' hourly counts, and `session_facts`, which
    /// [`Dashboard::session_facts`] always builds on it); the in-memory engine wins where
    /// few groups each count distinct values, and on the small `session_facts` frame.
    /// Both give the same frame (a test runs every widget on both).
    pub streaming: bool,
}

impl Widget {
    /// The polars engine this widget runs on (see [`Widget::streaming`]).
    pub fn engine(&self) -> Engine {
        if self.streaming {
            Engine::Streaming
        } else {
            Engine::InMemory
        }
    }
}

macro_rules! widget {
    ($n:literal, $name:literal, $title:literal, $alarm:literal) => {
        widget!($n, $name, $title, $alarm, false)
    };
    ($n:literal, $name:literal, $title:literal, $alarm:literal, $streaming:literal) => {
        Widget {
            number: $n,
            name: $name,
            title: $title,
            sql: include_str!(concat!("../../queries/", $name, ".sql")),
            alarm: $alarm,
            streaming: $streaming,
        }
    };
}

/// All widgets, in dashboard order.
pub const WIDGETS: [Widget; 17] = [
    widget!(
        1,
        "admin-alarm",
        "CE-Admin use: alarm episodes (5-minute periods)",
        true
    ),
    widget!(
        2,
        "access-denied-alarm",
        "Access denied: alarm episodes (5-minute periods)",
        true
    ),
    widget!(3, "sessions-by-role", "Sessions by role", false),
    widget!(4, "session-trend", "Sessions per day and role", false),
    widget!(5, "activity-feed", "Activity feed: every CE event", false),
    widget!(
        6,
        "ec2-shell",
        "EC2 shell access through SSM, per instance",
        false
    ),
    widget!(7, "data-s3", "CE-Data S3 use, per bucket", false),
    widget!(8, "data-rds", "CE-Data RDS use, per database", false),
    widget!(9, "source-ips", "Source IP addresses", false),
    widget!(10, "after-hours", "Activity outside business hours", false),
    widget!(11, "week-over-week", "Week over week, per role", false),
    widget!(
        12,
        "anomalies",
        "Anomalies: volume and first-seen values",
        true,
        true
    ),
    widget!(13, "denied-actions", "Denied actions", false),
    widget!(14, "top-actions", "Top actions per role", false),
    widget!(15, "engineers", "Engineers", false),
    widget!(16, "write-actions", "Write actions", false),
    widget!(17, "accounts", "Client accounts", false),
];

/// One widget's frame and how long it took to compute (ms).
pub struct WidgetRun {
    pub widget: &'static Widget,
    pub frame: DataFrame,
    pub ms: f64,
}

impl Widget {
    /// How long this widget takes relative to the others (measured on the bench lake of
    /// `benches/dashboard.sh`): [`Dashboard::run_widgets`] starts the longest first, so
    /// that no worker is left with a long one at the end. Only the schedule depends on it.
    fn expected_cost(&self) -> u8 {
        match self.name {
            "top-actions" => 60,
            "anomalies" => 40,
            "after-hours"
            | "denied-actions"
            | "week-over-week"
            | "accounts"
            | "admin-alarm"
            | "write-actions"
            | "access-denied-alarm" => 20,
            "data-s3" | "source-ips" | "data-rds" | "engineers" | "sessions-by-role" => 10,
            _ => 5,
        }
    }
}

/// Finds a widget by name or number.
pub fn find(name: &str) -> Option<&'static Widget> {
    WIDGETS
        .iter()
        .find(|w| w.name == name || name.parse::<u8>().ok() == Some(w.number))
}

/// The `session_facts` view (`queries/views/session_facts.sql`): the CE events
/// counted per session, day, region and IP, which six widgets aggregate instead of the
/// events.
pub const SESSION_FACTS_SQL: &str = include_str!("../../queries/views/session_facts.sql");

/// The rows of `session_facts` (`queries/views/session_facts.sql`) from the events,
/// grouped by eight of its twelve keys: `week`, `next_week`, `week_in_range` and
/// `next_week_in_range` are functions of `day` (the view's calendar derives them from
/// the local date alone), so the groups are the same and those four are each group's
/// only value. polars row-encodes every key of every row to group them, so four fewer
/// keys make it ~25 ms faster on two million events. A null `is_error` counts no
/// error and a null `business` counts after hours, as the SQL's `CASE … ELSE`.
/// Columns in no particular order (the caller takes the SQL's order and types); a
/// test compares the two.
pub fn session_facts_grouped(events: LazyFrame) -> LazyFrame {
    facts_grouped(events, true)
}

/// The keys [`session_facts_grouped`] groups by, `in_range` first.
const FACT_KEYS: [&str; 8] = [
    "in_range",
    "day",
    "account",
    "aws_region",
    "role",
    "session_key",
    "engineer",
    "source_ip",
];

/// [`session_facts_grouped`], or without the `in_range` key ([`Zoned`]'s facts per
/// day, which any range that no group straddles splits into `session_facts`).
fn facts_grouped(events: LazyFrame, by_range: bool) -> LazyFrame {
    let keys = if by_range {
        &FACT_KEYS[..]
    } else {
        &FACT_KEYS[1..]
    };
    let ones = |e: Expr| e.cast(DataType::Int64).sum();
    events
        .filter(col("is_ce"))
        .group_by(keys.iter().map(|k| col(*k)).collect::<Vec<_>>())
        .agg([
            col("week").first(),
            col("next_week").first(),
            col("week_in_range").first(),
            col("next_week_in_range").first(),
            len().alias("n"),
            ones(col("is_error").fill_null(lit(false))).alias("errors"),
            ones(col("business").fill_null(lit(false)).not()).alias("after_hours"),
            col("event_time").min().alias("lo"),
            col("event_time").max().alias("hi"),
        ])
}

/// A query session over one lake: the `events` view (CE events, all time, projected
/// columns) is computed once and shared by every widget; `session_facts` is computed
/// from it once, when a query first names it.
pub struct Dashboard {
    ctx: SQLContext,
    params: BTreeMap<&'static str, String>,
    pub view: ViewParams,
    pub config: Config,
    events: DataFrame,
    /// First event of the lake (µs since epoch), if any.
    pub lake_start: Option<i64>,
    /// How long each step of building the view took.
    pub stages: view::Stages,
}

/// Replaces `{{name}}` placeholders.
pub fn render_template(sql: &str, params: &BTreeMap<&'static str, String>) -> String {
    let mut out = sql.to_string();
    for (k, v) in params {
        out = out.replace(&format!("{{{{{k}}}}}"), v);
    }
    out
}

/// The placeholder values of the configuration and range.
pub fn template_params(
    config: &Config,
    view: &ViewParams,
    lake_start: Option<i64>,
) -> BTreeMap<&'static str, String> {
    let quote = |s: &str| s.replace('\'', "''");
    let fmt = |t: Option<DateTime<Utc>>, dflt: &str| {
        t.map(|t| t.format("%Y-%m-%d %H:%M:%S+00").to_string())
            .unwrap_or_else(|| dflt.to_string())
    };
    let a = &config.anomalies;
    BTreeMap::from([
        ("admin_role", quote(&config.access.admin_role)),
        ("data_role", quote(&config.access.data_role)),
        ("admin_threshold", config.alarms.admin_threshold.to_string()),
        (
            "denied_threshold",
            config.alarms.denied_threshold.to_string(),
        ),
        (
            "volume_window_hours",
            (a.volume_window_days * 24).to_string(),
        ),
        ("volume_min_hours", a.volume_min_hours.to_string()),
        ("volume_score", a.volume_score.to_string()),
        ("volume_min_excess", a.volume_min_excess.to_string()),
        ("lookback_days", a.first_seen_lookback_days.to_string()),
        ("from", fmt(view.from, "1970-01-01 00:00:00+00")),
        ("to", fmt(view.to, "9999-12-31 00:00:00+00")),
        ("tz", quote(view.zone.name())),
        ("business_start", view.business_start.to_string()),
        ("business_end", view.business_end.to_string()),
        (
            "business_days",
            view.business_days
                .iter()
                .map(u32::to_string)
                .collect::<Vec<_>>()
                .join(","),
        ),
        (
            "lake_start",
            fmt(
                lake_start.and_then(DateTime::from_timestamp_micros),
                "1970-01-01 00:00:00+00",
            ),
        ),
        (
            "lake_start_hour",
            lake_start
                .map_or(0, |t| t.div_euclid(3_600_000_000))
                .to_string(),
        ),
    ])
}

/// The UTC instant of 00:00 local on `day`.
pub fn local_midnight(day: NaiveDate, zone: chrono_tz::Tz) -> DateTime<Utc> {
    let naive = day.and_hms_opt(0, 0, 0).unwrap_or_default();
    match zone.from_local_datetime(&naive) {
        chrono::LocalResult::Single(t) => t.with_timezone(&Utc),
        chrono::LocalResult::Ambiguous(a, _) => a.with_timezone(&Utc),
        // Midnight skipped by a DST jump: the first instant after the gap.
        chrono::LocalResult::None => zone
            .from_local_datetime(&(naive + chrono::Duration::hours(1)))
            .earliest()
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_else(|| naive.and_utc()),
    }
}

/// A range bound as users write it: a date (`YYYY-MM-DD`, 00:00 of that day in
/// `zone`) or an RFC 3339 instant; `None` when it is neither.
pub fn parse_instant(s: &str, zone: chrono_tz::Tz) -> Option<DateTime<Utc>> {
    if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return Some(local_midnight(d, zone));
    }
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// First and last event time of the lake (µs): from the files' row-group statistics
/// (no data read), else by scanning the files.
pub fn lake_bounds(lake: &Path) -> PolarsResult<Option<(i64, i64)>> {
    if let Some(bounds) = bounds_from_statistics(lake) {
        return Ok(bounds);
    }
    let df = super::scan_lake(lake)?
        .select([
            col("event_time")
                .min()
                .dt()
                .timestamp(TimeUnit::Microseconds)
                .alias("lo"),
            col("event_time")
                .max()
                .dt()
                .timestamp(TimeUnit::Microseconds)
                .alias("hi"),
        ])
        .collect()?;
    let lo = df.column("lo")?.i64()?.get(0);
    let hi = df.column("hi")?.i64()?.get(0);
    Ok(lo.zip(hi))
}

/// Fills a missing `from`/`to` with the first and the day after the last local day of
/// the lake; returns the lake's first and last event time (µs).
pub fn default_range(lake: &Path, view: &mut ViewParams) -> PolarsResult<Option<(i64, i64)>> {
    let bounds = lake_bounds(lake)?;
    fill_range(bounds, view);
    Ok(bounds)
}

/// Fills a missing `from`/`to` of `view` with the first and the day after the last
/// local day of a lake whose first and last event times (µs) are `bounds`.
pub fn fill_range(bounds: Option<(i64, i64)>, view: &mut ViewParams) {
    if let Some((lo, hi)) = bounds {
        let zone = view.zone;
        let day = |t: i64| {
            DateTime::from_timestamp_micros(t)
                .map(|d| d.with_timezone(&zone).date_naive())
                .unwrap_or_default()
        };
        if view.from.is_none() {
            view.from = Some(local_midnight(day(lo), zone));
        }
        if view.to.is_none() {
            view.to = Some(local_midnight(day(hi) + chrono::Duration::days(1), zone));
        }
    }
}

/// `None` when a file lacks the statistics (then the caller scans).
fn bounds_from_statistics(lake: &Path) -> Option<Option<(i64, i64)>> {
    use parquet::file::reader::{FileReader, SerializedFileReader};
    use parquet::file::statistics::Statistics;
    let mut out: Option<(i64, i64)> = None;
    for f in crate::lake::check::read_files(lake).ok()? {
        let reader = SerializedFileReader::new(std::fs::File::open(&f).ok()?).ok()?;
        let meta = reader.metadata();
        if meta.file_metadata().schema_descr().column(0).name() != "event_time" {
            return None;
        }
        for rg in meta.row_groups() {
            if rg.num_rows() == 0 {
                continue;
            }
            let Statistics::Int64(s) = rg.column(0).statistics()? else {
                return None;
            };
            let (lo, hi) = (*s.min_opt()?, *s.max_opt()?);
            out = Some(out.map_or((lo, hi), |(a, b)| (a.min(lo), b.max(hi))));
        }
    }
    Some(out)
}

/// The events kept with `view`'s filters only: `account`, `role`, `engineer`
/// (`None`: no filter).
fn filters(view: &ViewParams) -> Option<Expr> {
    let mut keep: Option<Expr> = None;
    for (name, value) in [
        ("account", &view.account),
        ("role", &view.role),
        ("engineer", &view.engineer),
    ] {
        if let Some(v) = value {
            let test = col(name).eq(lit(v.clone()));
            keep = Some(match keep {
                Some(k) => k.and(test),
                None => test,
            });
        }
    }
    keep
}

/// What `serve` keeps per time zone, made once from the kept scan: the events with
/// the calendar columns of the zone and business hours (for no range) and
/// `session_facts` per day (grouped without `in_range`). A view of that zone is a
/// slice of these events with its range's three columns set again, and its facts are
/// split from the days' ([`Dashboard::from_zoned`]).
pub struct Zoned {
    /// The zone and business hours; no range, no filter.
    calendar: ViewParams,
    events: DataFrame,
    day_facts: DataFrame,
}

impl Zoned {
    /// `scanned` is what [`view::materialise_rows`] gives for [`view::VIEW_COLUMNS`]
    /// with no account, role or engineer filter (the lake's CE events, one per id, in
    /// event order); `view` gives the zone and business hours (its range and filters
    /// are not used).
    pub fn new(scanned: &DataFrame, view: &ViewParams) -> PolarsResult<Self> {
        let calendar = ViewParams {
            from: None,
            to: None,
            account: None,
            role: None,
            engineer: None,
            ..view.clone()
        };
        let events = view::with_core(scanned.clone(), &calendar)?;
        let day_facts =
            facts_grouped(events.clone().lazy(), false).collect_on(Engine::Streaming)?;
        Ok(Self {
            calendar,
            events,
            day_facts,
        })
    }

    /// Whether a view of `view`'s zone and business hours can be made from these.
    pub fn fits(&self, view: &ViewParams) -> bool {
        let c = &self.calendar;
        c.zone == view.zone
            && c.business_start == view.business_start
            && c.business_end == view.business_end
            && c.business_days == view.business_days
    }
}

impl Dashboard {
    /// Opens the lake. Missing `from`/`to` default to the first and the day after the
    /// last local day of the lake.
    pub fn open(lake: &Path, config: &Config, view: ViewParams) -> PolarsResult<Self> {
        Self::open_with(lake, config, view, &[])
    }

    /// [`Dashboard::open`] with lake columns `extra` in the view besides
    /// [`view::VIEW_COLUMNS`] (see [`view::named_lake_columns`]).
    pub fn open_with(
        lake: &Path,
        config: &Config,
        mut view: ViewParams,
        extra: &[&str],
    ) -> PolarsResult<Self> {
        let bounds = default_range(lake, &mut view)?;
        let (events, stages) = view::materialise(lake, &view, extra)?;
        Ok(Self::over(events, bounds, config, view, stages))
    }

    /// A session over `events` (the materialised view) of a lake whose first and
    /// last event times are `bounds`.
    fn over(
        events: DataFrame,
        bounds: Option<(i64, i64)>,
        config: &Config,
        view: ViewParams,
        stages: view::Stages,
    ) -> Self {
        let ctx = SQLContext::new();
        ctx.register("events", view::finish(events.clone().lazy()));
        let params = template_params(config, &view, bounds.map(|b| b.0));
        Self {
            ctx,
            params,
            view,
            config: config.clone(),
            events,
            lake_start: bounds.map(|b| b.0),
            stages,
        }
    }

    /// A session over events already read and kept with their calendar columns
    /// ([`Zoned`], of `view`'s zone and business hours), of a lake whose first and
    /// last event times are `bounds`. The events of `view`'s filters are kept (in
    /// order, so the rows equal those of a scan that filtered), then the columns that
    /// depend on the range are set ([`calendar::set_range_columns`]), and
    /// `session_facts` is split from the zone's facts per day when it can be
    /// ([`Dashboard::facts_from_days`]). `serve` keeps the scan and its zones between
    /// requests, so a new range or filter reads nothing from the lake and computes no
    /// calendar.
    ///
    /// Only the events a widget can read are kept (see [`Dashboard::window`]): the
    /// range, the history the anomalies compare it with, and the weeks around it.
    ///
    /// [`calendar::set_range_columns`]: super::calendar::set_range_columns
    pub fn from_zoned(
        zoned: &Zoned,
        bounds: Option<(i64, i64)>,
        config: &Config,
        mut view: ViewParams,
    ) -> PolarsResult<Self> {
        if !zoned.fits(&view) {
            return Err(PolarsError::ComputeError(
                format!(
                    "the kept calendar is of zone {} and its business hours, the view asks for {}",
                    zoned.calendar.zone, view.zone
                )
                .into(),
            ));
        }
        let mut stages = view::Stages::default();
        fill_range(bounds, &mut view);
        let scanned = &zoned.events;
        // The scan is in time order: the window is a slice (no copy).
        let mut events = match Self::window(config, &view) {
            Some((lo, hi)) => {
                let times = scanned
                    .column("event_time")?
                    .as_materialized_series()
                    .to_physical_repr()
                    .i64()?
                    .rechunk()
                    .into_owned();
                match times.cont_slice() {
                    Ok(values) => {
                        let start = values.partition_point(|t| *t < lo);
                        let end = values.partition_point(|t| *t < hi);
                        scanned.slice(start as i64, end - start)
                    }
                    // A null time (not in a lake our writer wrote): filtered instead.
                    Err(_) => {
                        let t = col("event_time").dt().timestamp(TimeUnit::Microseconds);
                        scanned
                            .clone()
                            .lazy()
                            .filter(t.clone().gt_eq(lit(lo)).and(t.lt(lit(hi))))
                            .collect()?
                    }
                }
            }
            None => scanned.clone(),
        };
        if let Some(keep) = filters(&view) {
            events = events.lazy().filter(keep).collect()?;
        }
        stages.lap("filter");
        super::calendar::set_range_columns(&mut events, &view)?;
        stages.lap("calendar");
        let mut d = Self::over(events, bounds, config, view, stages);
        if d.facts_from_days(&zoned.day_facts)? {
            d.stages.lap("facts-by-day");
        }
        Ok(d)
    }

    /// Registers `session_facts` split from `days` (a [`Zoned`]'s facts per day, no
    /// range key) when no group of them straddles a bound of the range: then every
    /// event of a group is on the same side of each bound, the groups by range are
    /// the groups by day, and each one's `in_range` is its first event's. The facts
    /// cover the whole lake where the events cover the view's window: the widgets
    /// read the facts in range and the weeks around it only, and the facts of the
    /// whole lake are those of [`Dashboard::open`] (a test compares every widget).
    /// `false` (nothing registered): a group straddles a bound (a range that does not
    /// start or end at a local midnight) or a time is null; the facts are then
    /// computed from the events when first needed.
    fn facts_from_days(&mut self, days: &DataFrame) -> PolarsResult<bool> {
        let mut facts = match filters(&self.view) {
            Some(keep) => days.clone().lazy().filter(keep).collect()?,
            None => days.clone(),
        };
        let micros = |name: &str| -> PolarsResult<Vec<Option<i64>>> {
            let s = facts
                .column(name)?
                .as_materialized_series()
                .to_physical_repr();
            Ok(s.i64()?.iter().collect())
        };
        let (los, his) = (micros("lo")?, micros("hi")?);
        let from = self.view.from.map(|t| t.timestamp_micros());
        let to = self.view.to.map(|t| t.timestamp_micros());
        let straddles =
            |lo: i64, hi: i64, bound: Option<i64>| bound.is_some_and(|b| lo < b && hi >= b);
        let mut in_range = Vec::with_capacity(los.len());
        for (lo, hi) in los.iter().zip(&his) {
            let (Some(lo), Some(hi)) = (*lo, *hi) else {
                return Ok(false);
            };
            if straddles(lo, hi, from) || straddles(lo, hi, to) {
                return Ok(false);
            }
            in_range.push(from.is_none_or(|f| lo >= f) && to.is_none_or(|t| lo < t));
        }
        let mut memo: BTreeMap<i32, bool> = BTreeMap::new();
        let mut mondays_in = |name: &str| -> PolarsResult<BooleanChunked> {
            let s = facts
                .column(name)?
                .as_materialized_series()
                .to_physical_repr();
            Ok(s.i32()?
                .iter()
                .map(|d| {
                    d.map(|d| {
                        *memo
                            .entry(d)
                            .or_insert_with(|| super::calendar::monday_in_range(&self.view, d))
                    })
                })
                .collect())
        };
        let week_in = mondays_in("week")?.with_name("week_in_range".into());
        let next_week_in = mondays_in("next_week")?.with_name("next_week_in_range".into());
        facts
            .with_column(BooleanChunked::from_slice("in_range".into(), &in_range).into_column())?;
        facts.with_column(week_in.into_column())?;
        facts.with_column(next_week_in.into_column())?;
        self.register_facts(facts)?;
        Ok(true)
    }

    /// The events (µs, half-open) a widget of `view` can read: from the longest
    /// history before the range (the anomalies' volume window and first-seen lookback,
    /// the week before the first week), to the end of the range's last week (the
    /// week-over-week counts whole weeks), each with two days to spare for the zone.
    /// `None`: no range. The view of [`Dashboard::open`] holds every event; a test
    /// checks that the widgets see no difference.
    pub fn window(config: &Config, view: &ViewParams) -> Option<(i64, i64)> {
        const DAY_US: i64 = 86_400_000_000;
        let (from, to) = (view.from?, view.to?);
        let a = &config.anomalies;
        let before = i64::from(a.volume_window_days.max(a.first_seen_lookback_days).max(7)) + 2;
        Some((
            from.timestamp_micros().saturating_sub(before * DAY_US),
            to.timestamp_micros().saturating_add(9 * DAY_US),
        ))
    }

    /// A second session over the same view and tables (shared, not copied), for
    /// running widgets side by side on another thread.
    fn fork(&self) -> Self {
        Self {
            ctx: self.ctx.clone(),
            params: self.params.clone(),
            view: self.view.clone(),
            config: self.config.clone(),
            events: self.events.clone(),
            lake_start: self.lake_start,
            stages: view::Stages::default(),
        }
    }

    /// Runs `widgets`, up to `jobs` at a time, and returns their frames in the order
    /// given. Each job is a thread with its own fork of this session (the view and
    /// `session_facts`, computed first if a widget needs it, are shared); the work
    /// itself runs on polars' thread pool, which the jobs keep busy between one query's
    /// parallel parts. The longest widgets start first. A widget's time includes
    /// waiting for the pool when `jobs` > 1: time widgets one at a time to compare them.
    pub fn run_widgets(
        &mut self,
        widgets: &[&'static Widget],
        jobs: usize,
    ) -> PolarsResult<Vec<WidgetRun>> {
        if widgets.iter().any(|w| w.sql.contains("session_facts")) {
            self.session_facts()?;
        }
        let mut schedule: Vec<usize> = (0..widgets.len()).collect();
        schedule.sort_by_key(|&i| std::cmp::Reverse(widgets[i].expected_cost()));
        let next = std::sync::atomic::AtomicUsize::new(0);
        let run_one = |d: &mut Dashboard| -> PolarsResult<Vec<(usize, DataFrame, f64)>> {
            let mut done = Vec::new();
            loop {
                let k = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some(&i) = schedule.get(k) else {
                    return Ok(done);
                };
                let w = widgets[i];
                let t = std::time::Instant::now();
                let df = d
                    .widget(w)
                    .map_err(|e| e.context(format!("widget {}", w.name).into()))?;
                done.push((i, df, t.elapsed().as_secs_f64() * 1e3));
            }
        };
        let jobs = jobs.clamp(1, widgets.len().max(1));
        let mut done = Vec::with_capacity(widgets.len());
        if jobs == 1 {
            done = run_one(self)?;
        } else {
            let forks: Vec<Dashboard> = (0..jobs).map(|_| self.fork()).collect();
            std::thread::scope(|s| -> PolarsResult<()> {
                let handles: Vec<_> = forks
                    .into_iter()
                    .map(|mut d| s.spawn(move || run_one(&mut d)))
                    .collect();
                for h in handles {
                    let part = h.join().map_err(|_| {
                        PolarsError::ComputeError("a widget's thread panicked".into())
                    })??;
                    done.extend(part);
                }
                Ok(())
            })?;
        }
        done.sort_by_key(|(i, _, _)| *i);
        Ok(done
            .into_iter()
            .map(|(i, frame, ms)| WidgetRun {
                widget: widgets[i],
                frame,
                ms,
            })
            .collect())
    }

    /// The materialised part of the view (CE events, one per id, core derived columns).
    pub fn events(&self) -> &DataFrame {
        &self.events
    }

    /// The whole `events` view, lazily.
    pub fn view_frame(&self) -> LazyFrame {
        view::finish(self.events.clone().lazy())
    }

    /// The `{{placeholder}}` values of this session.
    pub fn params(&self) -> &BTreeMap<&'static str, String> {
        &self.params
    }

    /// Runs SQL (with `{{placeholders}}`) over the view.
    pub fn sql(&mut self, sql: &str) -> PolarsResult<DataFrame> {
        self.sql_on(sql, Engine::InMemory)
    }

    /// [`Dashboard::sql`] on a chosen polars engine.
    pub fn sql_on(&mut self, sql: &str, engine: Engine) -> PolarsResult<DataFrame> {
        let text = render_template(sql, &self.params);
        if text.contains("session_facts") {
            self.session_facts()?;
        }
        self.ctx.execute(&text)?.collect_on(engine)
    }

    /// Materialises the `session_facts` view (once; later calls return at once).
    /// The dashboard calls it up front so that its time counts with the view's.
    pub fn session_facts(&mut self) -> PolarsResult<()> {
        if self.ctx.get_tables().iter().any(|t| t == "session_facts") {
            return Ok(());
        }
        // The SQL file is the definition (the other engines run it, and its output
        // types are kept); polars computes the same rows by the shorter key of
        // [`session_facts_grouped`].
        let grouped =
            session_facts_grouped(self.events.clone().lazy()).collect_on(Engine::Streaming)?;
        self.register_facts(grouped)
    }

    /// Registers `grouped` (the rows of `session_facts`, columns in any order) as
    /// `session_facts` in the SQL file's column order and types.
    fn register_facts(&mut self, grouped: DataFrame) -> PolarsResult<()> {
        let text = render_template(SESSION_FACTS_SQL, &self.params);
        let schema = self.ctx.execute(&text)?.collect_schema()?;
        let columns = schema
            .iter()
            .map(|(name, dtype)| grouped.column(name).and_then(|c| c.cast(dtype)))
            .collect::<PolarsResult<Vec<_>>>()?;
        let facts = DataFrame::new(grouped.height(), columns)?;
        self.ctx.register("session_facts", facts.lazy());
        Ok(())
    }

    /// The activity feed (`queries/activity-feed.sql`): the view is stored in its
    /// order (`event_time`, `event_id`), so the rows in range are taken in place rather
    /// than sorted again.
    fn activity_feed(&self) -> PolarsResult<DataFrame> {
        self.view_frame()
            .filter(col("in_range").and(col("is_ce")))
            .select([
                col("event_time"),
                col("account"),
                col("aws_region").alias("region"),
                col("role"),
                col("engineer"),
                col("event_source"),
                col("event_name"),
                col("resource"),
                col("source_ip"),
                col("error_code"),
                col("event_id"),
            ])
            .collect()
    }

    /// Runs one widget on the engine it is tuned for.
    pub fn widget(&mut self, w: &Widget) -> PolarsResult<DataFrame> {
        self.widget_on(w, w.engine())
    }

    /// Runs one widget on a chosen polars engine.
    pub fn widget_on(&mut self, w: &Widget, engine: Engine) -> PolarsResult<DataFrame> {
        match w.name {
            "anomalies" => return super::anomalies::anomalies(self, engine),
            "activity-feed" => return self.activity_feed(),
            "access-denied-alarm" => {
                let sql = render_template(w.sql, &self.params);
                let threshold = self
                    .params
                    .get("denied_threshold")
                    .and_then(|t| t.parse::<i64>().ok())
                    .ok_or_else(|| {
                        PolarsError::ComputeError("no denied_threshold for the alarm".into())
                    })?;
                return super::denied_alarm::access_denied_alarm(
                    &self.events,
                    &mut self.ctx,
                    &sql,
                    threshold,
                    engine,
                );
            }
            _ => {}
        }
        type Native = fn(&DataFrame, &mut SQLContext, &str, Engine) -> PolarsResult<DataFrame>;
        let native: Option<Native> = match w.name {
            "top-actions" => Some(super::top_actions::top_actions),
            "write-actions" => Some(super::action_groups::write_actions),
            "denied-actions" => Some(super::action_groups::denied_actions),
            _ => None,
        };
        if let Some(native) = native {
            let sql = render_template(w.sql, &self.params);
            return native(&self.events, &mut self.ctx, &sql, engine);
        }
        self.sql_on(w.sql, engine)
    }
}
