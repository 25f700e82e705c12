//! One pass of every rule over the lake's events in a range.
//!
//! Plan: each rule is compiled ([`super::compile`]); from the `eventName` tests alone,
//! each rule says which event names it can hit (Kleene's logic, the other tests
//! unknown). The scan reads only the events whose name some rule can hit (the test
//! runs once per distinct name of each row group's dictionary), every kind of event,
//! one row per event id, in time order. Then each rule's expression runs over the rows
//! whose names it can hit (all rows for a rule with no `eventName` test): one event
//! matching one rule is one hit.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;

use polars::prelude::*;

use super::compile::{Compiled, compile, may_hit, plan_columns};
use super::fields::{self, Render, Source};
use super::{Loaded, Rule};
use crate::query::in_place::Table;
use crate::query::view::{self, Rows, Stages, ViewParams};
use crate::query::view_scan::RowTest;

/// The columns every hit reports, besides those its rule reads.
pub const HIT_COLUMNS: &[&str] = &[
    "event_time",
    "event_id",
    "account",
    "aws_region",
    "role",
    "engineer",
    "source_ip",
    "event_source",
    "event_name",
    "resource",
];

/// Text columns whose values are (nearly) unique to an event: read as strings.
const UNIQUE_COLUMNS: &[&str] = &["event_id", "request_id", "shared_event_id"];

/// A rule that did not run, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skip {
    pub title: String,
    /// Where it was read (file; empty for a rule that was never loaded).
    pub file: String,
    pub reason: String,
}

/// One event matching one rule: the rule's index in [`Detections::rules`], the
/// event's row in [`Detections::events`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Hit {
    pub row: usize,
    pub rule: usize,
}

/// The outcome of a pass.
pub struct Detections {
    /// The rules that ran, in the order given.
    pub rules: Vec<Rule>,
    pub skipped: Vec<Skip>,
    /// The events some rule could hit, in (`event_time`, `event_id`) order: at least
    /// [`HIT_COLUMNS`].
    pub events: DataFrame,
    /// The hits in event order, then rule order.
    pub hits: Vec<Hit>,
    pub stages: Stages,
}

/// Splits what the rule files gave into rules that run over the lake and skips.
pub fn prepare(loaded: Vec<(String, Loaded)>) -> (Vec<Compiled>, Vec<Skip>) {
    let mut compiled = Vec::new();
    let mut skipped = Vec::new();
    for (file, l) in loaded {
        match l {
            Loaded::Rule(rule) => {
                let title = rule.title.clone();
                match compile(*rule) {
                    Ok(c) => compiled.push(c),
                    Err(reason) => skipped.push(Skip {
                        title,
                        file,
                        reason,
                    }),
                }
            }
            Loaded::Skipped { title, reason } => skipped.push(Skip {
                title,
                file,
                reason,
            }),
        }
    }
    (compiled, skipped)
}

/// Runs `rules` over the events of `lake` in the range and filters of `p` (every kind
/// of event: an `--all-events` lake is searched whole).
pub fn detect(
    lake: &Path,
    p: &ViewParams,
    rules: Vec<Compiled>,
    skipped: Vec<Skip>,
) -> PolarsResult<Detections> {
    let mut stages = Stages::default();
    // `resource` is the view's own (derived by the scan); the rest are lake columns.
    let mut names: Vec<&str> = HIT_COLUMNS
        .iter()
        .copied()
        .filter(|c| *c != "resource")
        .collect();
    for c in &rules {
        for col in &c.columns {
            if !names.contains(col) {
                names.push(col);
            }
        }
    }
    // Which events some rule can hit, from the planning columns alone (decided once
    // per distinct combination of their values).
    let plan = plan_columns(rules.iter().map(|c| &c.rule));
    let memo: Mutex<HashMap<Vec<Option<String>>, bool>> = Mutex::new(HashMap::new());
    let wanted = |values: &[Option<&str>]| -> bool {
        let key: Vec<Option<String>> = values.iter().map(|v| v.map(String::from)).collect();
        if let Ok(memo) = memo.lock()
            && let Some(v) = memo.get(&key)
        {
            return *v;
        }
        let v = rules.iter().any(|c| may_hit(&c.rule, &plan, values));
        if let Ok(mut memo) = memo.lock() {
            memo.insert(key, v);
        }
        v
    };
    // The text columns the rules read, as categoricals, but those unique to an event.
    let mut categorical: Vec<&str> = rules
        .iter()
        .flat_map(|c| c.rule.tests())
        .filter_map(|t| fields::source(&t.field))
        .filter(|s| {
            matches!(
                s,
                Source::IssuerName
                    | Source::Column {
                        render: Render::Text,
                        ..
                    }
            )
        })
        .map(|s| s.column())
        .filter(|c| !UNIQUE_COLUMNS.contains(c))
        .collect();
    categorical.sort_unstable();
    categorical.dedup();
    let rows = Rows {
        all_kinds: true,
        // The events are restricted to the range below.
        within_range: true,
        categorical: &categorical,
        test: (!plan.is_empty()).then_some(RowTest {
            columns: &plan,
            keep: &wanted,
        }),
    };
    let scanned = if rules.is_empty() {
        None
    } else {
        Some(view::materialise_rows(lake, p, &names, rows)?)
    };
    let mut events = match scanned {
        Some((df, scan_stages)) => {
            stages.extend(scan_stages);
            df
        }
        None => DataFrame::empty(),
    };
    if (p.from.is_some() || p.to.is_some()) && events.width() > 0 {
        events = view::restrict(events.lazy(), p.from, p.to, None).collect()?;
    }
    stages.lap("range");
    let mut hits = Vec::new();
    if events.height() > 0 {
        let groups = row_groups(&events, &plan)?;
        // Each rule's candidate rows (`None`: all), the rules with most rows first.
        let mut plans: Vec<(usize, Option<Vec<IdxSize>>)> = rules
            .iter()
            .enumerate()
            .map(|(r, c)| {
                let groups: Vec<&Vec<IdxSize>> = groups
                    .iter()
                    .filter(|(values, _)| {
                        let values: Vec<Option<&str>> =
                            values.iter().map(|v| v.as_deref()).collect();
                        may_hit(&c.rule, &plan, &values)
                    })
                    .map(|(_, rows)| rows)
                    .collect();
                if groups.iter().map(|g| g.len()).sum::<usize>() == events.height() {
                    (r, None)
                } else {
                    (r, Some(groups.into_iter().flatten().copied().collect()))
                }
            })
            .collect();
        let size = |p: &Option<Vec<IdxSize>>| p.as_ref().map_or(events.height(), Vec::len);
        plans.retain(|(_, rows)| size(rows) > 0);
        plans.sort_by_key(|(_, rows)| std::cmp::Reverse(size(rows)));
        hits = run_plans(&events, &rules, &plans)?;
    }
    hits.sort_unstable();
    stages.lap("rules");
    Ok(Detections {
        rules: rules.into_iter().map(|c| c.rule).collect(),
        skipped,
        events,
        hits,
        stages,
    })
}

