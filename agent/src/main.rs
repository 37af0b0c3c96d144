//! `dalaba-agent`: wiring only. See the library crate for everything.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use dalaba_agent::config::{Config, DEFAULT_CONFIG, EXIT_CONFIG, LogFormat};
use dalaba_agent::core::{AgentCore, CoreConfig};
use dalaba_agent::devices::{self, Devices};
use dalaba_agent::identity::{self, Identity};
use dalaba_agent::player::{AudioPlayer, Player};
use dalaba_protocol::link::Hardware;
use tokio_util::sync::CancellationToken;

/// The Dalaba village agent.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    /// Configuration file (TOML); the built-in defaults when absent.
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    /// State directory; overrides storage.state_dir.
    #[arg(long, global = true)]
    state_dir: Option<PathBuf>,
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
    /// Redeem a one-time enrolment code from the county.
    #[command(alias = "enroll")]
    Enrol {
        /// The controller, e.g. https://192.0.2.10:8443.
        #[arg(long)]
        controller: String,
        /// The one-time code, e.g. ABCD-EFGH.
        #[arg(long)]
        code: String,
        /// The controller certificate's SHA-256 fingerprint, when the county gave it.
        #[arg(long)]
        fingerprint: Option<String>,
        /// Name shown to operators; the host name by default.
        #[arg(long)]
        hostname: Option<String>,
    },
    /// Run the agent (the default).
    Run,
    /// Run many simulated villages (demo and load tests).
    Simulate {
        /// The controller URL.
        #[arg(long)]
        controller: String,
        /// Fleet file written by `dalaba-controller demo`.
        #[arg(long)]
        fleet: PathBuf,
        /// Stop when standard input closes (the demo controller holds the
        /// other end, so the villages stop when it dies, even by SIGKILL).
        #[arg(long)]
        exit_on_stdin_eof: bool,
    },
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if e.use_stderr() => {
            eprintln!("{}", e.to_string().lines().next().unwrap_or("invalid arguments"));
            return ExitCode::from(EXIT_CONFIG);
        }
        Err(e) => {
            print!("{e}");
            return ExitCode::SUCCESS;
        }
    };
    if cli.print_default_config {
        print!("{DEFAULT_CONFIG}");
        return ExitCode::SUCCESS;
    }
    let mut config = match &cli.config {
        Some(path) => Config::load(path),
        None => Ok(Config::default_config()),
    }
    .unwrap_or_else(|e| {
        eprintln!("dalaba-agent: {e}");
        std::process::exit(EXIT_CONFIG.into());
    });
    if let Some(dir) = cli.state_dir {
        config.storage.state_dir = dir;
    }
    if cli.check_config {
        println!("configuration OK");
        return ExitCode::SUCCESS;
    }
    init_logging(&config);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("dalaba-agent: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command.unwrap_or(Command::Run) {
            Command::Enrol { controller, code, fingerprint, hostname } => {
                let hostname = hostname.unwrap_or_else(host_name);
                let id =
                    identity::enrol(&controller, &code, &hostname, hardware(&config), fingerprint.as_deref()).await?;
                id.save(&config.storage.state_dir)?;
                println!(
                    "enrolled as {} for {}; identity saved in {}",
                    id.agent_id,
                    id.village_name,
                    Identity::path(&config.storage.state_dir).display()
                );
                Ok(())
            }
            Command::Run => run(config).await,
            Command::Simulate { controller, fleet, exit_on_stdin_eof } => {
                let stop = stop_on_signal();
                if exit_on_stdin_eof {
                    let stop = stop.clone();
                    tokio::spawn(async move {
                        use tokio::io::AsyncReadExt;
                        let mut stdin = tokio::io::stdin();
                        let mut buf = [0u8; 64];
                        while matches!(stdin.read(&mut buf).await, Ok(n) if n > 0) {}
                        tracing::info!("standard input closed; stopping the simulated villages");
                        stop.cancel();
                    });
                }
                dalaba_agent::simulate::run(&controller, &fleet, &config.storage.state_dir, stop).await
            }
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("dalaba-agent: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(config: Config) -> anyhow::Result<()> {
    let id = Identity::load(&config.storage.state_dir)?;
    tracing::info!(agent = %id.agent_id, village = %id.village_name, controller = %id.controller_url, "agent starting");
    let mut core_config = CoreConfig::new(id.agent_id.clone(), env!("CARGO_PKG_VERSION"), hardware(&config));
    core_config.backoff_max = config.link.backoff_max();
    core_config.command_key = Some(id.signing_key.clone());
    let player = Player::Audio(AudioPlayer::open(config.audio.output_settings()));
    core_config.playback_lead = player.lead();
    let core = AgentCore::new(core_config, dalaba_agent::clock::now());
    let devices = Devices::new(devices::amplifier(&config.amplifier)?, &config.storage.state_dir);
    let (poll, budget) = (config.link.device_poll(), config.storage.cache_budget_bytes());
    dalaba_agent::shell::run(id, core, devices, player, poll, budget, stop_on_signal()).await;
    Ok(())
}

fn stop_on_signal() -> CancellationToken {
    let token = CancellationToken::new();
    let t = token.clone();
    tokio::spawn(async move {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        let term = async {
            match term.as_mut() {
                Some(s) => {
                    s.recv().await;
                }
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term => {}
        }
        t.cancel();
    });
    token
}

fn hardware(config: &Config) -> Hardware {
    let model = std::fs::read_to_string("/proc/device-tree/model")
        .map(|m| m.trim_end_matches('\0').trim().to_string())
        .unwrap_or_else(|_| "generic Linux".into());
    let os = std::fs::read_to_string("/etc/os-release")
        .ok()
        .and_then(|t| t.lines().find_map(|l| l.strip_prefix("PRETTY_NAME=").map(|v| v.trim_matches('"').to_string())))
        .unwrap_or_else(|| std::env::consts::OS.into());
    Hardware {
        model,
        arch: std::env::consts::ARCH.into(),
        os,
        audio_output: config.audio.output.clone(),
        amplifier_driver: config.amplifier.driver.name().into(),
    }
}

fn host_name() -> String {
    std::fs::read_to_string("/etc/hostname").map(|h| h.trim().to_string()).unwrap_or_else(|_| "village-board".into())
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
