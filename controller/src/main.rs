//! `dalaba-controller`: wiring only. See the library crate for everything.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use dalaba_controller::clock::Clock;
use dalaba_controller::config::{Config, DEFAULT_CONFIG, EXIT_CONFIG, LogFormat};
use dalaba_controller::{accounts, alerts, app, demo, tokens};

/// The Dalaba county controller.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    /// Configuration file (TOML); the built-in defaults when absent.
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    /// Print the commented default configuration and exit.
    #[arg(long)]
    print_default_config: bool,
    /// Load and validate the configuration, then exit.
    #[arg(long)]
    check_config: bool,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the API, the pages and the agent link (the default).
    Serve,
    /// Start a demo county: 14 townships, 212 villages, each with a simulated agent.
    Demo(demo::DemoArgs),
    /// Manage API tokens in the data directory (create, list, revoke).
    Token(tokens::cli::TokenArgs),
    /// Manage operator accounts (create the first admin here).
    User(accounts::cli::UserArgs),
    /// Send a CAP 1.2 alert file to the running controller.
    Alert(alerts::client::AlertArgs),
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if e.use_stderr() => {
            eprintln!("{}", e.to_string().lines().next().unwrap_or("invalid arguments"));
            return ExitCode::from(EXIT_CONFIG as u8);
        }
        Err(e) => {
            // --help and --version.
            print!("{e}");
            return ExitCode::SUCCESS;
        }
    };
    if cli.print_default_config {
        print!("{DEFAULT_CONFIG}");
        return ExitCode::SUCCESS;
    }
    let config = match &cli.config {
        Some(path) => Config::load(path),
        None => Ok(Config::default_config()),
    };
    let config = match config {
        Ok(c) => c,
        Err(e) => {
            eprintln!("dalaba-controller: {e}");
            return ExitCode::from(EXIT_CONFIG as u8);
        }
    };
    if cli.check_config {
        println!("configuration OK");
        return ExitCode::SUCCESS;
    }
    init_logging(&config);
    // Store calls run on the blocking pool; a reconnect storm of thousands of
    // agents would otherwise start hundreds of threads for a moment.
    let runtime = match tokio::runtime::Builder::new_multi_thread().max_blocking_threads(32).enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("dalaba-controller: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command.unwrap_or(Command::Serve) {
            Command::Serve => serve(config).await,
            Command::Demo(args) => demo::run(config, cli.config.is_some(), args).await,
            Command::Token(args) => tokens::cli::run(&config, args, &Clock::System),
            Command::User(args) => accounts::cli::run(&config, args, &Clock::System, &mut std::io::stdin().lock()),
            Command::Alert(args) => alerts::client::run(&config, args).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("dalaba-controller: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let running = app::start(&config, Clock::System).await?;
    println!("Dalaba controller serving at {}/", running.url());
    app::shutdown_signal().await;
    running.shutdown.cancel();
    Ok(())
}

fn init_logging(config: &Config) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(&config.log.level));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match config.log.format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}
