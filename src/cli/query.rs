//! `cetrail query`, `cetrail widgets`, `cetrail dashboard`: the widgets of SPEC §5.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use cetrail::config::Config;
use cetrail::query::view::ViewParams;
use cetrail::query::widgets::{self, Dashboard, WIDGETS};
use cetrail::render::{self, Format, Table, TimeStyle};
use chrono::{DateTime, Utc};

/// Arguments shared by every command that reads the lake.
#[derive(Debug, clap::Args)]
pub struct LakeArgs {
    /// The lake: a folder or `s3://bucket/prefix` (mirrored to the cache folder).
    #[arg(long, value_name = "DIR|S3")]
    pub lake: PathBuf,
    /// Start of the range: a date (00:00 in the configured zone) or an RFC 3339 instant.
    #[arg(long)]
    pub from: Option<String>,
    /// End of the range (exclusive), same forms as --from.
    #[arg(long)]
    pub to: Option<String>,
    /// Only this client account.
    #[arg(long)]
    pub account: Option<String>,
    /// Only this CE role.
    #[arg(long)]
    pub role: Option<String>,
    /// Configuration file (default ./cetrail.toml, else built-in defaults).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// IANA time zone for days, weeks and business hours (overrides the configuration).
    #[arg(long)]
    pub tz: Option<String>,
    /// Print times in the zone, with their offset, instead of UTC.
    #[arg(long)]
    pub local_time: bool,
    #[command(flatten)]
    pub s3: super::S3Args,
    /// Only this engineer: set by the commands that take `--engineer` as a filter
    /// (`timeline` takes it as what to tell).
    #[arg(skip)]
    pub engineer: Option<String>,
}

impl LakeArgs {
    /// Configuration, view parameters and time style.
    pub fn resolve(&self) -> Result<(Config, ViewParams, TimeStyle)> {
        let mut config = super::load_config(self.config.as_deref())?;
        if let Some(tz) = &self.tz {
            if tz.parse::<chrono_tz::Tz>().is_err() {
                bail!("--tz: `{tz}` is not an IANA time zone");
            }
            config.time.zone = tz.clone();
        }
        let mut view = ViewParams::from_config(&config);
        view.from = self
            .from
            .as_deref()
            .map(|s| instant(s, view.zone))
            .transpose()
            .context("--from")?;
        view.to = self
            .to
            .as_deref()
            .map(|s| instant(s, view.zone))
            .transpose()
            .context("--to")?;
        if let (Some(f), Some(t)) = (view.from, view.to)
            && f >= t
        {
            bail!("--from must be before --to");
        }
        view.account = self.account.clone();
        view.role = self.role.clone();
        view.engineer = self.engineer.clone();
        let style = TimeStyle {
            local: self.local_time.then_some(view.zone),
        };
        Ok((config, view, style))
    }

    /// The lake as a local folder (an S3 lake's mirror).
    pub fn local(&self) -> Result<PathBuf> {
        self.s3.readable_lake(&self.lake)
    }

    pub fn open(&self) -> Result<(Dashboard, TimeStyle)> {
        self.open_with(&[])
    }

    /// [`LakeArgs::open`] with more lake columns in the view (those a user's SQL names).
    pub fn open_with(&self, extra: &[&str]) -> Result<(Dashboard, TimeStyle)> {
        let (config, view, style) = self.resolve()?;
        let lake = self.local()?;
        let d = Dashboard::open_with(&lake, &config, view, extra)
            .with_context(|| format!("reading the lake {}", self.lake.display()))?;
        Ok((d, style))
    }
}

/// A `--from/--to` value: a date is 00:00 of that day in `zone`.
fn instant(s: &str, zone: chrono_tz::Tz) -> Result<DateTime<Utc>> {
    widgets::parse_instant(s, zone).ok_or_else(|| {
        anyhow::anyhow!("`{s}` is neither a date (YYYY-MM-DD) nor an RFC 3339 instant")
    })
}

#[derive(Debug, clap::Args)]
pub struct QueryArgs {
    /// A widget name (see `cetrail widgets`) or a path to a .sql file over the `events` view.
    widget: String,
    #[command(flatten)]
    lake: LakeArgs,
    /// Only this engineer (role session name).
    #[arg(long)]
    engineer: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
    /// At most this many rows.
    #[arg(long)]
    limit: Option<usize>,
    /// Print the time of the view and of the query (JSON, on stderr).
    #[arg(long)]
    timings: bool,
    /// Run the query this many times over the one view (with --timings: each time).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    repeat: u32,
}

