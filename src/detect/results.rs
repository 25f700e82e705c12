//! What a pass gives, as users see it: one row per hit, one row per rule, and the
//! overview the dashboard, the report and the timeline show.

use polars::prelude::*;

use super::Rule;
use super::run::{Detections, HIT_COLUMNS};

/// Sigma's levels, lowest first.
pub const LEVELS: &[&str] = &["informational", "low", "medium", "high", "critical"];

/// The rank of a level in [`LEVELS`] (an unknown level ranks lowest).
pub fn level_rank(level: &str) -> usize {
    LEVELS
        .iter()
        .position(|l| l.eq_ignore_ascii_case(level))
        .unwrap_or(0)
}

/// A rule's ATT&CK tags (`attack.*`), comma-separated.
pub fn attack_tags(rule: &Rule) -> String {
    rule.tags
        .iter()
        .filter(|t| t.starts_with("attack."))
        .cloned()
        .collect::<Vec<_>>()
        .join(",")
}

/// A rule's hits, first and last hit time (µs).
type RuleHits = (usize, Option<i64>, Option<i64>);

impl Detections {
    /// One row per hit, in event order: the rule (title, id, level, ATT&CK tags), then
    /// the event ([`HIT_COLUMNS`], text as text).
    pub fn hits_frame(&self) -> PolarsResult<DataFrame> {
        let rule_col = |name: &str, f: &dyn Fn(&Rule) -> String| -> Column {
            let values: Vec<String> = self
                .hits
                .iter()
                .map(|h| self.rules.get(h.rule).map(f).unwrap_or_default())
                .collect();
            Column::new(name.into(), values)
        };
        let mut columns = vec![
            rule_col("rule", &|r| r.title.clone()),
            rule_col("rule_id", &|r| r.id.clone()),
            rule_col("level", &|r| r.level.clone()),
            rule_col("tags", &attack_tags),
        ];
        let rows = IdxCa::from_vec(
            "rows".into(),
            self.hits.iter().map(|h| h.row as IdxSize).collect(),
        );
        let events = if self.events.width() == 0 {
            None
        } else {
            Some(
                self.events
                    .select(HIT_COLUMNS.iter().copied())?
                    .take(&rows)?,
            )
        };
        for name in HIT_COLUMNS {
            let c = match &events {
                Some(e) => {
                    let c = e.column(name)?;
                    if matches!(c.dtype(), DataType::Categorical(..)) {
                        c.cast(&DataType::String)?
                    } else {
                        c.clone()
                    }
                }
                None if *name == "event_time" => Column::new_empty(
                    (*name).into(),
                    &DataType::Datetime(TimeUnit::Microseconds, Some(TimeZone::UTC)),
                ),
                None => Column::new_empty((*name).into(), &DataType::String),
            };
            columns.push(c);
        }
        DataFrame::new_infer_height(columns)
    }

    /// One row per rule that ran: hits, first and last hit; most severe first, then
    /// most hits, then title.
    pub fn summary_frame(&self) -> PolarsResult<DataFrame> {
        let times = match self.events.column("event_time") {
            Ok(c) => Some(c.as_materialized_series().to_physical_repr().i64()?.clone()),
            Err(_) => None,
        };
        let mut per_rule: Vec<RuleHits> = vec![(0, None, None); self.rules.len()];
        for h in &self.hits {
            let t = times.as_ref().and_then(|t| t.get(h.row));
            if let Some(r) = per_rule.get_mut(h.rule) {
                r.0 += 1;
                r.1 = match (r.1, t) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                };
                r.2 = match (r.2, t) {
                    (Some(a), Some(b)) => Some(a.max(b)),
                    (a, b) => a.or(b),
                };
            }
        }
        let mut order: Vec<usize> = (0..self.rules.len()).collect();
        order.sort_by(|&a, &b| {
            let (ra, rb) = (&self.rules[a], &self.rules[b]);
            level_rank(&rb.level)
                .cmp(&level_rank(&ra.level))
                .then(per_rule[b].0.cmp(&per_rule[a].0))
                .then(ra.title.cmp(&rb.title))
        });
        let text = |f: &dyn Fn(&Rule) -> String| -> Vec<String> {
            order.iter().map(|&i| f(&self.rules[i])).collect()
        };
        let time_col = |name: &str, pick: &dyn Fn(&RuleHits) -> Option<i64>| {
            Int64Chunked::from_iter_options(name.into(), order.iter().map(|&i| pick(&per_rule[i])))
                .into_datetime(TimeUnit::Microseconds, Some(TimeZone::UTC))
                .into_column()
        };
        DataFrame::new_infer_height(vec![
            Column::new("rule".into(), text(&|r| r.title.clone())),
            Column::new("rule_id".into(), text(&|r| r.id.clone())),
            Column::new("level".into(), text(&|r| r.level.clone())),
            Column::new("tags".into(), text(&attack_tags)),
            Column::new(
                "hits".into(),
                order
                    .iter()
                    .map(|&i| per_rule[i].0 as u64)
                    .collect::<Vec<_>>(),
            ),
            time_col("first", &|r| r.1),
            time_col("last", &|r| r.2),
            Column::new("file".into(), text(&|r| r.file.clone())),
        ])
    }
}

