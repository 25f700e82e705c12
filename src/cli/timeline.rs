//! `cetrail timeline`: the forensic story of one session, engineer, source IP or resource.

use std::io::{IsTerminal, Write};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use cetrail::query::timeline::{Selector, Timeline, timeline};
use cetrail::render::{self, Cell, Format, Table};

use super::query::LakeArgs;

#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("what").required(true).args(["session", "engineer", "ip", "resource"])))]
pub struct Args {
    /// A session key (the temporary access key id, or role/engineer/created).
    #[arg(long)]
    session: Option<String>,
    /// An engineer (role session name).
    #[arg(long)]
    engineer: Option<String>,
    /// A source IP address.
    #[arg(long)]
    ip: Option<String>,
    /// An instance, bucket, bucket/key, db or resource ARN (a part of one matches).
    #[arg(long)]
    resource: Option<String>,
    #[command(flatten)]
    lake: LakeArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
}

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
        columns: [
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
        .to_vec(),
        rows: t
            .steps
            .iter()
            .map(|s| {
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
                    opt(&s.account),
                    opt(&s.role),
                    opt(&s.engineer),
                    opt(&s.event_source),
                    opt(&s.event_name),
                    opt(&s.resource),
                    opt(&s.source_ip),
                    opt(&s.error_code),
                    Cell::Text(s.event_id.clone()),
                    Cell::Text(s.detail.clone()),
                    if s.rules.is_empty() {
                        Cell::Null
                    } else {
                        Cell::Text(s.rules.join("; "))
                    },
                ]
            })
            .collect(),
    }
}

pub fn run(args: Args) -> Result<ExitCode> {
    let selector = match (&args.session, &args.engineer, &args.ip, &args.resource) {
        (Some(s), _, _, _) => Selector::Session(s.clone()),
        (_, Some(e), _, _) => Selector::Engineer(e.clone()),
        (_, _, Some(i), _) => Selector::Ip(i.clone()),
        (_, _, _, Some(r)) => Selector::Resource(r.clone()),
        _ => bail!("one of --session, --engineer, --ip, --resource is needed"),
    };
    let (config, view, style) = args.lake.resolve()?;
    let lake = args.lake.local()?;
    let t = timeline(&lake, &config, &view, &selector)
        .with_context(|| format!("reading the lake {}", args.lake.lake.display()))?;
    let mut out = std::io::stdout().lock();
    match args.format {
        Format::Json => {
            let v = serde_json::json!({
                "sessions": sessions_table(&t).json_rows(style),
                "shell_sessions": shells_table(&t).json_rows(style),
                "events": steps_table(&t).json_rows(style),
            });
            serde_json::to_writer_pretty(&mut out, &v)?;
            writeln!(out)?;
        }
        Format::Csv | Format::Jsonl => {
            render::write(&mut out, &steps_table(&t), args.format, style)?
        }
        format => {
            if t.steps.is_empty() {
                writeln!(out, "no CE event matches in range")?;
                return Ok(ExitCode::SUCCESS);
            }
            let heading = |out: &mut dyn Write, s: &str| -> std::io::Result<()> {
                if format == Format::Md {
                    writeln!(out, "\n## {s}\n")
                } else if std::io::stdout().is_terminal() {
                    writeln!(out, "\n\x1b[1m{s}\x1b[0m")
                } else {
                    writeln!(out, "\n{s}")
                }
            };
            heading(&mut out, "Sessions")?;
            render::write(&mut out, &sessions_table(&t), format, style)?;
            if !t.shell_sessions.is_empty() {
                heading(&mut out, "SSM shell sessions")?;
                render::write(&mut out, &shells_table(&t), format, style)?;
            }
            heading(
                &mut out,
                "Events (* named by the selector, W write, D denied, A after hours, ! hit a detection rule)",
            )?;
            render::write(&mut out, &steps_table(&t), format, style)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
