//! What the layers in front of the services need to know about a call from
//! its path alone: service, method, streaming kind, and the role it needs.

use crate::domain::Role;

/// How the messages of a call flow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Unary,
    ClientStream,
    ServerStream,
    BidiStream,
}

impl Kind {
    /// The `grpc_type` label of the standard gRPC metrics.
    pub(crate) fn label(self) -> &'static str {
        match self {
            Self::Unary => "unary",
            Self::ClientStream => "client_stream",
            Self::ServerStream => "server_stream",
            Self::BidiStream => "bidi_stream",
        }
    }
}

/// A call, as its path names it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Method {
    pub(crate) service: String,
    pub(crate) name: String,
    pub(crate) kind: Kind,
    /// The least role that may call it; `None` for open services (health,
    /// reflection).
    pub(crate) role: Option<Role>,
}

const PRESSROOM: &str = "pressroom.v1.PressReleaseService";

impl Method {
    /// Classifies `/<service>/<method>`.
    pub(crate) fn of_path(path: &str) -> Self {
        let mut parts = path.trim_start_matches('/').splitn(2, '/');
        let service = parts.next().unwrap_or_default().to_string();
        let name = parts.next().unwrap_or_default().to_string();
        let (kind, role) = if service == PRESSROOM {
            match name.as_str() {
                "CreatePressRelease" | "UpdatePressRelease" | "DeletePressRelease" => {
                    (Kind::Unary, Some(Role::Publisher))
                }
                "ImportPressReleases" => (Kind::ClientStream, Some(Role::Publisher)),
                "WatchPressReleases" => (Kind::ServerStream, Some(Role::Reader)),
                "BackupPressReleases" => (Kind::ServerStream, Some(Role::Admin)),
                _ => (Kind::Unary, Some(Role::Reader)),
            }
        } else if service == "grpc.health.v1.Health" && name == "Watch" {
            (Kind::ServerStream, None)
        } else if service.starts_with("grpc.reflection.") {
            (Kind::BidiStream, None)
        } else {
            (Kind::Unary, None)
        };
        Self {
            service,
            name,
            kind,
            role,
        }
    }

    /// Whether this is a call of the press-release service.
    pub(crate) fn is_pressroom(&self) -> bool {
        self.service == PRESSROOM
    }

    /// Long-lived calls that the concurrency limit and the unary timeout
    /// leave alone (watchers have their own limit).
    pub(crate) fn is_long_lived(&self) -> bool {
        matches!(self.kind, Kind::ServerStream | Kind::BidiStream)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_paths() {
        let create = Method::of_path("/pressroom.v1.PressReleaseService/CreatePressRelease");
        assert_eq!(
            (create.kind, create.role),
            (Kind::Unary, Some(Role::Publisher))
        );
        let watch = Method::of_path("/pressroom.v1.PressReleaseService/WatchPressReleases");
        assert!(watch.is_long_lived() && watch.is_pressroom());
        let backup = Method::of_path("/pressroom.v1.PressReleaseService/BackupPressReleases");
        assert_eq!(backup.role, Some(Role::Admin));
        let health = Method::of_path("/grpc.health.v1.Health/Check");
        assert_eq!(health.role, None);
        let reflection =
            Method::of_path("/grpc.reflection.v1.ServerReflection/ServerReflectionInfo");
        assert_eq!((reflection.kind, reflection.role), (Kind::BidiStream, None));
    }
}
