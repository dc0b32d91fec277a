//! `pressroom keys`: makes API keys and the lines of a keys file (the file
//! itself is [`crate::api_keys`]).

use std::io::Read;

use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};

use super::ClientError;
use crate::{api_keys::keys_file_line, domain::Role};

/// `pressroom keys ...`
#[derive(Clone, Debug, clap::Args)]
pub struct KeysArgs {
    /// What to do.
    #[command(subcommand)]
    pub action: KeysAction,
}

/// Key actions.
#[derive(Clone, Debug, clap::Subcommand)]
pub enum KeysAction {
    /// Makes a new random key and prints it with its keys-file line.
    Generate {
        /// The key's name, shown in logs.
        #[arg(long)]
        name: String,
        /// `reader`, `publisher` or `admin`.
        #[arg(long, value_parser = parse_role)]
        role: Role,
    },
    /// Reads a key from stdin and prints its keys-file line.
    Hash {
        /// The key's name, shown in logs.
        #[arg(long)]
        name: String,
        /// `reader`, `publisher` or `admin`.
        #[arg(long, value_parser = parse_role)]
        role: Role,
    },
}

fn parse_role(text: &str) -> Result<Role, String> {
    Role::parse(text)
        .ok_or_else(|| format!("{text:?} is not a role; use reader, publisher or admin"))
}

pub(super) fn run(args: KeysArgs) -> Result<(), ClientError> {
    match args.action {
        KeysAction::Generate { name, role } => {
            let mut bytes = [0u8; 32];
            getrandom::fill(&mut bytes).map_err(|e| ClientError::Other(e.to_string().into()))?;
            let key = format!("prk_{}", URL_SAFE_NO_PAD.encode(bytes));
            println!("key:            {key}");
            println!("keys file line: {}", keys_file_line(&name, role, &key));
        }
        KeysAction::Hash { name, role } => {
            let mut key = String::new();
            std::io::stdin()
                .read_to_string(&mut key)
                .map_err(|source| ClientError::File {
                    path: "(stdin)".into(),
                    source,
                })?;
            println!("{}", keys_file_line(&name, role, key.trim()));
        }
    }
    Ok(())
}
