//! Listing: the pruned walk of CloudTrail's key hierarchy, concurrent.
//!
//! `[prefix/]AWSLogs/` → `[o-org/]` → account (`--accounts`) → `CloudTrail/` → region
//! (`--regions`) → year → month → day (`--from/--to`, one day of slack). Each level's
//! prefixes are listed together (their requests share the source's limiter), so a
//! bucket of 1,500 day prefixes costs the depth of the tree in round trips, not 1,500
//! of them in a row. The walk ends in leaves: prefixes listed whole (a day, or a
//! folder outside the layout) and single objects met on the way. Leaves are disjoint
//! and sorted, so listing them in order, several ahead ([`LEAVES_AHEAD`]), yields every
//! object in key order while the first batches are already being read.

use chrono::{Datelike, NaiveDate};
use futures_util::future::join_all;

use super::Inner;
use crate::error::SourceError;
use crate::source::Object;

/// Leaves listed ahead of the one being handed over.
pub(super) const LEAVES_AHEAD: usize = 64;

/// Where the walk ends: a prefix to list whole, or an object met on the way.
#[derive(Debug)]
pub(super) enum Leaf {
    Prefix(String),
    Object(Object, String),
}

impl Leaf {
    /// The leaf's place in key order (its full key or prefix).
    fn key(&self) -> &str {
        match self {
            Leaf::Prefix(p) => p,
            Leaf::Object(_, full) => full,
        }
    }
}

fn last_segment(p: &str) -> &str {
    p.trim_end_matches('/').rsplit('/').next().unwrap_or("")
}

impl Inner {
    /// The child prefixes of `prefix`, and the objects right at that level when
    /// `objects` (each with its full key).
    pub(super) async fn level(
        &self,
        prefix: &str,
        objects: bool,
    ) -> Result<(Vec<String>, Vec<Leaf>), SourceError> {
        let mut children = Vec::new();
        let mut found = Vec::new();
        let mut token = None;
        loop {
            let resp = self.list_page(prefix, true, token).await?;
            for p in resp.common_prefixes() {
                if let Some(p) = p.prefix() {
                    children.push(p.to_string());
                }
            }
            if objects {
                for o in resp.contents() {
                    if let (Some(object), Some(key)) = (self.object(o), o.key()) {
                        found.push(Leaf::Object(object, key.to_string()));
                    }
                }
            }
            token = resp.next_continuation_token().map(str::to_string);
            if token.is_none() {
                break;
            }
        }
        Ok((children, found))
    }

    /// Every object below `prefix`, in key order.
    pub(super) async fn objects(&self, prefix: &str) -> Result<Vec<Object>, SourceError> {
        let mut out = Vec::new();
        let mut token = None;
        loop {
            let resp = self.list_page(prefix, false, token).await?;
            out.extend(resp.contents().iter().filter_map(|o| self.object(o)));
            token = resp.next_continuation_token().map(str::to_string);
            if token.is_none() {
                break;
            }
        }
        Ok(out)
    }

    /// The child prefixes of each of `prefixes`, listed together, and the objects at
    /// their level when `objects`.
    async fn levels(
        &self,
        prefixes: &[String],
        objects: bool,
    ) -> Result<Vec<(Vec<String>, Vec<Leaf>)>, SourceError> {
        join_all(prefixes.iter().map(|p| self.level(p, objects)))
            .await
            .into_iter()
            .collect()
    }

