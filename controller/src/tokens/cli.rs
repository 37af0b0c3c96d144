//! `dalaba-controller token create|list|revoke`: API tokens managed from a
//! shell on the controller, in the configured data directory's database
//! (safe beside a running controller: SQLite serialises the writers).

use std::path::Path;

use anyhow::{Context, bail};

use super::{Scope, create};
use crate::clock::{Clock, rfc3339};
use crate::config::Config;
use crate::store::Store;
use crate::store::sqlite::SqliteStore;

/// `dalaba-controller token …`.
#[derive(Debug, clap::Args)]
pub struct TokenArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: TokenCommand,
}

/// The token subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum TokenCommand {
    /// Create a token and print it once (on standard output, alone).
    Create {
        /// A unique name, e.g. the upstream platform's: province-platform.
        #[arg(long)]
        name: String,
        /// Comma-separated scopes: read, schedule, emergency.
        #[arg(long)]
        scope: String,
    },
    /// List tokens (never their secrets).
    List,
    /// Revoke a token by name; it is refused from then on.
    Revoke {
        /// The token's name.
        name: String,
    },
}

/// Runs a token subcommand against the data directory of `config`.
pub fn run(config: &Config, args: TokenArgs, clock: &Clock) -> anyhow::Result<()> {
    let data_dir = &config.storage.data_dir;
    let now = clock.now_ms();
    match args.command {
        TokenCommand::Create { name, scope } => {
            let scopes = Scope::parse_list(&scope)?;
            std::fs::create_dir_all(data_dir)
                .with_context(|| format!("cannot create data directory {}", data_dir.display()))?;
            let store = open(data_dir)?;
            let created = create(&name, scopes, now)?;
            let token = store.create_api_token(&created.new)?;
            eprintln!("Created API token {} with scopes {}.", token.name, Scope::join(&token.scopes));
            println!("{}", created.token);
            eprintln!("Store it now: it is shown only this once (the controller keeps only its hash).");
        }
        TokenCommand::List => {
            let tokens = existing(data_dir)?.api_tokens()?;
            if tokens.is_empty() {
                println!("no API tokens; create one with `dalaba-controller token create --name NAME --scope SCOPES`");
            }
            for t in tokens {
                let used =
                    t.last_used_ms.map_or_else(|| "never used".to_owned(), |ms| format!("last used {}", rfc3339(ms)));
                let state =
                    t.revoked_at_ms.map_or_else(|| "active".to_owned(), |ms| format!("revoked {}", rfc3339(ms)));
                println!(
                    "{}\t{}\tcreated {}\t{used}\t{state}",
                    t.name,
                    Scope::join(&t.scopes),
                    rfc3339(t.created_at_ms)
                );
            }
        }
        TokenCommand::Revoke { name } => {
            let token = existing(data_dir)?.revoke_api_token(&name, now)?;
            println!("Revoked API token {}.", token.name);
        }
    }
    Ok(())
}

fn open(data_dir: &Path) -> anyhow::Result<SqliteStore> {
    let db = data_dir.join("dalaba.db");
    SqliteStore::open(&db).with_context(|| format!("cannot open database {}", db.display()))
}

/// The store of a data directory that must already hold one.
fn existing(data_dir: &Path) -> anyhow::Result<SqliteStore> {
    if !data_dir.join("dalaba.db").exists() {
        bail!("no database in {}: check storage.data_dir (or --config)", data_dir.display());
    }
    open(data_dir)
}
