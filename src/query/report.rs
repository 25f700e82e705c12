//! The monthly compliance report's content (SPEC §7): every widget, the audit,
//! anomalies and week-over-week, the chart series, and the coverage of the data, for one
//! month (local to the configured zone) and optionally one account. Rendering is in
//! `render::html` and `render::text`.

use std::path::Path;

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use polars::prelude::*;

use super::audit::{Audit, AuditParams, audit};
use super::view::{Stages, ViewParams};
use super::widgets::{Dashboard, WIDGETS, Widget, local_midnight};
use crate::config::Config;
use crate::lake::coverage::{Coverage, coverage};
use crate::render::{Cell, Table};

/// Rows of a widget shown in the report (the rest is counted, not shown).
pub const MAX_ROWS: usize = 200;

/// Widgets computed at a time (see [`Dashboard::run_widgets`]).
const WIDGET_JOBS: usize = 2;

/// One widget's result.
#[derive(Debug, Clone)]
pub struct WidgetResult {
    pub widget: &'static Widget,
    pub table: Table,
    /// Rows before the cut to [`MAX_ROWS`].
    pub total: usize,
}

/// Everything the report shows.
#[derive(Debug, Clone)]
pub struct Report {
    pub month: String,
    pub account: Option<String>,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub config: Config,
    pub widgets: Vec<WidgetResult>,
    pub audit: Audit,
    pub coverage: Coverage,
    /// The series the charts draw besides the widgets' rows.
    pub activity: Activity,
    pub events: usize,
    /// Our Sigma rules over the month (every kind of event).
    pub detections: ReportDetections,
    /// The wall time of the report's steps (`--timings`).
    pub stages: crate::query::view::Stages,
}

/// What the report shows of our Sigma rules (SPEC §12).
#[derive(Debug, Clone)]
pub struct ReportDetections {
    /// A rule of level high or critical hit.
    pub alarm: bool,
    /// Rules that ran.
    pub ran: usize,
    /// Hits in the month.
    pub total: usize,
    /// Per rule that hit: hits, first and last.
    pub rules: Table,
    /// The hits, at most [`MAX_ROWS`].
    pub hits: Table,
}

impl Report {
    /// The result of one widget.
    pub fn widget(&self, name: &str) -> Option<&WidgetResult> {
        self.widgets.iter().find(|w| w.widget.name == name)
    }
}

/// Parses `YYYY-MM` into its first day and the first day of the next month.
pub fn month_bounds(month: &str) -> Option<(NaiveDate, NaiveDate)> {
    let first = NaiveDate::parse_from_str(&format!("{month}-01"), "%Y-%m-%d").ok()?;
    let next = if first.month() == 12 {
        NaiveDate::from_ymd_opt(first.year() + 1, 1, 1)?
    } else {
        NaiveDate::from_ymd_opt(first.year(), first.month() + 1, 1)?
    };
    Some((first, next))
}

/// Builds the report of `month` (`first`..`next` local days) over the lake.
pub fn build(
    lake: &Path,
    config: &Config,
    month: &str,
    first: NaiveDate,
    next: NaiveDate,
    account: Option<String>,
) -> PolarsResult<Report> {
    let mut view = ViewParams::from_config(config);
    let from = local_midnight(first, view.zone);
    let to = local_midnight(next, view.zone);
    view.from = Some(from);
    view.to = Some(to);
    view.account = account.clone();
    // Two sides at a time (each parallel inside too, neither keeps both cores busy
    // alone): our rules, the audit and the sources' coverage on one thread, the view,
    // its widgets and charts on this one. Each side's steps are timed on their own
    // clock, so the steps overlap in time.
    let side = || -> PolarsResult<(ReportDetections, Audit, Coverage, Stages)> {
        let mut stages = Stages::default();
        let overview = crate::detect::run::ours(lake, &view)?.overview(Some(MAX_ROWS))?;
        let detections = ReportDetections {
            alarm: overview.alarm,
            ran: overview.ran,
            total: overview.total,
            rules: Table::from_frame(&overview.rules)?,
            hits: Table::from_frame(&overview.hits)?,
        };
        stages.lap("detections");
        let audit = audit(
            lake,
            config,
            &AuditParams {
                from: Some(from),
                to: Some(to),
                account: account.clone(),
                // The report shows the first rows and the count.
                max_findings: Some(MAX_ROWS),
                ..AuditParams::default()
            },
        )?;
        stages.lap("audit");
        let coverage = coverage(lake, Some(first), Some(next))
            .map_err(|e| PolarsError::ComputeError(e.to_string().into()))?;
        stages.lap("coverage");
        Ok((detections, audit, coverage, stages))
    };
    let main = || -> PolarsResult<(Vec<WidgetResult>, Activity, Stages)> {
        let mut stages = Stages::default();
        let mut d = Dashboard::open(lake, config, view.clone())?;
        stages.lap("view");
        let mut widgets = Vec::with_capacity(WIDGETS.len());
        let all: Vec<&'static Widget> = WIDGETS.iter().collect();
        for run in d.run_widgets(&all, WIDGET_JOBS)? {
            let total = run.frame.height();
            widgets.push(WidgetResult {
                widget: run.widget,
                table: Table::from_frame(&run.frame.head(Some(MAX_ROWS)))?,
                total,
            });
        }
        stages.lap("widgets");
        let activity = match widgets.iter().find(|w| w.widget.name == "anomalies") {
            Some(an) => activity(&mut d, from, to, &an.table)?,
            None => activity(&mut d, from, to, &Table::default())?,
        };
        stages.lap("activity");
        Ok((widgets, activity, stages))
    };
    let (beside, here) = std::thread::scope(|scope| {
        let beside = scope.spawn(side);
        let here = main();
        (beside.join(), here)
    });
    let (detections, audit, coverage, mut stages) = beside.map_err(|_| {
        PolarsError::ComputeError("the report's rules, audit and coverage thread panicked".into())
    })??;
    let (widgets, activity, view_stages) = here?;
    stages.extend(view_stages);
    Ok(Report {
        month: month.to_string(),
        account,
        from,
        to,
        config: config.clone(),
        widgets,
        audit,
        coverage,
        events: activity.events,
        activity,
        detections,
        stages,
    })
}

