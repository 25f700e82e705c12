//! `cetrail config`.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Print the default configuration (TOML, with comments).
    #[arg(long)]
    print_default: bool,
    /// Check a configuration file and print it as cetrail reads it.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
}

pub fn run(args: Args) -> Result<ExitCode> {
    let mut out = std::io::stdout().lock();
    if args.print_default || args.config.is_none() {
        out.write_all(cetrail::config::DEFAULT_TOML.as_bytes())?;
        return Ok(ExitCode::SUCCESS);
    }
    let config = super::load_config(args.config.as_deref())?;
    let text = toml::to_string_pretty(&config)?;
    out.write_all(text.as_bytes())?;
    Ok(ExitCode::SUCCESS)
}