pub fn query(mut args: QueryArgs) -> Result<ExitCode> {
    args.lake.engineer = args.engineer.take();
    let sql = match widgets::find(&args.widget) {
        Some(_) => None,
        None if args.widget.ends_with(".sql") || std::path::Path::new(&args.widget).is_file() => {
            Some(
                std::fs::read_to_string(&args.widget)
                    .with_context(|| format!("reading {}", args.widget))?,
            )
        }
        None => bail!("unknown widget `{}` (see `cetrail widgets`)", args.widget),
    };
    let extra = sql
        .as_deref()
        .map(cetrail::query::view::named_lake_columns)
        .unwrap_or_default();
    let started = std::time::Instant::now();
    let (mut d, style) = args.lake.open_with(&extra)?;
    let view_ms = started.elapsed().as_secs_f64() * 1e3;
    let mut query_ms = Vec::new();
    let mut df = polars::prelude::DataFrame::empty();
    for _ in 0..args.repeat {
        let t = std::time::Instant::now();
        df = match (&sql, widgets::find(&args.widget)) {
            (Some(text), _) => d
                .sql(text)
                .with_context(|| format!("running {}", args.widget))?,
            (None, Some(w)) => d
                .widget(w)
                .with_context(|| format!("running widget {}", w.name))?,
            (None, None) => bail!("unknown widget `{}`", args.widget),
        };
        query_ms.push(t.elapsed().as_secs_f64() * 1e3);
    }
    if args.timings {
        eprintln!(
            "{}",
            serde_json::json!({
                "view_ms": view_ms,
                "view_stages_ms": d.stages.laps.iter().map(|(k, v)| ((*k).to_string(), serde_json::json!(v))).collect::<serde_json::Map<_, _>>(),
                "query_ms": query_ms,
                "rows": df.height(),
            })
        );
    }
    // Only the rows printed are converted.
    let df = match args.limit {
        Some(n) => df.head(Some(n)),
        None => df,
    };
    // Buffered: stdout alone flushes at every line.
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    render::write_frame(&mut out, &df, args.format, style)?;
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

#[derive(Debug, clap::Args)]
pub struct WidgetsArgs {}

pub fn list(_: WidgetsArgs) -> Result<ExitCode> {
    let mut out = std::io::stdout().lock();
    for w in &WIDGETS {
        writeln!(out, "{:2}  {:20} {}", w.number, w.name, w.title)?;
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DashFormat {
    Table,
    Md,
    Json,
}

#[derive(Debug, clap::Args)]
pub struct DashboardArgs {
    #[command(flatten)]
    lake: LakeArgs,
    /// Only this engineer (role session name).
    #[arg(long)]
    engineer: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = DashFormat::Table)]
    format: DashFormat,
    /// Rows shown per widget (default: 15 in a table, all otherwise).
    #[arg(long)]
    limit: Option<usize>,
    /// Print the time of the view and of each widget (JSON, on stderr).
    #[arg(long)]
    timings: bool,
    /// Widgets computed at a time (each query is parallel on its own too; with more
    /// than one, a widget's time includes waiting for the others).
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u16).range(1..=64))]
    jobs: u16,
}

/// Terminal colours of a section heading: red for an alarm, green for an alarm
/// state that is quiet, bold otherwise (`alarm`: `None` for a section without one).
fn colors(color: bool, alarm: Option<bool>) -> (&'static str, &'static str) {
    match (color, alarm) {
        (false, _) => ("", ""),
        (true, Some(true)) => ("\x1b[1;31m", "\x1b[0m"),
        (true, Some(false)) => ("\x1b[1;32m", "\x1b[0m"),
        (true, None) => ("\x1b[1m", "\x1b[0m"),
    }
}

