//! The side of `serve` that reads the lake: one thread that answers jobs sent to it.
//! polars runs here only, never on the HTTP runtime.
//!
//! What it keeps between requests, read again only when a new ledger segment commits:
//! - the [`Base`]: the lake's CE events in the view's columns, unfiltered (what
//!   `dashboard` reads for the whole lake), and our rules' hits over the whole lake;
//! - for the last two time zones asked for, those events with the zone's calendar
//!   columns and the sessions' facts per day ([`Zoned`]);
//! - the views of the first and the last three ranges, zones and filters asked for,
//!   each made from its zone's events in memory ([`Dashboard::from_zoned`],
//!   [`Detections::within`]), with the page's tables of that view.
//!
//! So the first page reads the lake once, a zone change computes its calendar once,
//! and a range or filter change reads nothing and computes no calendar. Memory: the
//! base (what `dashboard` holds for the whole lake), two zones' calendar columns and
//! facts, and at most four views, each a slice of its zone's events (a filter copies
//! the rows it keeps) with three columns of its own.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::mpsc;

use chrono::{DateTime, Utc};
use polars::prelude::DataFrame;

use super::page::FEED_PAGE_ROWS;
use crate::config::Config;
use crate::detect::run::Detections;
use crate::query::report::{self, Activity};
use crate::query::view::{self, ViewParams};
use crate::query::widgets::{self, Dashboard, WIDGETS, Zoned, parse_instant};
use crate::render::{self, Format, Table, TimeStyle};

/// What a page or an endpoint asks for: the URL's query parameters.
pub type Params = BTreeMap<String, String>;

/// The widget whose rows a page shows in pages.
const FEED: &str = "activity-feed";

/// A request for the worker, with where its answer goes.
pub enum Job {
    /// `/api/widgets/<name>`: the rows `cetrail query <name> --format json` prints.
    Widget {
        name: String,
        params: Params,
        reply: tokio::sync::oneshot::Sender<Answer>,
    },
    /// `/`: the whole page.
    Page {
        params: Params,
        reply: tokio::sync::oneshot::Sender<Answer>,
    },
    /// `/timeline`: one story.
    Timeline {
        params: Params,
        reply: tokio::sync::oneshot::Sender<Answer>,
    },
}

/// A job's answer: the body and how long its steps took, or a status and why.
pub type Answer = Result<Reply, (u16, String)>;

/// A body, and its steps' times as a `Server-Timing` header value
/// (`name;dur=ms, …`: the browser's navigation timing shows them).
pub struct Reply {
    pub body: Vec<u8>,
    pub timing: String,
}

/// What a job's own method gives.
type Body = Result<Vec<u8>, (u16, String)>;

/// What the worker keeps of the lake until a new ledger segment commits.
struct Base {
    /// [`ledger_state`] when it was read.
    ledger: String,
    /// The lake's CE events, one per id, in event order, [`view::VIEW_COLUMNS`], no
    /// account, role or engineer filter.
    scanned: DataFrame,
    /// The lake's first and last event time (µs).
    bounds: Option<(i64, i64)>,
    /// Our rules over the whole lake (no range, no filter).
    detections: Detections,
    /// When the newest ledger segment committed.
    updated: Option<DateTime<Utc>>,
    /// The events with the calendar columns of the last [`ZONES_KEPT`] zones asked
    /// for, the latest last.
    zones: Vec<Zoned>,
}

/// Time zones whose calendar columns are kept: the one on screen and the one before
/// (a zone change and back costs no calendar).
const ZONES_KEPT: usize = 2;

/// The view of one range, zone and filters, and the ledger state it was read at.
struct Cached {
    key: String,
    dashboard: Dashboard,
    /// The page's tables, computed at the first page request of this view (a feed
    /// page or a refresh of the same view reads them again, not the lake).
    tables: Option<PageTables>,
    /// The first view made from this base (the page one opens first, and comes back
    /// to): kept until the base changes.
    pinned: bool,
}

/// Every widget's rows, and our rules that hit (whether a high or critical one did,
/// all hits).
struct PageTables {
    /// The activity feed's rows are in `feed` (its table here is empty): a page
    /// renders only the slice it shows.
    widgets: Vec<(&'static widgets::Widget, Table)>,
    feed: DataFrame,
    detections: (Table, bool, usize),
    activity: Activity,
}

/// The worker's state.
pub struct Worker {
    lake: PathBuf,
    config: Config,
    /// The current job's steps.
    stages: view::Stages,
    base: Option<Base>,
    /// The views last asked for, the latest last (at most [`VIEWS_KEPT`]).
    cached: Vec<Cached>,
}

/// Views kept besides the base and the first view: going back to one of the last few
/// views (the browser's back button, a preset and back) costs no work.
const VIEWS_KEPT: usize = 3;

fn bad(message: impl Into<String>) -> (u16, String) {
    (400, message.into())
}

fn failed(e: impl std::fmt::Display) -> (u16, String) {
    (500, e.to_string())
}

/// The ledger's segments, as a key that changes when one commits.
pub fn ledger_state(lake: &std::path::Path) -> String {
    let mut names: Vec<String> = std::fs::read_dir(lake.join("_cetrail/ledger"))
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.ends_with(".jsonl") && !n.starts_with('.'))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    format!(
        "{}:{}",
        names.len(),
        names.last().cloned().unwrap_or_default()
    )
}

