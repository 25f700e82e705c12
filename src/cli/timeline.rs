//! `cetrail timeline`: the forensic story of one session, engineer, source IP or resource.

use std::io::{IsTerminal, Write};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use cetrail::query::timeline::{Selector, timeline};
use cetrail::render::timeline::{into_steps_table, sessions_table, shells_table, steps_table};
use cetrail::render::{self, Format};

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
    /// Print the time of each step (JSON, on stderr).
    #[arg(long)]
    timings: bool,
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
    let started = std::time::Instant::now();
    let mut t = timeline(&lake, &config, &view, &selector)
        .with_context(|| format!("reading the lake {}", args.lake.lake.display()))?;
    let events = t.steps.len();
    // Buffered: stdout flushes at every line, and a story's JSON is a line per field.
    let mut out = std::io::BufWriter::with_capacity(1 << 20, std::io::stdout().lock());
    match args.format {
        Format::Json => {
            // serde_json's pretty layout of {"events", "sessions", "shell_sessions"}
            // (keys sorted), written one row at a time.
            let steps = into_steps_table(std::mem::take(&mut t.steps));
            for (i, (key, table)) in [
                ("events", steps),
                ("sessions", sessions_table(&t)),
                ("shell_sessions", shells_table(&t)),
            ]
            .into_iter()
            .enumerate()
            {
                write!(out, "{}\n  \"{key}\": ", if i == 0 { "{" } else { "," })?;
                table.write_json_rows_pretty(&mut out, style, 1)?;
            }
            writeln!(out, "\n}}")?;
        }
        Format::Csv | Format::Jsonl => render::write(
            &mut out,
            &into_steps_table(std::mem::take(&mut t.steps)),
            args.format,
            style,
        )?,
        format => {
            if t.steps.is_empty() {
                writeln!(out, "no CE event matches in range")?;
                out.flush()?;
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
    out.flush()?;
    if args.timings {
        t.stages.lap("output");
        super::print_timings(started, &t.stages, ("events", events));
    }
    Ok(ExitCode::SUCCESS)
}
