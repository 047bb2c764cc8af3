//! `flux`: parse the command line, run it, map the outcome to an exit code.

use clap::Parser;
use flux::cli::Cli;
use flux::error::exit_code_for;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = Cli::parse();
    // tokio-tungstenite enables rustls without a crypto provider; pick ring explicitly, once.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("flux: error: cannot start the async runtime: {e}");
            return ExitCode::from(flux::error::exit::INTERNAL);
        }
    };
    match runtime.block_on(flux::app::run(cli)) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("flux: error: {e:#}");
            ExitCode::from(exit_code_for(&e))
        }
    }
}
