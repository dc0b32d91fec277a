//! Who is calling, and what they may do. The API layer authenticates the
//! caller; the domain only asks what a role allows (for example, whether
//! embargoed releases are visible).

use std::fmt;

/// What a caller may do, each role including the ones below it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// Get, list, watch, search and stats; never sees embargoed releases.
    Reader,
    /// A reader that may also create, update, withdraw and import, and see
    /// embargoed releases when it asks for them.
    Publisher,
    /// Everything, including backups.
    Admin,
}

impl Role {
    /// Parses `reader`, `publisher` or `admin`.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "reader" => Some(Self::Reader),
            "publisher" => Some(Self::Publisher),
            "admin" => Some(Self::Admin),
            _ => None,
        }
    }

    /// Whether embargoed releases may be shown to this role.
    pub fn sees_embargoed(self) -> bool {
        self >= Self::Publisher
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Reader => "reader",
            Self::Publisher => "publisher",
            Self::Admin => "admin",
        })
    }
}

/// An authenticated caller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Caller {
    /// The key's name (never the key).
    pub name: String,
    /// What it may do.
    pub role: Role,
}

impl Caller {
    /// The caller when authentication is off (loopback without a keys
    /// file, or `--insecure`): everything is allowed.
    pub fn unauthenticated() -> Self {
        Self {
            name: "anonymous".into(),
            role: Role::Admin,
        }
    }
}