/// Runs each plan (a rule and its candidate rows) over `events`, two at a time on as
/// many threads (polars runs each query on its own pool), the longest first.
fn run_plans(
    events: &DataFrame,
    rules: &[Compiled],
    plans: &[(usize, Option<Vec<IdxSize>>)],
) -> PolarsResult<Vec<Hit>> {
    let next = std::sync::atomic::AtomicUsize::new(0);
    let jobs = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, plans.len().max(1));
    let work = || -> PolarsResult<Vec<Hit>> {
        let mut hits = Vec::new();
        loop {
            let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let Some((r, rows)) = plans.get(i) else {
                return Ok(hits);
            };
            let Some(c) = rules.get(*r) else {
                continue;
            };
            let sub = events.select(c.columns.iter().copied())?;
            let sub = match rows {
                Some(rows) => sub.take(&IdxCa::from_vec("rows".into(), rows.clone()))?,
                None => sub,
            };
            let mask = sub.lazy().select([c.expr.clone().alias("hit")]).collect()?;
            let mask = mask.column("hit")?.bool()?.clone();
            for (i, hit) in mask.iter().enumerate() {
                if hit != Some(true) {
                    continue;
                }
                let row = match rows {
                    Some(rows) => rows.get(i).map(|r| *r as usize),
                    None => Some(i),
                };
                if let Some(row) = row {
                    hits.push(Hit { row, rule: *r });
                }
            }
        }
    };
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..jobs).map(|_| s.spawn(work)).collect();
        let mut hits = Vec::new();
        for h in handles {
            match h.join() {
                Ok(r) => hits.extend(r?),
                Err(_) => {
                    return Err(PolarsError::ComputeError(
                        "a detection thread failed".into(),
                    ));
                }
            }
        }
        Ok(hits)
    })
}

/// The rows of each distinct combination of the values of `columns` (categoricals or
/// strings; `None`: null).
type Groups = Vec<(Vec<Option<String>>, Vec<IdxSize>)>;

fn row_groups(events: &DataFrame, columns: &[&str]) -> PolarsResult<Groups> {
    let n = events.height();
    // Each column as ids per row (0: null) and the text of each id.
    let mut ids: Vec<Vec<u32>> = Vec::with_capacity(columns.len());
    let mut texts: Vec<Table<u32, String>> = Vec::with_capacity(columns.len());
    for name in columns {
        let s = events.column(name)?.as_materialized_series();
        let mut column = Vec::with_capacity(n);
        let mut text: Table<u32, String> = Table::default();
        if let Ok(cats) = s.cat32() {
            let mapping = cats.get_mapping();
            for code in cats.physical().iter() {
                let id = code.map_or(0, |c| c.saturating_add(1));
                if let Some(c) = code
                    && !text.contains_key(&id)
                {
                    text.insert(id, mapping.cat_to_str(c).unwrap_or_default().to_string());
                }
                column.push(id);
            }
        } else {
            let mut seen: Table<&str, u32> = Table::default();
            for v in s.str()?.iter() {
                column.push(match v {
                    None => 0,
                    Some(v) => {
                        let next = seen.len() as u32 + 1;
                        let id = *seen.entry(v).or_insert(next);
                        text.entry(id).or_insert_with(|| v.to_string());
                        id
                    }
                });
            }
        }
        ids.push(column);
        texts.push(text);
    }
    let mut by_key: Table<Vec<u32>, Vec<IdxSize>> = Table::default();
    let mut key = Vec::with_capacity(columns.len());
    for i in 0..n {
        key.clear();
        key.extend(ids.iter().map(|c| c.get(i).copied().unwrap_or(0)));
        match by_key.get_mut(&key) {
            Some(rows) => rows.push(i as IdxSize),
            None => {
                by_key.insert(key.clone(), vec![i as IdxSize]);
            }
        }
    }
    Ok(by_key
        .into_iter()
        .map(|(key, rows)| {
            let values = key
                .iter()
                .zip(&texts)
                .map(|(id, text)| text.get(id).cloned())
                .collect();
            (values, rows)
        })
        .collect())
}

/// Our own rules (`queries/rules/`) over the lake, in the range and filters of `p`.
pub fn ours(lake: &Path, p: &ViewParams) -> PolarsResult<Detections> {
    let loaded = super::library::builtin()
        .map_err(|e| PolarsError::ComputeError(format!("our own rules: {e}").into()))?;
    let (rules, skipped) = prepare(loaded);
    detect(lake, p, rules, skipped)
}