    /// The leaves of the walk, in key order.
    pub(super) async fn leaves(&self) -> Result<Vec<Leaf>, SourceError> {
        let base = if self.prefix.is_empty() {
            String::new()
        } else {
            format!("{}/", self.prefix)
        };
        let logs = if base.ends_with("AWSLogs/") {
            base.clone()
        } else {
            format!("{base}AWSLogs/")
        };
        let mut leaves = Vec::new();
        if !base.ends_with("AWSLogs/") && self.services == ["CloudTrail"] {
            // Beside `AWSLogs/`: the other sources' files (log-group exports,
            // EventBridge deliveries, Event History files), told by content, listed
            // whole (their keys cannot be pruned).
            let (children, objects) = self.level(&base, true).await?;
            leaves.extend(objects);
            leaves.extend(
                children
                    .into_iter()
                    .filter(|c| *c != logs)
                    .map(Leaf::Prefix),
            );
        }
        let (top, _) = self.level(&logs, false).await?;
        let (orgs, mut accounts): (Vec<String>, Vec<String>) = top
            .into_iter()
            .partition(|c| last_segment(c).starts_with("o-"));
        for (members, _) in self.levels(&orgs, false).await? {
            accounts.extend(members);
        }
        let prune = &self.prune;
        accounts.retain(|a| {
            prune.accounts.is_empty() || prune.accounts.iter().any(|x| x == last_segment(a))
        });
        let services: Vec<String> = accounts
            .iter()
            .flat_map(|a| self.services.iter().map(move |s| format!("{a}{s}/")))
            .collect();
        let mut regions = Vec::new();
        for (children, _) in self.levels(&services, false).await? {
            regions.extend(children.into_iter().filter(|r| {
                prune.regions.is_empty() || prune.regions.iter().any(|x| x == last_segment(r))
            }));
        }
        leaves.extend(self.dated(&regions).await?);
        leaves.sort_by(|a, b| a.key().cmp(b.key()));
        Ok(leaves)
    }

    /// The day prefixes of `regions` that may hold wanted events. Without a date range,
    /// everything below a region is a leaf: its days, and whatever does not look like
    /// a date (listed whole) or sits beside them.
    async fn dated(&self, regions: &[String]) -> Result<Vec<Leaf>, SourceError> {
        let dated = self.prune.from.is_some() || self.prune.to.is_some();
        let lo = self.prune.from.unwrap_or(NaiveDate::MIN);
        let hi = self.prune.to.unwrap_or(NaiveDate::MAX);
        let mut leaves = Vec::new();
        // Regions → years.
        let mut years = Vec::new();
        for (children, objects) in self.levels(regions, !dated).await? {
            leaves.extend(objects);
            for y in children {
                match last_segment(&y).parse::<i32>() {
                    Ok(year) if year >= lo.year() && year <= hi.year() => years.push((y, year)),
                    Ok(_) => {}
                    Err(_) if !dated => leaves.push(Leaf::Prefix(y)),
                    Err(_) => {}
                }
            }
        }
        // Years → months.
        let names: Vec<String> = years.iter().map(|(y, _)| y.clone()).collect();
        let mut months = Vec::new();
        for ((children, objects), (_, year)) in
            self.levels(&names, !dated).await?.into_iter().zip(&years)
        {
            leaves.extend(objects);
            for m in children {
                let Ok(month) = last_segment(&m).parse::<u32>() else {
                    if !dated {
                        leaves.push(Leaf::Prefix(m));
                    }
                    continue;
                };
                let first = NaiveDate::from_ymd_opt(*year, month, 1);
                let next = if month == 12 {
                    NaiveDate::from_ymd_opt(year + 1, 1, 1)
                } else {
                    NaiveDate::from_ymd_opt(*year, month + 1, 1)
                };
                match (first, next) {
                    (Some(f), Some(n)) if n > lo && f <= hi => months.push((m, *year, month)),
                    _ if !dated => leaves.push(Leaf::Prefix(m)),
                    _ => {}
                }
            }
        }
        // Months → days.
        let names: Vec<String> = months.iter().map(|(m, _, _)| m.clone()).collect();
        for ((children, objects), (_, year, month)) in
            self.levels(&names, !dated).await?.into_iter().zip(&months)
        {
            leaves.extend(objects);
            for d in children {
                let date = last_segment(&d)
                    .parse::<u32>()
                    .ok()
                    .and_then(|day| NaiveDate::from_ymd_opt(*year, *month, day));
                match date {
                    Some(date) if date >= lo && date <= hi => leaves.push(Leaf::Prefix(d)),
                    None if !dated => leaves.push(Leaf::Prefix(d)),
                    _ => {}
                }
            }
        }
        Ok(leaves)
    }
}
