//! `cetrail detect`: Sigma rules over the lake (SPEC §12).

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use cetrail::detect::library;
use cetrail::detect::results::{LEVELS, level_rank};
use cetrail::detect::run;
use cetrail::render::{self, Format};

use super::query::LakeArgs;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    lake: LakeArgs,
    /// A Sigma rule file, or a folder of them (walked for .yml/.yaml); repeatable. Adds
    /// to our own rules (queries/rules/) unless --no-builtin.
    #[arg(long, value_name = "PATH")]
    rules: Vec<PathBuf>,
    /// Run only the rules of --rules, not our own.
    #[arg(long)]
    no_builtin: bool,
    /// Only rules of this level or above (informational, low, medium, high, critical).
    #[arg(long, value_parser = clap::builder::PossibleValuesParser::new(LEVELS))]
    level: Option<String>,
    /// One row per rule (hits, first, last) instead of one per hit.
    #[arg(long)]
    summary: bool,
    /// Print the per-step wall times to stderr.
    #[arg(long)]
    timings: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
}

pub fn run(args: Args) -> Result<ExitCode> {
    let started = std::time::Instant::now();
    let (_config, view, style) = args.lake.resolve()?;
    let mut loaded = Vec::new();
    if !args.no_builtin {
        loaded.extend(library::builtin().context("our own rules (queries/rules)")?);
    } else if args.rules.is_empty() {
        bail!("--no-builtin needs --rules");
    }
    for path in &args.rules {
        loaded.extend(library::from_path(path)?);
    }
    let (mut rules, skipped) = run::prepare(loaded);
    if let Some(min) = &args.level {
        let min = level_rank(min);
        rules.retain(|c| level_rank(&c.rule.level) >= min);
    }
    let lake = args.lake.local()?;
    let d = run::detect(&lake, &view, rules, skipped)
        .with_context(|| format!("reading the lake {}", args.lake.lake.display()))?;
    let mut err = std::io::stderr().lock();
    for s in &d.skipped {
        writeln!(err, "skipped: {} ({}): {}", s.title, s.file, s.reason)?;
    }
    writeln!(
        err,
        "{} rules ran over {} candidate events, {} skipped; {} hits",
        d.rules.len(),
        d.events.height(),
        d.skipped.len(),
        d.hits.len()
    )?;
    let frame = if args.summary {
        d.summary_frame()?
    } else {
        d.hits_frame()?
    };
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    render::write_frame(&mut out, &frame, args.format, style)?;
    out.flush()?;
    if args.timings {
        for (name, ms) in &d.stages.laps {
            writeln!(err, "{name:>16}: {ms:8.1} ms")?;
        }
        writeln!(
            err,
            "{:>16}: {:8.1} ms",
            "total",
            started.elapsed().as_secs_f64() * 1e3
        )?;
    }
    Ok(ExitCode::SUCCESS)
}
