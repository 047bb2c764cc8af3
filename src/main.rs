//! `flux`: parse the command line, run it, map the outcome to an exit code.

use clap::Parser;
use flux::cli::{Cli, Command};
use flux::error::exit_code_for;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = Cli::parse();
    // tokio-tungstenite enables rustls without a crypto provider; pick ring explicitly, once.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let runtime = match runtime_for(&cli.command).enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("flux: error: cannot start the async runtime: {e}");
            return ExitCode::from(flux::error::ExitCode::Internal.code());
        }
    };
    match runtime.block_on(flux::app::run(cli)) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("flux: error: {}", flux::app::error_text(&e));
            ExitCode::from(exit_code_for(&e))
        }
    }
}

/// The client commands run on one thread: every session (a batch's too) is driven from the
/// same task, and with worker threads each socket event and each frame from the audio thread
/// crossed threads, a wake-up that cost more than the work it announced (issue 9's profile).
/// `flux serve` answers many independent connections, so it spreads them over two workers.
fn runtime_for(command: &Command) -> tokio::runtime::Builder {
    match command {
        Command::Serve(_) => {
            let mut builder = tokio::runtime::Builder::new_multi_thread();
            builder.worker_threads(2);
            builder
        }
        _ => tokio::runtime::Builder::new_current_thread(),
    }
}