/// The view parameters of `params`: `from`, `to` (a date or an RFC 3339 instant),
/// `tz`, `account`, `role`; the configuration for the rest.
pub fn view_params(
    config: &Config,
    params: &Params,
) -> Result<(Config, ViewParams), (u16, String)> {
    let mut config = config.clone();
    if let Some(tz) = params.get("tz").filter(|t| !t.is_empty()) {
        if tz.parse::<chrono_tz::Tz>().is_err() {
            return Err(bad(format!("tz: `{tz}` is not an IANA time zone")));
        }
        config.time.zone = tz.clone();
    }
    let mut view = ViewParams::from_config(&config);
    let bound = |name: &str| -> Result<Option<DateTime<Utc>>, (u16, String)> {
        match params.get(name).filter(|v| !v.is_empty()) {
            None => Ok(None),
            Some(v) => parse_instant(v, view.zone).map(Some).ok_or_else(|| {
                bad(format!(
                    "{name}: `{v}` is neither a date (YYYY-MM-DD) nor an RFC 3339 instant"
                ))
            }),
        }
    };
    view.from = bound("from")?;
    view.to = bound("to")?;
    if let (Some(f), Some(t)) = (view.from, view.to)
        && f >= t
    {
        return Err(bad("from must be before to"));
    }
    view.account = params.get("account").filter(|v| !v.is_empty()).cloned();
    view.role = params.get("role").filter(|v| !v.is_empty()).cloned();
    view.engineer = params.get("engineer").filter(|v| !v.is_empty()).cloned();
    Ok((config, view))
}

impl Worker {
    pub fn new(lake: PathBuf, config: Config) -> Self {
        Self {
            lake,
            config,
            stages: view::Stages::default(),
            base: None,
            cached: Vec::new(),
        }
    }

    /// Answers jobs until every sender is gone.
    pub fn run(mut self, jobs: mpsc::Receiver<Job>) {
        for job in jobs {
            self.stages = view::Stages::default();
            let (body, reply) = match job {
                Job::Widget {
                    name,
                    params,
                    reply,
                } => (self.widget(&name, &params), reply),
                Job::Page { params, reply } => (self.page(&params), reply),
                Job::Timeline { params, reply } => (self.timeline(&params), reply),
            };
            self.stages.lap("answer");
            let timing = self
                .stages
                .laps
                .iter()
                .map(|(name, ms)| format!("{name};dur={ms:.1}"))
                .collect::<Vec<_>>()
                .join(", ");
            let _ = reply.send(body.map(|body| Reply { body, timing }));
        }
    }

    /// The base, read again when the ledger changed.
    fn base(&mut self) -> Result<&Base, (u16, String)> {
        let ledger = ledger_state(&self.lake);
        if self.base.as_ref().is_none_or(|b| b.ledger != ledger) {
            self.base = None;
            self.cached.clear();
            let all = ViewParams::from_config(&self.config);
            let (scanned, _) =
                view::materialise_rows(&self.lake, &all, view::VIEW_COLUMNS, Default::default())
                    .map_err(failed)?;
            self.stages.lap("lake-scan");
            let bounds = widgets::lake_bounds(&self.lake).map_err(failed)?;
            let detections = crate::detect::run::ours(&self.lake, &all).map_err(failed)?;
            self.stages.lap("lake-rules");
            let updated = crate::lake::ledger::read_headers(&self.lake)
                .map_err(failed)?
                .into_iter()
                .filter_map(|(_, h)| DateTime::parse_from_rfc3339(&h.committed_at).ok())
                .map(|t| t.with_timezone(&Utc))
                .max();
            self.base = Some(Base {
                ledger,
                scanned,
                bounds,
                detections,
                updated,
                zones: Vec::new(),
            });
        }
        self.base.as_ref().ok_or_else(|| failed("no lake read"))
    }

    /// The view for `params`, made again only when they or the ledger changed.
    fn dashboard(&mut self, params: &Params) -> Result<&mut Dashboard, (u16, String)> {
        let (config, view) = view_params(&self.config, params)?;
        self.base()?;
        let Some(base) = self.base.as_mut() else {
            return Err(failed("no lake read"));
        };
        let key = format!(
            "{:?}|{:?}|{}|{:?}|{:?}|{:?}|{}",
            view.from,
            view.to,
            config.time.zone,
            view.account,
            view.role,
            view.engineer,
            base.ledger
        );
        match self.cached.iter().position(|c| c.key == key) {
            Some(i) => {
                let c = self.cached.remove(i);
                self.cached.push(c);
            }
            None => {
                match base.zones.iter().position(|z| z.fits(&view)) {
                    Some(i) => {
                        let z = base.zones.remove(i);
                        base.zones.push(z);
                    }
                    None => {
                        if base.zones.len() >= ZONES_KEPT {
                            base.zones.remove(0);
                        }
                        base.zones
                            .push(Zoned::new(&base.scanned, &view).map_err(failed)?);
                        self.stages.lap("zone-calendar");
                    }
                }
                let zoned = base.zones.last().ok_or_else(|| failed("no zone"))?;
                let mut dashboard =
                    Dashboard::from_zoned(zoned, base.bounds, &config, view).map_err(failed)?;
                self.stages.extend(std::mem::take(&mut dashboard.stages));
                dashboard.session_facts().map_err(failed)?;
                let pinned = self.cached.is_empty();
                if self.cached.len() > VIEWS_KEPT
                    && let Some(oldest) = self.cached.iter().position(|c| !c.pinned)
                {
                    self.cached.remove(oldest);
                }
                self.cached.push(Cached {
                    key,
                    dashboard,
                    tables: None,
                    pinned,
                });
                self.stages.lap("session-facts");
            }
        }
        match self.cached.last_mut() {
            Some(c) => Ok(&mut c.dashboard),
            None => Err(failed("no view")),
        }
    }

