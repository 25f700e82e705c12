//! Widgets 16, write-actions (`queries/write-actions.sql`), and 13, denied-actions
//! (`queries/denied-actions.sql`), counted in Rust over the view's category codes: the
//! same query over a different flag (`is_write`, `is_denied`) and key (denied-actions
//! adds `error_code` to role, source and action).
//!
//! The flagged CE events in range are grouped by the codes of the key columns: each
//! group counts its events and keeps its first and last time, and each distinct
//! (group, engineer) pair is remembered with one row of it. The rows are cut into one
//! range per thread and the tables merged. The engineers' names are then gathered from
//! the view by those rows, sorted and joined per group (`STRING_AGG(DISTINCT …
//! ORDER BY …)`; no engineer: null), the key columns are gathered from each group's
//! first row (the view's own types) and the SQL's `ORDER BY` sorts the result. A test
//! compares it with the SQL's on every row.

use polars::prelude::*;

use super::in_place::{
    ACTION_KEY, Codes, Flags, Table, Values, codes, distinct_joined, flags, in_sql_order, no_chunk,
    one_chunk, one_chunks, per_range, row_indices, text_at, values,
};

/// A group's key: the codes of up to four key columns (0 for null, else the category
/// code + 1; 0 for a column the widget does not group by).
type GroupKey = [u32; 4];

#[derive(Clone, Copy)]
struct Group {
    row: usize,
    events: i64,
    lo: i64,
    hi: i64,
}

/// The view's columns the widget reads.
struct Inputs<'a> {
    keys: Vec<Codes<'a>>,
    engineer: Codes<'a>,
    kept: [Flags<'a>; 3],
    time: Values<'a, i64>,
}

/// Groups and (group, engineer) pairs with a row of each.
#[derive(Default)]
struct Part {
    groups: Table<GroupKey, Group>,
    engineers: Table<(GroupKey, u32), usize>,
}

impl Inputs<'_> {
    fn count(&self, range: std::ops::Range<usize>) -> Part {
        let mut part = Part::default();
        for i in range {
            if self.kept.iter().any(|f| f.get(i) != Some(true)) {
                continue;
            }
            let mut key = [0; 4];
            for (k, codes) in key.iter_mut().zip(&self.keys) {
                *k = codes.code(i);
            }
            let g = part.groups.entry(key).or_insert(Group {
                row: i,
                events: 0,
                lo: i64::MAX,
                hi: i64::MIN,
            });
            g.events += 1;
            if let Some(t) = self.time.get(i) {
                g.lo = g.lo.min(t);
                g.hi = g.hi.max(t);
            }
            let engineer = self.engineer.code(i);
            if engineer != 0 {
                part.engineers.entry((key, engineer)).or_insert(i);
            }
        }
        part
    }
}

/// The write-actions widget over the dashboard's view: the frame `sql` (the widget's
/// SQL, placeholders filled) gives, computed from `events`; `ctx` gives the SQL's
/// output types.
pub fn write_actions(
    events: &DataFrame,
    ctx: &mut polars::sql::SQLContext,
    sql: &str,
    engine: Engine,
) -> PolarsResult<DataFrame> {
    action_groups(events, ctx, sql, engine, &ACTION_KEY, "is_write")
}

/// The denied-actions widget, as [`write_actions`].
pub fn denied_actions(
    events: &DataFrame,
    ctx: &mut polars::sql::SQLContext,
    sql: &str,
    engine: Engine,
) -> PolarsResult<DataFrame> {
    let [role, source, action] = ACTION_KEY;
    let key = [role, source, action, "error_code"];
    action_groups(events, ctx, sql, engine, &key, "is_denied")
}

/// The events in range, CE and `flag`, grouped by `key` (at most four columns).
fn action_groups(
    events: &DataFrame,
    ctx: &mut polars::sql::SQLContext,
    sql: &str,
    engine: Engine,
    key: &[&str],
    flag: &str,
) -> PolarsResult<DataFrame> {
    if key.len() > 4 {
        return Err(PolarsError::ComputeError(
            format!("a key of {} columns (at most 4)", key.len()).into(),
        ));
    }
    let schema = ctx.execute(sql)?.collect_schema()?;
    let key_series = one_chunks(events, key, &DataType::UInt32)?;
    let engineer_series = one_chunk(events, "engineer", &DataType::UInt32)?;
    let flag_series = one_chunks(events, &["in_range", "is_ce", flag], &DataType::Boolean)?;
    let time_series = one_chunk(events, "event_time", &DataType::Int64)?;
    let [in_range, is_ce, flagged] = flag_series.as_slice() else {
        return Err(no_chunk("in_range"));
    };
    let inputs = Inputs {
        keys: key_series
            .iter()
            .zip(key)
            .map(|(s, name)| codes(s, name))
            .collect::<PolarsResult<_>>()?,
        engineer: codes(&engineer_series, "engineer")?,
        kept: [
            flags(in_range, "in_range")?,
            flags(is_ce, "is_ce")?,
            flags(flagged, flag)?,
        ],
        time: values::<Int64Type>(&time_series, "event_time")?,
    };
    let parts = per_range(events.height(), |range| inputs.count(range));
    let mut merged = Part::default();
    for part in parts {
        for (key, g) in part.groups {
            merged
                .groups
                .entry(key)
                .and_modify(|m| {
                    m.row = m.row.min(g.row);
                    m.events += g.events;
                    m.lo = m.lo.min(g.lo);
                    m.hi = m.hi.max(g.hi);
                })
                .or_insert(g);
        }
        for (pair, row) in part.engineers {
            merged.engineers.entry(pair).or_insert(row);
        }
    }
    let mut groups: Vec<(GroupKey, Group)> = merged.groups.into_iter().collect();
    groups.sort_unstable_by_key(|(_, g)| g.row);

    // The engineers' names, by one row of each pair.
    let pairs: Vec<((GroupKey, u32), usize)> = merged.engineers.into_iter().collect();
    let names = text_at(events, "engineer", pairs.iter().map(|(_, r)| *r))?;
    let names = names.str()?;
    let mut by_group: Table<GroupKey, Vec<&str>> = Table::default();
    for (((key, _), _), name) in pairs.iter().zip(names.iter()) {
        if let Some(name) = name {
            by_group.entry(*key).or_default().push(name);
        }
    }
    let engineers: StringChunked = groups
        .iter()
        .map(|(key, _)| by_group.remove(key).and_then(distinct_joined))
        .collect();

    let mut frame = events
        .select(key.iter().copied())?
        .take(&row_indices(groups.iter().map(|(_, g)| g.row)))?;
    let time_dtype = events.column("event_time")?.dtype().clone();
    let time_column = |name: &str, pick: fn(&Group) -> Option<i64>| -> PolarsResult<Column> {
        let ca: Int64Chunked = groups.iter().map(|(_, g)| pick(g)).collect();
        ca.into_series()
            .with_name(name.into())
            .cast(&time_dtype)
            .map(Column::from)
    };
    frame.with_column(
        Int64Chunked::from_vec(
            "events".into(),
            groups.iter().map(|(_, g)| g.events).collect(),
        )
        .into_column(),
    )?;
    frame.with_column(engineers.with_name("engineers".into()).into_column())?;
    frame.with_column(time_column("first_seen", |g| {
        (g.lo != i64::MAX).then_some(g.lo)
    })?)?;
    frame.with_column(time_column("last_seen", |g| {
        (g.hi != i64::MIN).then_some(g.hi)
    })?)?;
    in_sql_order(frame, &schema, sql, engine)
}
