//! The `flowtide` command.

use std::process::ExitCode;

use clap::Parser;
use flowtide::cli::{Cli, Command};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let verbose = match &cli.command {
        Command::Analyze(a) => a.verbose,
        Command::Synth(_) | Command::Defrag(_) => 0,
    };
    init_logging(verbose);
    let result = match cli.command {
        Command::Analyze(args) => flowtide::runtime::analyze::run(*args),
        Command::Synth(args) => flowtide::synth::run_cli(&args),
        Command::Defrag(args) => flowtide::defrag::run(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("flowtide: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging(verbose: u8) {
    let level = match verbose {
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("FLOWTIDE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}