    fn widget(&mut self, name: &str, params: &Params) -> Body {
        let w = widgets::find(name).ok_or((404, format!("no widget `{name}`")))?;
        let d = self.dashboard(params)?;
        let df = d.widget(w).map_err(failed)?;
        let mut out = Vec::new();
        render::write_frame(&mut out, &df, Format::Json, TimeStyle { local: None })
            .map_err(failed)?;
        Ok(out)
    }

    fn page(&mut self, params: &Params) -> Body {
        self.dashboard(params)?;
        let (Some(base), Some(c)) = (self.base.as_ref(), self.cached.last_mut()) else {
            return Err(failed("no view"));
        };
        if c.tables.is_none() {
            let d = &mut c.dashboard;
            let all: Vec<&'static widgets::Widget> = WIDGETS.iter().collect();
            let mut widgets = Vec::with_capacity(WIDGETS.len());
            let mut feed = DataFrame::empty();
            let runs = d.run_widgets(&all, 2).map_err(failed)?;
            self.stages.lap("widgets");
            for run in runs {
                if run.widget.name == FEED {
                    feed = run.frame;
                    widgets.push((run.widget, Table::default()));
                } else {
                    widgets.push((run.widget, Table::from_frame(&run.frame).map_err(failed)?));
                }
            }
            self.stages.lap("tables");
            let overview = base
                .detections
                .within(&d.view)
                .and_then(|r| r.overview(None))
                .map_err(failed)?;
            let rules = Table::from_frame(&overview.rules).map_err(failed)?;
            let activity = match (d.view.from, d.view.to) {
                (Some(from), Some(to)) => {
                    let anomalies = widgets
                        .iter()
                        .find(|(w, _)| w.name == "anomalies")
                        .map(|(_, t)| t.clone())
                        .unwrap_or_default();
                    report::activity(d, from, to, &anomalies).map_err(failed)?
                }
                _ => Activity::default(),
            };
            self.stages.lap("rules-and-charts");
            c.tables = Some(PageTables {
                widgets,
                feed,
                detections: (rules, overview.alarm, overview.total),
                activity,
            });
        }
        let tables = c.tables.as_ref().ok_or_else(|| failed("no tables"))?;
        let feed_total = tables.feed.height();
        let feed_start = params
            .get("feed_page")
            .and_then(|v| v.parse::<usize>().ok())
            .unwrap_or(0)
            .saturating_mul(FEED_PAGE_ROWS)
            .min(feed_total);
        let feed = Table::from_frame(&tables.feed.slice(feed_start as i64, FEED_PAGE_ROWS))
            .map_err(failed)?;
        let shown: Vec<(&'static widgets::Widget, &Table)> = tables
            .widgets
            .iter()
            .map(|(w, t)| (*w, if w.name == FEED { &feed } else { t }))
            .collect();
        let page = super::page::Page {
            params,
            view: &c.dashboard.view,
            zone: &c.dashboard.config.time.zone,
            tables: &shown,
            feed_total,
            feed_start,
            detections: &tables.detections,
            updated: base.updated,
            activity: &tables.activity,
            lake_end: {
                let mut v = ViewParams::from_config(&c.dashboard.config);
                widgets::fill_range(base.bounds, &mut v);
                v.to
            },
        };
        let html = page.html().into_bytes();
        self.stages.lap("html");
        Ok(html)
    }

    fn timeline(&mut self, params: &Params) -> Body {
        use crate::query::timeline::{Selector, timeline};
        let selector = match (
            params.get("session"),
            params.get("engineer"),
            params.get("ip"),
            params.get("resource"),
        ) {
            (Some(s), _, _, _) => Selector::Session(s.clone()),
            (_, Some(e), _, _) => Selector::Engineer(e.clone()),
            (_, _, Some(i), _) => Selector::Ip(i.clone()),
            (_, _, _, Some(r)) => Selector::Resource(r.clone()),
            _ => return Err(bad("one of session, engineer, ip, resource is needed")),
        };
        let (config, view) = view_params(&self.config, params)?;
        let t = timeline(&self.lake, &config, &view, &selector).map_err(failed)?;
        Ok(super::page::timeline_html(params, &selector, &t).into_bytes())
    }
}
