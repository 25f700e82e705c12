//! The tables of a timeline (SPEC §7): its sessions, its SSM shell sessions and its
//! events, as `timeline` prints them and `serve` shows them.

use super::{Cell, Table};
use crate::query::timeline::{Step, Timeline};

fn opt(s: &Option<String>) -> Cell {
    s.clone().map_or(Cell::Null, Cell::Text)
}

/// The session summaries table.
pub fn sessions_table(t: &Timeline) -> Table {
    Table {
        columns: [
            "session_key",
            "role",
            "engineer",
            "account",
            "source_ips",
            "start",
            "end",
            "duration",
            "calls",
            "writes",
            "denials",
            "after_hours",
        ]
        .map(String::from)
        .to_vec(),
        rows: t
            .sessions
            .iter()
            .map(|s| {
                vec![
                    Cell::Text(s.session_key.clone()),
                    opt(&s.role),
                    opt(&s.engineer),
                    opt(&s.account),
                    opt(&s.source_ips),
                    Cell::Time(s.start),
                    Cell::Time(s.end),
                    Cell::Text(format!(
                        "{}:{:02}:{:02}",
                        s.duration_seconds / 3600,
                        (s.duration_seconds % 3600) / 60,
                        s.duration_seconds % 60
                    )),
                    Cell::Int(s.calls as i64),
                    Cell::Int(s.writes as i64),
                    Cell::Int(s.denials as i64),
                    Cell::Int(s.after_hours as i64),
                ]
            })
            .collect(),
    }
}

/// The SSM shell sessions table.
pub fn shells_table(t: &Timeline) -> Table {
    Table {
        columns: [
            "ssm_session_id",
            "target",
            "engineer",
            "start",
            "end",
            "duration_seconds",
        ]
        .map(String::from)
        .to_vec(),
        rows: t
            .shell_sessions
            .iter()
            .map(|s| {
                vec![
                    Cell::Text(s.ssm_session_id.clone()),
                    opt(&s.target),
                    opt(&s.engineer),
                    s.start.map_or(Cell::Null, Cell::Time),
                    s.end.map_or(Cell::Null, Cell::Time),
                    s.duration_seconds.map_or(Cell::Null, Cell::Int),
                ]
            })
            .collect(),
    }
}

/// The events table; `flags`: W write, D denied, A after hours, * named by the selector,
/// ! hit one of our Sigma rules (named in `rules`).
pub fn steps_table(t: &Timeline) -> Table {
    Table {
        columns: step_columns(),
        rows: t.steps.iter().cloned().map(step_row).collect(),
    }
}

/// [`steps_table`] of the steps taken (their texts move into the cells, not copied:
/// an engineer's story is hundreds of thousands of steps).
pub fn into_steps_table(steps: Vec<Step>) -> Table {
    Table {
        columns: step_columns(),
        rows: steps.into_iter().map(step_row).collect(),
    }
}

fn step_columns() -> Vec<String> {
    [
        "event_time",
        "flags",
        "side",
        "account",
        "role",
        "engineer",
        "event_source",
        "event_name",
        "resource",
        "source_ip",
        "error_code",
        "event_id",
        "detail",
        "rules",
    ]
    .map(String::from)
    .to_vec()
}

fn step_row(s: Step) -> Vec<Cell> {
    let text = |v: Option<String>| v.map_or(Cell::Null, Cell::Text);
    let mut flags = String::new();
    for (on, c) in [
        (s.matched, '*'),
        (s.write, 'W'),
        (s.denied, 'D'),
        (s.after_hours, 'A'),
        (!s.rules.is_empty(), '!'),
    ] {
        if on {
            flags.push(c);
        }
    }
    vec![
        Cell::Time(s.event_time),
        Cell::Text(flags),
        Cell::Text(s.side.to_string()),
        text(s.account),
        text(s.role),
        text(s.engineer),
        text(s.event_source),
        text(s.event_name),
        text(s.resource),
        text(s.source_ip),
        text(s.error_code),
        Cell::Text(s.event_id),
        Cell::Text(s.detail),
        if s.rules.is_empty() {
            Cell::Null
        } else {
            Cell::Text(s.rules.join("; "))
        },
    ]
}