pub fn dashboard(mut args: DashboardArgs) -> Result<ExitCode> {
    args.lake.engineer = args.engineer.take();
    let started = std::time::Instant::now();
    let (mut d, style) = args.lake.open()?;
    // Six widgets read `session_facts`: computed here, its time counted with the view's.
    d.session_facts()
        .context("computing the session_facts view")?;
    d.stages.lap("session facts");
    let view_ms = started.elapsed().as_secs_f64() * 1e3;
    let mut results = Vec::with_capacity(WIDGETS.len());
    let mut timings = serde_json::Map::new();
    // Alarm states first, as the real dashboard shows them.
    let mut order: Vec<_> = WIDGETS.iter().collect();
    order.sort_by_key(|w| (!w.alarm, w.number));
    let table_limit = match args.format {
        DashFormat::Table => Some(args.limit.unwrap_or(15)),
        _ => args.limit,
    };
    let started_widgets = std::time::Instant::now();
    let runs = d
        .run_widgets(&order, usize::from(args.jobs))
        .context("running the dashboard's widgets")?;
    let widgets_ms = started_widgets.elapsed().as_secs_f64() * 1e3;
    // Our Sigma rules over the same range and filters (every kind of event).
    let started_detections = std::time::Instant::now();
    let detections = cetrail::detect::run::ours(&args.lake.local()?, &d.view)
        .and_then(|r| r.overview(None))
        .context("running our detection rules (queries/rules)")?;
    let detections_ms = started_detections.elapsed().as_secs_f64() * 1e3;
    for run in runs {
        timings.insert(run.widget.name.into(), run.ms.into());
        let total = run.frame.height();
        // Only the rows shown are converted for output.
        let shown = match table_limit {
            Some(n) => run.frame.head(Some(n)),
            None => run.frame,
        };
        results.push((run.widget, shown, total));
    }
    if args.timings {
        // Wall time of the view and of the widgets (rendering the tables excluded).
        let total_ms = view_ms + widgets_ms + detections_ms;
        eprintln!(
            "{}",
            serde_json::json!({
                "view_ms": view_ms,
                "view_stages_ms": d.stages.laps.iter().map(|(k, v)| ((*k).to_string(), serde_json::json!(v))).collect::<serde_json::Map<_, _>>(),
                "widgets_ms": timings,
                "widgets_wall_ms": widgets_ms,
                "detections_ms": detections_ms,
                "jobs": args.jobs,
                "total_ms": total_ms,
                "events": d.events().height()
            })
        );
    }
    // A log-group source without read-only events makes the widgets undercount.
    let warnings = cetrail::lake::sources::warnings(&args.lake.local()?)
        .with_context(|| format!("reading the sources of {}", args.lake.lake.display()))?;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let range = |t: Option<DateTime<Utc>>| {
        t.map(|t| render::format_time(t.timestamp_micros(), style))
            .unwrap_or_default()
    };
    match args.format {
        DashFormat::Json => {
            // Written widget by widget, rows straight from the frames, so that a feed
            // of millions of events is never held as cells or JSON values.
            writeln!(out, "{{")?;
            writeln!(
                out,
                "  \"from\": {},",
                serde_json::to_string(&range(d.view.from))?
            )?;
            writeln!(
                out,
                "  \"to\": {},",
                serde_json::to_string(&range(d.view.to))?
            )?;
            writeln!(
                out,
                "  \"zone\": {},",
                serde_json::to_string(&d.config.time.zone)?
            )?;
            if !warnings.is_empty() {
                writeln!(
                    out,
                    "  \"warnings\": {},",
                    serde_json::to_string(&warnings)?
                )?;
            }
            write!(out, "  \"widgets\": {{")?;
            for (i, (w, df, _)) in results.iter().enumerate() {
                let sep = if i > 0 { "," } else { "" };
                write!(out, "{sep}\n    {}: [", serde_json::to_string(w.name)?)?;
                let mut first = true;
                if df.height() > 0 {
                    write!(out, "\n      ")?;
                }
                render::write_frame_json_rows(&mut out, df, style, ",\n      ", &mut first)?;
                write!(out, "{}]", if first { "" } else { "\n    " })?;
            }
            write!(
                out,
                "\n  }},\n  \"detections\": {{\"alarm\": {}, \"rules_run\": {}, \"hits\": {}, \"rules\": [",
                detections.alarm, detections.ran, detections.total
            )?;
            let mut first = true;
            if detections.rules.height() > 0 {
                write!(out, "\n    ")?;
            }
            render::write_frame_json_rows(
                &mut out,
                &detections.rules,
                style,
                ",\n    ",
                &mut first,
            )?;
            writeln!(out, "{}]}}\n}}", if first { "" } else { "\n  " })?;
        }
        DashFormat::Table | DashFormat::Md => {
            let md = args.format == DashFormat::Md;
            let limit = args.limit.unwrap_or(if md { usize::MAX } else { 15 });
            let color =
                !md && std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
            let span = match (d.view.from, d.view.to) {
                (None, None) => "(the lake holds no CE event yet)".to_string(),
                (f, t) => format!("{} → {}", range(f), range(t)),
            };
            writeln!(
                out,
                "{}cetrail dashboard{} {span} ({})\n",
                if md { "# " } else { "" },
                if md { ":" } else { "" },
                d.config.time.zone
            )?;
            for w in &warnings {
                writeln!(out, "{}warning: {w}\n", if md { "> " } else { "" })?;
            }
            for (w, df, total) in results {
                let mut t = Table::from_frame(&df)?;
                let state = if w.alarm {
                    if total > 0 { " ALARM" } else { " OK" }
                } else {
                    ""
                };
                let (on, off) = colors(color, w.alarm.then_some(total > 0));
                writeln!(
                    out,
                    "{}{on}{:>2}. {}{state}{off} — {} ({total} rows)",
                    if md { "## " } else { "" },
                    w.number,
                    w.name,
                    w.title
                )?;
                t.truncate(limit);
                if md {
                    writeln!(out)?;
                    writeln!(out, "{}", render::markdown(&t, style))?;
                } else {
                    writeln!(out, "{}", render::table(&t, style))?;
                    if total > limit {
                        writeln!(
                            out,
                            "… {} more rows (cetrail query {} --lake …)",
                            total - limit,
                            w.name
                        )?;
                    }
                    writeln!(out)?;
                }
            }
            // After the widgets: which of our Sigma rules hit, alarm when a high or
            // critical one did.
            let state = if detections.alarm { "ALARM" } else { "OK" };
            let (on, off) = colors(color, Some(detections.alarm));
            writeln!(
                out,
                "{}{on}18. detections {state}{off} — Sigma rules of queries/rules ({} hits, {} of {} rules; cetrail detect --lake … lists them)",
                if md { "## " } else { "" },
                detections.total,
                detections.rules.height(),
                detections.ran
            )?;
            let t = Table::from_frame(&detections.rules)?;
            if md {
                writeln!(out)?;
                writeln!(out, "{}", render::markdown(&t, style))?;
            } else {
                writeln!(out, "{}", render::table(&t, style))?;
            }
        }
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}
