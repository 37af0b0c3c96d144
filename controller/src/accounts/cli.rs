//! `dalaba-controller user create|list|password|disable`: operator accounts
//! managed from a shell on the controller. This is how the first admin is
//! made; later ones can be made in the console. Passwords are read from
//! standard input (one line), never from the command line, where other
//! users could see them in the process list.

use std::io::BufRead;

use anyhow::{Context, bail};

use super::{NewUser, Role, UserPatch, check_display_name, check_name, check_role, hash_password};
use crate::clock::{Clock, rfc3339};
use crate::config::Config;
use crate::directory::Level;
use crate::store::Store;
use crate::store::sqlite::SqliteStore;

/// `dalaba-controller user …`.
#[derive(Debug, clap::Args)]
pub struct UserArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: UserCommand,
}

/// The user subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum UserCommand {
    /// Create an account; its password is read from standard input.
    Create {
        /// Login name: letters, digits, '-', '_' or '.'.
        name: String,
        /// admin, operator or viewer.
        #[arg(long)]
        role: Role,
        /// The township (region id) the account is limited to; the county
        /// when left out. Admins are always county-wide.
        #[arg(long)]
        region: Option<i64>,
        /// The account may start emergencies (admins always may).
        #[arg(long)]
        emergency: bool,
        /// The name shown in the console and the audit log.
        #[arg(long)]
        display_name: Option<String>,
    },
    /// List accounts.
    List,
    /// Set an account's password (read from standard input); unlocks it
    /// and ends its sessions.
    Password {
        /// Login name.
        name: String,
    },
    /// Disable an account (it can no longer log in; its sessions end).
    Disable {
        /// Login name.
        name: String,
    },
    /// Enable a disabled account.
    Enable {
        /// Login name.
        name: String,
    },
}

impl clap::ValueEnum for Role {
    fn value_variants<'a>() -> &'a [Self] {
        &Role::ALL
    }

    fn to_possible_value(&self) -> Option<clap::builder::PossibleValue> {
        Some(clap::builder::PossibleValue::new(self.as_str()))
    }
}

/// Runs a user subcommand against the data directory of `config`, reading
/// passwords from `input`.
pub fn run(config: &Config, args: UserArgs, clock: &Clock, input: &mut dyn BufRead) -> anyhow::Result<()> {
    let data_dir = &config.storage.data_dir;
    let now = clock.now_ms();
    let db = data_dir.join("dalaba.db");
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("cannot create data directory {}", data_dir.display()))?;
    let store = SqliteStore::open(&db).with_context(|| format!("cannot open database {}", db.display()))?;
    match args.command {
        UserCommand::Create { name, role, region, emergency, display_name } => {
            check_name(&name)?;
            let display_name = display_name.unwrap_or_else(|| name.clone());
            check_display_name(&display_name)?;
            let emergency = emergency || role == Role::Admin;
            check_role(role, region, emergency)?;
            if let Some(id) = region {
                match store.region(id)? {
                    Some(r) if r.level == Level::Township => {}
                    Some(r) => bail!("region {id} ({}) is not a township", r.name),
                    None => bail!("region {id} does not exist"),
                }
            }
            let password_hash = hash_password(&read_password(input)?)?;
            // Typed at the server by whoever runs the command (the first
            // admin, for themselves): not a password to change at once.
            let new = NewUser {
                name,
                display_name,
                role,
                region_id: region,
                emergency,
                password_hash,
                created_at_ms: now,
                password_change_required: false,
            };
            let user = store.create_user(&new)?;
            println!("Created {} account {} (id {}).", user.role, user.name, user.id);
        }
        UserCommand::List => {
            let users = store.users()?;
            if users.is_empty() {
                println!("no accounts; create the first admin with `dalaba-controller user create NAME --role admin`");
            }
            for u in users {
                let region = u.region_id.map_or_else(|| "county".to_owned(), |r| format!("township {r}"));
                let state =
                    u.disabled_at_ms.map_or_else(|| "active".to_owned(), |ms| format!("disabled {}", rfc3339(ms)));
                let emergency = if u.emergency { "emergency" } else { "-" };
                println!("{}\t{}\t{}\t{region}\t{emergency}\t{state}", u.name, u.display_name, u.role);
            }
        }
        UserCommand::Password { name } => {
            let user = find(&store, &name)?;
            let password_hash = hash_password(&read_password(input)?)?;
            let patch = UserPatch {
                password_hash: Some(password_hash),
                password_change_required: Some(false),
                ..UserPatch::default()
            };
            store.update_user(user.id, &patch)?;
            println!("Password of {} changed; its sessions ended.", user.name);
        }
        UserCommand::Disable { name } => {
            let user = find(&store, &name)?;
            store.update_user(user.id, &UserPatch { disabled_at_ms: Some(Some(now)), ..UserPatch::default() })?;
            println!("Disabled {}.", user.name);
        }
        UserCommand::Enable { name } => {
            let user = find(&store, &name)?;
            store.update_user(user.id, &UserPatch { disabled_at_ms: Some(None), ..UserPatch::default() })?;
            println!("Enabled {}.", user.name);
        }
    }
    Ok(())
}

fn find(store: &SqliteStore, name: &str) -> anyhow::Result<super::User> {
    match store.user_by_name(name)? {
        Some((user, _)) => Ok(user),
        None => bail!("no account named {name}; `dalaba-controller user list` shows them"),
    }
}

/// One line of standard input, without its line ending.
fn read_password(input: &mut dyn BufRead) -> anyhow::Result<String> {
    eprintln!("Password (one line on standard input):");
    let mut line = String::new();
    input.read_line(&mut line).context("cannot read the password from standard input")?;
    let password = line.trim_end_matches(['\n', '\r']).to_owned();
    if password.is_empty() {
        bail!(
            "no password on standard input: pipe it in, e.g. `printf '%s\\n' \"$PASSWORD\" | dalaba-controller user create …`"
        );
    }
    Ok(password)
}
