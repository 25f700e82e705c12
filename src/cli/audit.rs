//! `cetrail audit`: the conformance audit of the access model (SPEC §7).

use std::io::{IsTerminal, Write};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use cetrail::query::audit::{AuditParams, Status, audit};
use cetrail::render::html::{audit_findings_table, audit_results_table};
use cetrail::render::{self, Cell, Format, Table};

use super::query::LakeArgs;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    lake: LakeArgs,
    /// Also list the evidence events of every control.
    #[arg(long)]
    findings: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
    /// Print the wall time of the audit's steps on stderr (JSON).
    #[arg(long)]
    timings: bool,
}

pub fn run(args: Args) -> Result<ExitCode> {
    if args.lake.role.is_some() {
        bail!("--role: the audit covers every CE role");
    }
    let started = std::time::Instant::now();
    let (config, view, style) = args.lake.resolve()?;
    let lake = args.lake.local()?;
    let params = AuditParams {
        from: view.from,
        to: view.to,
        account: view.account.clone(),
        // Without --findings only the counts are printed.
        max_findings: (!args.findings).then_some(0),
        ..AuditParams::default()
    };
    let mut a = audit(&lake, &config, &params)
        .with_context(|| format!("auditing the lake {}", args.lake.lake.display()))?;
    let mut out = std::io::stdout().lock();
    match args.format {
        Format::Json => {
            let v = if args.findings {
                serde_json::json!({"results": a.results, "findings": audit_findings_table(&a, None).json_rows(style)})
            } else {
                serde_json::to_value(&a.results)?
            };
            serde_json::to_writer_pretty(&mut out, &v)?;
            writeln!(out)?;
        }
        format => {
            let mut t = audit_results_table(&a);
            if format == Format::Table && std::io::stdout().is_terminal() {
                colour(&mut t);
            }
            render::write(&mut out, &t, format, style)?;
            if args.findings && !a.findings.is_empty() {
                writeln!(out)?;
                render::write(&mut out, &audit_findings_table(&a, None), format, style)?;
            }
        }
    }
    out.flush()?;
    if args.timings {
        a.stages.lap("output");
        super::print_timings(
            started,
            &a.stages,
            ("findings", a.findings_total() as usize),
        );
    }
    Ok(if a.failed() {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// Colours the status column on a terminal.
fn colour(t: &mut Table) {
    for row in &mut t.rows {
        if let Some(Cell::Text(s)) = row.get_mut(1) {
            let code = match s.as_str() {
                x if x == Status::Pass.as_str() => "32",
                x if x == Status::Fail.as_str() => "31",
                _ => "33",
            };
            *s = format!("\x1b[{code}m{s}\x1b[0m");
        }
    }
}
