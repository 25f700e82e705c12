//! Widget 2, access-denied-alarm (`queries/access-denied-alarm.sql`), computed in Rust
//! over the view's columns.
//!
//! polars runs the SQL as two filtered passes over every event and a join of the
//! events with the alarm periods; DuckDB does about the same, so this widget was the
//! one closest to DuckDB's time. Here one pass (a range of rows per thread) keeps the
//! denied CE events in range with their 5-minute period; the periods with at least
//! the threshold of them are the alarm periods, runs of consecutive ones are the
//! episodes, and each episode counts its periods and events, gathers its roles (one
//! row each, names sorted and joined: `STRING_AGG(DISTINCT … ORDER BY …)`) and counts
//! its actions (the busiest, ties broken by the smallest name; a null name counts as a
//! group of its own, as `GROUP BY` makes it, and is never the `MIN`). Rows without a
//! time have no period and never match one, as in the SQL's join. The SQL's types
//! and `ORDER BY` finish the frame; a test compares it with the SQL's on every row.

use polars::prelude::*;

use super::in_place::{
    Codes, Flags, Table, Values, codes, distinct_joined, flags, in_sql_order, no_chunk, one_chunk,
    one_chunks, per_range, text_at, values,
};

/// A period's length in the view's time unit (µs): `period_idx` counts these since
/// the epoch (UTC), `period` is its start and `period_end` the next one's.
const PERIOD_US: i64 = 300_000_000;

/// One episode: a run of consecutive alarm periods.
struct Episode {
    first: i64,
    last: i64,
    periods: i64,
    denied: i64,
    /// Role code → a row with that role.
    roles: Table<u32, usize>,
    /// Action code (0: null) → (events, a row with that action).
    actions: Table<u32, (i64, usize)>,
}

/// The view's columns the widget reads.
struct Inputs<'a> {
    kept: [Flags<'a>; 3],
    period: Values<'a, i64>,
    role: Codes<'a>,
    action: Codes<'a>,
}

impl Inputs<'_> {
    /// The kept rows of `range` with their period, in row order.
    fn denied(&self, range: std::ops::Range<usize>) -> Vec<(i64, usize)> {
        range
            .filter(|&i| self.kept.iter().all(|f| f.get(i) == Some(true)))
            .filter_map(|i| self.period.get(i).map(|p| (p, i)))
            .collect()
    }
}

