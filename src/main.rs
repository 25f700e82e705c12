//! The `cetrail` binary: parse arguments, call the library, map the outcome to an
//! exit status (see the crate docs). A closed pipe ends the program quietly.

use std::process::ExitCode;

use clap::Parser;

mod cli;

/// mimalloc: the widgets' and the ingest's large short-lived buffers are reused instead
/// of being returned to and faulted back from the kernel (measured in BENCHMARKS.md).
/// Built without transparent huge pages (`no_thp`): on a VM every first touch of a
/// 2 MiB page zeroes all of it and the host backs it, which made a dashboard after
/// another memory-hungry process 1.6× slower and ingest ~30 % slower than 4 KiB pages.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    match cli::run(args) {
        Ok(code) => code,
        Err(err) => {
            if err
                .chain()
                .filter_map(|e| e.downcast_ref::<std::io::Error>())
                .any(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
            {
                return ExitCode::SUCCESS;
            }
            let text = format!("{err:#}");
            eprintln!("cetrail: error: {text}");
            // A lake file that could not be read is named with the segment that
            // committed it, and the way out (SPEC §11).
            if let Some(why) = cetrail::lake::check::explain(&text) {
                eprintln!("cetrail: {why}");
            }
            ExitCode::from(2)
        }
    }
}
