//! `promptlooper`: parse the command line, set up logging, run.
#![forbid(unsafe_code)]

use clap::{CommandFactory, FromArgMatches};
use server::config::{Cli, Command, LogFormat};
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() {
    let matches = Cli::command().get_matches();
    let mut cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    cli.config.data_dir_given = matches!(
        matches.value_source("data_dir"),
        Some(clap::parser::ValueSource::CommandLine | clap::parser::ValueSource::EnvVariable)
    ) || cli.command.as_ref().is_some_and(|c| {
        let Command::Run(_) = c else { return false };
        // A subcommand's matches hold the global flags given after it.
        matches.subcommand().is_some_and(|(_, m)| {
            matches!(
                m.value_source("data_dir"),
                Some(
                    clap::parser::ValueSource::CommandLine | clap::parser::ValueSource::EnvVariable
                )
            )
        })
    });
    // The CLI commands print their own output; logs stay quiet unless RUST_LOG asks.
    let quiet = matches!(cli.command, Some(Command::Run(_) | Command::Import(_)));
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        EnvFilter::new(if quiet {
            "warn,sqlx=warn"
        } else {
            "info,sqlx=warn,tower_sessions=warn,tower_http=warn"
        })
    });
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr);
    match cli.config.log_format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
    std::process::exit(server::cli::run(cli).await);
}