/// What the dashboard, the report and the timeline show of a pass.
#[derive(Debug, Clone)]
pub struct Overview {
    /// The rules that hit: [`Detections::summary_frame`]'s rows with hits.
    pub rules: DataFrame,
    /// The hits ([`Detections::hits_frame`]), at most the limit asked.
    pub hits: DataFrame,
    /// All hits.
    pub total: usize,
    /// A rule of level high or critical hit.
    pub alarm: bool,
    /// Rules that ran.
    pub ran: usize,
}

impl Detections {
    /// The hits of a pass with no range or filter that fall in `p`'s range and have its
    /// account, role and engineer (each if given): what a pass over `p` gives, without
    /// reading the lake again (a rule decides each event on its own). `serve` keeps the
    /// whole lake's pass between requests.
    pub fn within(&self, p: &crate::query::view::ViewParams) -> PolarsResult<Detections> {
        let mut hits = self.hits.clone();
        if self.events.width() > 0 {
            let micros = |t: Option<chrono::DateTime<chrono::Utc>>| t.map(|t| t.timestamp_micros());
            let (from, to) = (micros(p.from), micros(p.to));
            let times = self
                .events
                .column("event_time")?
                .as_materialized_series()
                .to_physical_repr();
            let times = times.i64()?.rechunk();
            let text = |name: &str| -> PolarsResult<StringChunked> {
                Ok(self
                    .events
                    .column(name)?
                    .cast(&DataType::String)?
                    .str()?
                    .rechunk()
                    .into_owned())
            };
            let filters: Vec<(StringChunked, &str)> = [
                ("account", &p.account),
                ("role", &p.role),
                ("engineer", &p.engineer),
            ]
            .into_iter()
            .filter_map(|(name, v)| v.as_deref().map(|v| (name, v)))
            .map(|(name, v)| text(name).map(|c| (c, v)))
            .collect::<PolarsResult<_>>()?;
            hits.retain(|h| {
                let t = times.get(h.row);
                let in_range =
                    t.is_some_and(|t| from.is_none_or(|f| t >= f) && to.is_none_or(|e| t < e));
                in_range && filters.iter().all(|(c, v)| c.get(h.row) == Some(*v))
            });
        } else {
            hits.clear();
        }
        Ok(Detections {
            rules: self.rules.clone(),
            skipped: self.skipped.clone(),
            events: self.events.clone(),
            hits,
            stages: Default::default(),
        })
    }

    /// The [`Overview`], with at most `limit` hits.
    pub fn overview(&self, limit: Option<usize>) -> PolarsResult<Overview> {
        let rules = self
            .summary_frame()?
            .lazy()
            .filter(col("hits").gt(lit(0u64)))
            .collect()?;
        let hits = self.hits_frame()?;
        let hits = match limit {
            Some(n) => hits.head(Some(n)),
            None => hits,
        };
        let high = level_rank("high");
        Ok(Overview {
            rules,
            hits,
            total: self.hits.len(),
            alarm: self.hits.iter().any(|h| {
                self.rules
                    .get(h.rule)
                    .is_some_and(|r| level_rank(&r.level) >= high)
            }),
            ran: self.rules.len(),
        })
    }
}
