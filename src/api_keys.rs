//! API keys: the keys file, and looking a presented key up in it.
//!
//! The file holds one key per line, `<name> <role> sha256:<hex>`, where the
//! hash is the SHA-256 of the key; blank lines and `#` comments are
//! ignored. Only hashes are stored, so the file (a Kubernetes Secret) never
//! holds a usable key. A presented key is hashed and compared with every
//! entry in constant time. [`Keys`] can be reloaded while serving; a file
//! that does not parse is reported and the previous keys stay in force.

use std::{
    path::{Path, PathBuf},
    sync::{Arc, PoisonError, RwLock},
};

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::domain::{Caller, Role};

/// One entry of a keys file.
#[derive(Clone, Debug)]
struct Entry {
    name: String,
    role: Role,
    hash: [u8; 32],
}

/// A parsed keys file.
#[derive(Clone, Debug, Default)]
pub struct KeyRing {
    entries: Vec<Entry>,
}

/// A mistake in a keys file.
#[derive(Debug, thiserror::Error)]
pub enum KeysError {
    /// The file could not be read.
    #[error("cannot read the keys file {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A line is malformed.
    #[error("keys file line {line}: {message}")]
    Line {
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// No key at all.
    #[error("the keys file has no keys")]
    Empty,
}

impl KeyRing {
    /// Parses the text of a keys file.
    pub fn parse(text: &str) -> Result<Self, KeysError> {
        let mut entries: Vec<Entry> = Vec::new();
        for (number, line) in text.lines().enumerate() {
            let line_no = number + 1;
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let fail = |message: String| KeysError::Line {
                line: line_no,
                message,
            };
            let fields: Vec<&str> = line.split_whitespace().collect();
            let [name, role, hash] = fields.as_slice() else {
                return Err(fail("expected `<name> <role> sha256:<hex>`".into()));
            };
            let role = Role::parse(role).ok_or_else(|| {
                fail(format!(
                    "unknown role {role:?}; use reader, publisher or admin"
                ))
            })?;
            let hash = hash
                .strip_prefix("sha256:")
                .and_then(parse_hex)
                .ok_or_else(|| fail("the hash must be `sha256:` and 64 hex digits".into()))?;
            if entries.iter().any(|e| e.name == *name) {
                return Err(fail(format!("the name {name:?} is used twice")));
            }
            entries.push(Entry {
                name: (*name).to_string(),
                role,
                hash,
            });
        }
        if entries.is_empty() {
            return Err(KeysError::Empty);
        }
        Ok(Self { entries })
    }

    /// Reads and parses a keys file.
    pub fn load(path: &Path) -> Result<Self, KeysError> {
        let text = std::fs::read_to_string(path).map_err(|source| KeysError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text)
    }

    /// The caller a presented key belongs to. Every entry is compared, in
    /// constant time, whatever matches.
    pub fn authenticate(&self, key: &str) -> Option<Caller> {
        let presented: [u8; 32] = Sha256::digest(key.as_bytes()).into();
        let mut found = None;
        for entry in &self.entries {
            if bool::from(entry.hash.ct_eq(&presented)) {
                found = Some(Caller {
                    name: entry.name.clone(),
                    role: entry.role,
                });
            }
        }
        found
    }

    /// How many keys there are.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// The line of a keys file for a key.
pub fn keys_file_line(name: &str, role: Role, key: &str) -> String {
    let hash: String = Sha256::digest(key.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("{name} {role} sha256:{hash}")
}

fn parse_hex(text: &str) -> Option<[u8; 32]> {
    if text.len() != 64 {
        return None;
    }
    let mut out = [0; 32];
    for (i, slot) in out.iter_mut().enumerate() {
        *slot = u8::from_str_radix(text.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

/// The keys in force, reloadable from their file.
#[derive(Clone)]
pub struct Keys {
    path: PathBuf,
    ring: Arc<RwLock<Arc<KeyRing>>>,
    text: Arc<RwLock<String>>,
}

impl Keys {
    /// Loads the keys file at `path`.
    pub fn load(path: &Path) -> Result<Self, KeysError> {
        let text = std::fs::read_to_string(path).map_err(|source| KeysError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let ring = KeyRing::parse(&text)?;
        Ok(Self {
            path: path.to_path_buf(),
            ring: Arc::new(RwLock::new(Arc::new(ring))),
            text: Arc::new(RwLock::new(text)),
        })
    }

    /// The keys in force now.
    pub fn current(&self) -> Arc<KeyRing> {
        Arc::clone(&self.ring.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// Re-reads the file if it changed. A file that cannot be read or
    /// parsed is logged and the keys in force stay.
    pub fn reload(&self) {
        let text = match std::fs::read_to_string(&self.path) {
            Ok(text) => text,
            Err(error) => {
                tracing::error!(path = %self.path.display(), %error, "cannot read the keys file; keeping the keys in force");
                return;
            }
        };
        if *self.text.read().unwrap_or_else(PoisonError::into_inner) == text {
            return;
        }
        match KeyRing::parse(&text) {
            Ok(ring) => {
                tracing::info!(path = %self.path.display(), keys = ring.len(), "keys file reloaded");
                *self.ring.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(ring);
                *self.text.write().unwrap_or_else(PoisonError::into_inner) = text;
            }
            Err(error) => {
                tracing::error!(path = %self.path.display(), %error, "the keys file is invalid; keeping the keys in force");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_authenticates() -> Result<(), KeysError> {
        let text = format!(
            "# comment\n\n{}\n{}\n",
            keys_file_line("bot", Role::Publisher, "secret-1"),
            keys_file_line("dash", Role::Reader, "secret-2")
        );
        let ring = KeyRing::parse(&text)?;
        assert_eq!(ring.len(), 2);
        assert_eq!(
            ring.authenticate("secret-1"),
            Some(Caller {
                name: "bot".into(),
                role: Role::Publisher
            })
        );
        assert_eq!(
            ring.authenticate("secret-2").map(|c| c.role),
            Some(Role::Reader)
        );
        assert_eq!(ring.authenticate("secret-3"), None);
        Ok(())
    }

    #[test]
    fn mistakes_name_their_line() {
        for (text, line) in [
            ("bot publisher", 1),
            ("# c\nbot owner sha256:00", 2),
            ("bot reader md5:abc", 1),
            ("bot reader sha256:zz", 1),
        ] {
            match KeyRing::parse(text) {
                Err(KeysError::Line { line: got, .. }) => assert_eq!(got, line, "{text:?}"),
                other => panic!("{text:?}: {other:?}"),
            }
        }
        assert!(matches!(
            KeyRing::parse("# nothing\n"),
            Err(KeysError::Empty)
        ));
        let twice = format!(
            "{}\n{}",
            keys_file_line("a", Role::Reader, "x"),
            keys_file_line("a", Role::Reader, "y")
        );
        assert!(matches!(
            KeyRing::parse(&twice),
            Err(KeysError::Line { line: 2, .. })
        ));
    }
}