/// The access-denied-alarm widget over the dashboard's view: the frame `sql` (the
/// widget's SQL, placeholders filled, `threshold` its denied-events threshold) gives,
/// computed from `events`; `ctx` gives the SQL's output types.
pub fn access_denied_alarm(
    events: &DataFrame,
    ctx: &mut polars::sql::SQLContext,
    sql: &str,
    threshold: i64,
    engine: Engine,
) -> PolarsResult<DataFrame> {
    let schema = ctx.execute(sql)?.collect_schema()?;
    let flag_series = one_chunks(
        events,
        &["in_range", "is_ce", "is_denied"],
        &DataType::Boolean,
    )?;
    let [in_range, is_ce, is_denied] = flag_series.as_slice() else {
        return Err(no_chunk("in_range"));
    };
    let period_series = one_chunk(events, "period_idx", &DataType::Int64)?;
    let role_series = one_chunk(events, "role", &DataType::UInt32)?;
    let action_series = one_chunk(events, "event_name", &DataType::UInt32)?;
    let inputs = Inputs {
        kept: [
            flags(in_range, "in_range")?,
            flags(is_ce, "is_ce")?,
            flags(is_denied, "is_denied")?,
        ],
        period: values::<Int64Type>(&period_series, "period_idx")?,
        role: codes(&role_series, "role")?,
        action: codes(&action_series, "event_name")?,
    };
    let denied: Vec<(i64, usize)> =
        per_range(events.height(), |range| inputs.denied(range)).concat();

    // The alarm periods, in order, and the episode of each.
    let mut per_period: Table<i64, i64> = Table::default();
    for (p, _) in &denied {
        *per_period.entry(*p).or_default() += 1;
    }
    let mut alarm: Vec<i64> = per_period
        .into_iter()
        .filter(|(_, n)| *n >= threshold)
        .map(|(p, _)| p)
        .collect();
    alarm.sort_unstable();
    let mut episodes: Vec<Episode> = Vec::new();
    let mut episode_of: Table<i64, usize> = Table::default();
    for p in alarm {
        match episodes.last_mut() {
            Some(e) if e.last.checked_add(1) == Some(p) => {
                e.last = p;
                e.periods += 1;
            }
            _ => episodes.push(Episode {
                first: p,
                last: p,
                periods: 1,
                denied: 0,
                roles: Table::default(),
                actions: Table::default(),
            }),
        }
        episode_of.insert(p, episodes.len() - 1);
    }
    for (p, i) in &denied {
        let Some(e) = episode_of.get(p).and_then(|e| episodes.get_mut(*e)) else {
            continue;
        };
        e.denied += 1;
        let role = inputs.role.code(*i);
        if role != 0 {
            e.roles.entry(role).or_insert(*i);
        }
        e.actions.entry(inputs.action.code(*i)).or_insert((0, *i)).0 += 1;
    }

    // The names of the roles, and of the busiest actions of each episode.
    let mut busiest: Vec<Vec<usize>> = Vec::with_capacity(episodes.len());
    for e in &episodes {
        let most = e.actions.values().map(|(n, _)| *n).max().unwrap_or(0);
        busiest.push(
            e.actions
                .iter()
                .filter(|(code, (n, _))| **code != 0 && *n == most)
                .map(|(_, (_, row))| *row)
                .collect(),
        );
    }
    let names = |column: &str, rows: Vec<usize>| -> PolarsResult<Vec<Option<String>>> {
        let s = text_at(events, column, rows)?;
        Ok(s.str()?.iter().map(|v| v.map(str::to_owned)).collect())
    };
    let role_names = names(
        "role",
        episodes
            .iter()
            .flat_map(|e| e.roles.values().copied())
            .collect(),
    )?;
    let action_names = names("event_name", busiest.iter().flatten().copied().collect())?;
    let mut role_names = role_names.into_iter();
    let mut action_names = action_names.into_iter();
    let mut roles: Vec<Option<String>> = Vec::with_capacity(episodes.len());
    let mut top: Vec<Option<String>> = Vec::with_capacity(episodes.len());
    for (e, candidates) in episodes.iter().zip(&busiest) {
        let these: Vec<String> = role_names.by_ref().take(e.roles.len()).flatten().collect();
        roles.push(distinct_joined(these));
        top.push(action_names.by_ref().take(candidates.len()).flatten().min());
    }

    let time_dtype = events.column("event_time")?.dtype().clone();
    let time = |name: &str, pick: fn(&Episode) -> i64| -> PolarsResult<Column> {
        let ca = Int64Chunked::from_vec(
            name.into(),
            episodes
                .iter()
                .map(|e| pick(e).saturating_mul(PERIOD_US))
                .collect(),
        );
        ca.into_series().cast(&time_dtype).map(Column::from)
    };
    let count = |name: &str, pick: fn(&Episode) -> i64| -> Column {
        Int64Chunked::from_vec(name.into(), episodes.iter().map(pick).collect()).into_column()
    };
    let frame = DataFrame::new(
        episodes.len(),
        vec![
            time("start", |e| e.first)?,
            time("end", |e| e.last.saturating_add(1))?,
            count("periods", |e| e.periods),
            count("denied", |e| e.denied),
            StringChunked::from_iter_options("roles".into(), roles.into_iter()).into_column(),
            StringChunked::from_iter_options("top_action".into(), top.into_iter()).into_column(),
        ],
    )?;
    in_sql_order(frame, &schema, sql, engine)
}
