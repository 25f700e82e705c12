//! Widget 14, top-actions (`queries/top-actions.sql`), counted in Rust over the view's
//! category codes.
//!
//! polars computes the SQL's `COUNT(DISTINCT session_key)` per (role, source, action)
//! by gathering every group's rows, which on two million events touches ~140 MB of
//! fresh memory (on this project's VMs a page fault costs ~3 µs). Here each row of the
//! range is counted into a small table keyed by the three category codes, and its
//! (session, group) pair noted; the pairs are then sorted by session (a counting sort)
//! and each session counts each of its groups once (see [`count_part`]). The rows are
//! split between the threads by session code, so no session is seen by two threads and
//! the counts need no more than adding up. The few thousand result rows take their key
//! columns from the view (one representative row each, so the types are the view's
//! own) and are ordered by the SQL's `ORDER BY`, run by polars on them. SQL's rules
//! hold: a null key is a group of its own, a null session is not counted as a distinct
//! session, a null `is_error` is not an error. A test compares the result with the
//! SQL's on every row.

use polars::prelude::*;
use rayon::prelude::*;

use super::in_place::{
    ACTION_KEY, Codes, Flags, Table, action_key_codes, action_key_series, codes, flags,
    in_sql_order, no_chunk, one_chunk, one_chunks, row_indices,
};

/// A group's key: role, event_source and event_name codes (0 for null, else the
/// category code + 1).
type GroupKey = [u32; 3];

#[derive(Clone, Copy)]
struct Counts {
    /// A row of the group (its key columns are taken from it).
    row: usize,
    events: i64,
    errors: i64,
    sessions: i64,
}

/// The groups of the rows whose session code falls to `part` of `parts`.
///
/// The distinct sessions of each group are counted without a set of (group, session)
/// pairs (a million of them on two million events, a hash table far larger than the
/// cache): the part's (session, group) pairs are sorted by session with a counting
/// sort (the part's session codes are dense: `code / parts`), and each session's run
/// counts a group once, the first time it is met in that run (`last` holds, per group,
/// the last session that counted it).
fn count_part(
    keys: &[Codes; 3],
    session: &Codes,
    kept: &[Flags; 2],
    is_error: &Flags,
    part: u32,
    parts: u32,
) -> Table<GroupKey, Counts> {
    let mut index: Table<GroupKey, u32> = Table::default();
    let mut groups: Vec<(GroupKey, Counts)> = Vec::new();
    // (session slot, group index) of the rows with a session; a row repeating the
    // pair of the row before it (a session's repeated action, the common case) is
    // left out.
    let mut pairs: Vec<(u32, u32)> = Vec::new();
    let mut slots = 0u32;
    let mut last_pair = (u32::MAX, u32::MAX);
    for i in 0..session.values.len() {
        let s = session.code(i);
        if s % parts != part || kept.iter().any(|f| f.get(i) != Some(true)) {
            continue;
        }
        let key = [keys[0].code(i), keys[1].code(i), keys[2].code(i)];
        let next = u32::try_from(groups.len()).unwrap_or(u32::MAX);
        let g = *index.entry(key).or_insert(next);
        if g == next {
            groups.push((
                key,
                Counts {
                    row: i,
                    events: 0,
                    errors: 0,
                    sessions: 0,
                },
            ));
        }
        let Some((_, counts)) = groups.get_mut(g as usize) else {
            continue;
        };
        counts.events += 1;
        counts.errors += i64::from(is_error.get(i) == Some(true));
        let pair = (s / parts, g);
        if s != 0 && pair != last_pair {
            last_pair = pair;
            slots = slots.max(pair.0.saturating_add(1));
            pairs.push(pair);
        }
    }
    // Counting sort by session slot: `start[k]..start[k + 1]` is slot k's stretch.
    let mut start = vec![0usize; slots as usize + 1];
    for &(slot, _) in &pairs {
        if let Some(n) = start.get_mut(slot as usize + 1) {
            *n += 1;
        }
    }
    let mut total = 0usize;
    for n in &mut start {
        total += *n;
        *n = total;
    }
    let mut fill = start.clone();
    let mut by_session = vec![0u32; pairs.len()];
    for &(slot, g) in &pairs {
        if let Some(at) = fill.get_mut(slot as usize)
            && let Some(cell) = by_session.get_mut(*at)
        {
            *cell = g;
            *at += 1;
        }
    }
    drop(pairs);
    let mut last = vec![u32::MAX; groups.len()];
    for (slot, stretch) in start.windows(2).enumerate() {
        let slot = u32::try_from(slot).unwrap_or(u32::MAX);
        for &g in by_session.get(stretch[0]..stretch[1]).unwrap_or_default() {
            if let (Some(seen), Some((_, counts))) =
                (last.get_mut(g as usize), groups.get_mut(g as usize))
                && *seen != slot
            {
                *seen = slot;
                counts.sessions += 1;
            }
        }
    }
    groups.into_iter().collect()
}

/// The top-actions widget over the dashboard's view: the frame `sql` (the widget's
/// SQL, placeholders filled) gives, computed from `events`; `ctx` is the session's
/// SQL context (for the SQL's output types).
pub fn top_actions(
    events: &DataFrame,
    ctx: &mut polars::sql::SQLContext,
    sql: &str,
    engine: Engine,
) -> PolarsResult<DataFrame> {
    let schema = ctx.execute(sql)?.collect_schema()?;
    let key_series = action_key_series(events)?;
    let session_series = one_chunk(events, "session_key", &DataType::UInt32)?;
    let flag_names = ["in_range", "is_ce", "is_error"];
    let flag_series = one_chunks(events, &flag_names, &DataType::Boolean)?;
    let keys = action_key_codes(&key_series)?;
    let session = codes(&session_series, "session_key")?;
    let [in_range, is_ce, is_error] = flag_series.as_slice() else {
        return Err(no_chunk("in_range"));
    };
    let kept = [flags(in_range, "in_range")?, flags(is_ce, "is_ce")?];
    let is_error = flags(is_error, "is_error")?;

    let parts = u32::try_from(rayon::current_num_threads().clamp(1, 64)).unwrap_or(1);
    let tables: Vec<_> = (0..parts)
        .into_par_iter()
        .map(|part| count_part(&keys, &session, &kept, &is_error, part, parts))
        .collect();
    let mut merged: Table<GroupKey, Counts> = Table::default();
    for table in tables {
        for (key, c) in table {
            merged
                .entry(key)
                .and_modify(|m| {
                    m.row = m.row.min(c.row);
                    m.events += c.events;
                    m.errors += c.errors;
                    m.sessions += c.sessions;
                })
                .or_insert(c);
        }
    }
    let mut groups: Vec<Counts> = merged.into_values().collect();
    groups.sort_unstable_by_key(|c| c.row);
    let mut frame = events
        .select(ACTION_KEY)?
        .take(&row_indices(groups.iter().map(|c| c.row)))?;
    let count = |name: &str, pick: fn(&Counts) -> i64| -> Column {
        Int64Chunked::from_vec(name.into(), groups.iter().map(pick).collect()).into_column()
    };
    frame.with_column(count("events", |c| c.events))?;
    frame.with_column(count("errors", |c| c.errors))?;
    frame.with_column(count("sessions", |c| c.sessions))?;
    in_sql_order(frame, &schema, sql, engine)
}
