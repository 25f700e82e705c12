//! `cetrail lake …`: inspect the lake.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Result;
use cetrail::lake::schema::{COLUMNS, SCHEMA_VERSION};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: LakeCommand,
}

#[derive(Debug, clap::Subcommand)]
enum LakeCommand {
    /// Print the lake schema, one line per column.
    Schema,
}

pub fn run(args: Args) -> Result<ExitCode> {
    match args.command {
        LakeCommand::Schema => {
            let mut out = std::io::stdout().lock();
            writeln!(
                out,
                "# cetrail lake schema, version {SCHEMA_VERSION}: events/month=YYYY-MM/*.parquet"
            )?;
            let width = COLUMNS.iter().map(|c| c.name.len()).max().unwrap_or(0);
            let twidth = COLUMNS
                .iter()
                .map(|c| c.kind.type_name().len())
                .max()
                .unwrap_or(0)
                .min(18);
            for c in COLUMNS {
                writeln!(
                    out,
                    "{:width$}  {:twidth$}  {}",
                    c.name,
                    c.kind.type_name(),
                    c.doc
                )?;
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
