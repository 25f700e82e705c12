//! `cetrail serve`: the dashboard in a browser (SPEC §13).

use std::io::Write;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use cetrail::serve::{Options, new_token, serve};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The lake: a folder or `s3://bucket/prefix` (mirrored to the cache folder).
    #[arg(long, value_name = "DIR|S3")]
    lake: PathBuf,
    /// The port (0: any free one).
    #[arg(long, default_value_t = 8080)]
    port: u16,
    /// The address to listen on. Anything but a loopback address needs --allow-remote.
    #[arg(long, default_value = "127.0.0.1")]
    bind: IpAddr,
    /// Listen on a non-loopback --bind address: anyone who reaches it and holds the
    /// token reads the lake's events.
    #[arg(long)]
    allow_remote: bool,
    /// Configuration file (default ./cetrail.toml, else built-in defaults).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// The page's IANA time zone until the page picks another (overrides the
    /// configuration's).
    #[arg(long)]
    tz: Option<String>,
    #[command(flatten)]
    s3: super::S3Args,
}

pub fn run(args: Args) -> Result<ExitCode> {
    if !args.bind.is_loopback() && !args.allow_remote {
        bail!(
            "--bind {} would serve the lake's events beyond this machine; add --allow-remote to mean it",
            args.bind
        );
    }
    let mut config = super::load_config(args.config.as_deref())?;
    if let Some(tz) = &args.tz {
        if tz.parse::<chrono_tz::Tz>().is_err() {
            bail!("--tz: `{tz}` is not an IANA time zone");
        }
        config.time.zone = tz.clone();
    }
    let lake = args.s3.readable_lake(&args.lake)?;
    let token = new_token()?;
    let addr = SocketAddr::new(args.bind, args.port);
    let remote = !args.bind.is_loopback();
    serve(
        Options {
            lake,
            config,
            addr,
            token: token.clone(),
        },
        |bound| {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "cetrail serve: http://{bound}/?token={token}");
            if remote {
                let _ = writeln!(
                    out,
                    "warning: listening on {bound}: anyone who reaches it with the token reads the lake's events"
                );
            }
            let _ = out.flush();
        },
    )
    .context("serving the dashboard")?;
    Ok(ExitCode::SUCCESS)
}