/// The series of a view the charts draw besides the widgets' rows.
#[derive(Debug, Clone, Default)]
pub struct Activity {
    /// CE events by local weekday (Mon..Sun) × local hour.
    pub heat: Vec<Vec<f64>>,
    /// CE events per UTC hour from `from` to `to`.
    pub hourly: Vec<f64>,
    /// Anomalies on the hourly series: (index into `hourly`, label).
    pub marks: Vec<(usize, String)>,
    /// CE events in the range.
    pub events: usize,
}

/// The [`Activity`] of `d`'s view over `from`..`to`; `anomalies` is the `anomalies`
/// widget's table of the view (its rows mark the hourly series).
pub fn activity(
    d: &mut Dashboard,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    anomalies: &Table,
) -> PolarsResult<Activity> {
    // One pass over the view's columns: the events in range by local weekday and
    // hour, and by UTC hour (what `GROUP BY weekday, local_hour` and `GROUP BY
    // hour_idx` over `events WHERE in_range AND is_ce` count).
    let mut heat = vec![vec![0.0; 24]; 7];
    let hour0 = from.timestamp().div_euclid(3600);
    let hours = (to.timestamp().div_euclid(3600) - hour0).max(0) as usize;
    let mut hourly = vec![0.0; hours];
    let mut events = 0usize;
    let ev = d.events();
    // Each column as one array (its values, and whether row i has one).
    let one = |name: &str| -> PolarsResult<Series> {
        Ok(ev
            .column(name)?
            .as_materialized_series()
            .to_physical_repr()
            .rechunk())
    };
    let empty = || PolarsError::ComputeError("an empty column".into());
    let flags = |name: &str| -> PolarsResult<Vec<bool>> {
        Ok(ev
            .column(name)?
            .bool()?
            .iter()
            .map(|b| b == Some(true))
            .collect())
    };
    if ev.height() > 0 {
        let (in_range, is_ce) = (flags("in_range")?, flags("is_ce")?);
        use polars_arrow::array::Array as _;
        let (weekday, local_hour, hour_idx) =
            (one("weekday")?, one("local_hour")?, one("hour_idx")?);
        let weekday = weekday.i32()?.downcast_iter().next().ok_or_else(empty)?;
        let local_hour = local_hour.i32()?.downcast_iter().next().ok_or_else(empty)?;
        let hour_idx = hour_idx.i64()?.downcast_iter().next().ok_or_else(empty)?;
        for i in 0..ev.height() {
            if !(in_range[i] && is_ce[i]) {
                continue;
            }
            events += 1;
            if weekday.is_valid(i) && local_hour.is_valid(i) {
                let (wd, h) = (weekday.value(i), local_hour.value(i));
                if (1..=7).contains(&wd) && (0..24).contains(&h) {
                    heat[(wd - 1) as usize][h as usize] += 1.0;
                }
            }
            if hour_idx.is_valid(i)
                && let Some(slot) = usize::try_from(hour_idx.value(i) - hour0)
                    .ok()
                    .and_then(|i| hourly.get_mut(i))
            {
                *slot += 1.0;
            }
        }
    }
    let mut marks = Vec::new();
    let col = |name: &str| anomalies.columns.iter().position(|c| c == name);
    if let (Some(k), Some(r), Some(t)) = (col("kind"), col("role"), col("time")) {
        for row in &anomalies.rows {
            if let (Cell::Text(kind), Cell::Time(time)) = (&row[k], &row[t]) {
                let idx = time.div_euclid(3_600_000_000) - hour0;
                if let Ok(i) = usize::try_from(idx)
                    && i < hours
                {
                    let role = match &row[r] {
                        Cell::Text(s) => s.clone(),
                        _ => String::new(),
                    };
                    marks.push((i, format!("{kind} · {role}")));
                }
            }
        }
    }
    Ok(Activity {
        heat,
        hourly,
        marks,
        events,
    })
}
