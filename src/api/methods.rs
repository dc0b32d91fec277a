//! What the layers in front of the services need to know about a call from
//! its path alone: service, method, streaming kind, and the role it needs.
//! Known calls come from a static table (no allocation per call); anything
//! else is "unknown", so that a client sending made-up paths cannot make the
//! metrics grow. A test holds the table to the descriptors of the services
//! the server serves, so an RPC added to the proto cannot be forgotten here
//! (it would go without its role, and be counted as "unknown").

use std::{collections::HashMap, sync::LazyLock};

use crate::domain::Role;

/// How the messages of a call flow.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
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
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Method {
    pub(crate) path: &'static str,
    pub(crate) service: &'static str,
    pub(crate) name: &'static str,
    pub(crate) kind: Kind,
    /// The least role that may call it; `None` for open services (health,
    /// reflection).
    pub(crate) role: Option<Role>,
}

const PRESSROOM: &str = "pressroom.v1.PressReleaseService";
const SUBSCRIPTIONS: &str = "pressroom.v1.SubscriptionService";

/// Every call the server answers.
pub(crate) static KNOWN: LazyLock<HashMap<&'static str, Method>> = LazyLock::new(|| {
    let pressroom = |path: &'static str, name: &'static str, kind: Kind, role: Role| Method {
        path,
        service: PRESSROOM,
        name,
        kind,
        role: Some(role),
    };
    let subscriptions = |path: &'static str, name: &'static str, kind: Kind| Method {
        path,
        service: SUBSCRIPTIONS,
        name,
        kind,
        role: Some(Role::Reader),
    };
    let open = |path: &'static str, service: &'static str, name: &'static str, kind: Kind| Method {
        path,
        service,
        name,
        kind,
        role: None,
    };
    use Kind::*;
    use Role::*;
    [
        pressroom(
            "/pressroom.v1.PressReleaseService/CreatePressRelease",
            "CreatePressRelease",
            Unary,
            Publisher,
        ),
        pressroom(
            "/pressroom.v1.PressReleaseService/GetPressRelease",
            "GetPressRelease",
            Unary,
            Reader,
        ),
        pressroom(
            "/pressroom.v1.PressReleaseService/ListPressReleases",
            "ListPressReleases",
            Unary,
            Reader,
        ),
        pressroom(
            "/pressroom.v1.PressReleaseService/UpdatePressRelease",
            "UpdatePressRelease",
            Unary,
            Publisher,
        ),
        pressroom(
            "/pressroom.v1.PressReleaseService/DeletePressRelease",
            "DeletePressRelease",
            Unary,
            Publisher,
        ),
        pressroom(
            "/pressroom.v1.PressReleaseService/WatchPressReleases",
            "WatchPressReleases",
            ServerStream,
            Reader,
        ),
        pressroom(
            "/pressroom.v1.PressReleaseService/ImportPressReleases",
            "ImportPressReleases",
            ClientStream,
            Publisher,
        ),
        pressroom(
            "/pressroom.v1.PressReleaseService/SearchPressReleases",
            "SearchPressReleases",
            Unary,
            Reader,
        ),
        pressroom(
            "/pressroom.v1.PressReleaseService/GetPressReleaseStats",
            "GetPressReleaseStats",
            Unary,
            Reader,
        ),
        pressroom(
            "/pressroom.v1.PressReleaseService/BackupPressReleases",
            "BackupPressReleases",
            ServerStream,
            Admin,
        ),
        // Readers may do all of these; seeking and deleting another key's
        // subscription needs admin, which the domain checks.
        subscriptions(
            "/pressroom.v1.SubscriptionService/CreateSubscription",
            "CreateSubscription",
            Unary,
        ),
        subscriptions(
            "/pressroom.v1.SubscriptionService/GetSubscription",
            "GetSubscription",
            Unary,
        ),
        subscriptions(
            "/pressroom.v1.SubscriptionService/ListSubscriptions",
            "ListSubscriptions",
            Unary,
        ),
        subscriptions(
            "/pressroom.v1.SubscriptionService/DeleteSubscription",
            "DeleteSubscription",
            Unary,
        ),
        subscriptions(
            "/pressroom.v1.SubscriptionService/StreamSubscription",
            "StreamSubscription",
            BidiStream,
        ),
        subscriptions(
            "/pressroom.v1.SubscriptionService/SeekSubscription",
            "SeekSubscription",
            Unary,
        ),
        subscriptions(
            "/pressroom.v1.SubscriptionService/ListDeadLetters",
            "ListDeadLetters",
            Unary,
        ),
        subscriptions(
            "/pressroom.v1.SubscriptionService/ReplayDeadLetters",
            "ReplayDeadLetters",
            Unary,
        ),
        open(
            "/grpc.health.v1.Health/Check",
            "grpc.health.v1.Health",
            "Check",
            Unary,
        ),
        open(
            "/grpc.health.v1.Health/Watch",
            "grpc.health.v1.Health",
            "Watch",
            ServerStream,
        ),
        open(
            "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
            "grpc.reflection.v1.ServerReflection",
            "ServerReflectionInfo",
            BidiStream,
        ),
        open(
            "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
            "grpc.reflection.v1alpha.ServerReflection",
            "ServerReflectionInfo",
            BidiStream,
        ),
    ]
    .into_iter()
    .map(|method| (method.path, method))
    .collect()
});

/// A call of our services that is not in the table (tonic answers it
/// UNIMPLEMENTED; a key is still needed to learn that).
const UNKNOWN_PRESSROOM: Method = Method {
    path: "unknown",
    service: PRESSROOM,
    name: "unknown",
    kind: Kind::Unary,
    role: Some(Role::Reader),
};

/// The same for the subscription service.
const UNKNOWN_SUBSCRIPTIONS: Method = Method {
    service: SUBSCRIPTIONS,
    ..UNKNOWN_PRESSROOM
};

/// Any other path.
const UNKNOWN: Method = Method {
    path: "unknown",
    service: "unknown",
    name: "unknown",
    kind: Kind::Unary,
    role: None,
};

impl Method {
    /// Classifies `/<service>/<method>`.
    pub(crate) fn of_path(path: &str) -> Self {
        match KNOWN.get(path) {
            Some(method) => *method,
            None if path.starts_with("/pressroom.v1.PressReleaseService/") => UNKNOWN_PRESSROOM,
            None if path.starts_with("/pressroom.v1.SubscriptionService/") => UNKNOWN_SUBSCRIPTIONS,
            None => UNKNOWN,
        }
    }

    /// The method of a request: classified once by the outermost layer and
    /// kept in the request's extensions for the others.
    pub(crate) fn of<B>(request: &http::Request<B>) -> Self {
        request
            .extensions()
            .get::<Method>()
            .copied()
            .unwrap_or_else(|| Self::of_path(request.uri().path()))
    }

    /// Whether this is a call of our services (press releases and
    /// subscriptions).
    pub(crate) fn is_pressroom(&self) -> bool {
        self.service == PRESSROOM || self.service == SUBSCRIPTIONS
    }

    /// Long-lived calls that the concurrency limit and the unary timeout
    /// leave alone (watchers have their own limit).
    pub(crate) fn is_long_lived(&self) -> bool {
        matches!(self.kind, Kind::ServerStream | Kind::BidiStream)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

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
        let made_up = Method::of_path("/pressroom.v1.PressReleaseService/Nope");
        assert_eq!(
            (made_up.name, made_up.role),
            ("unknown", Some(Role::Reader))
        );
        assert_eq!(Method::of_path("/x/y").service, "unknown");
    }

    /// Every RPC of every service the server serves (ours, health and both
    /// reflections), as the descriptors name them: path, service, method,
    /// kind.
    fn served() -> Result<BTreeSet<(String, String, String, Kind)>, prost::DecodeError> {
        use prost::Message as _;
        let mut served = BTreeSet::new();
        for encoded in [
            crate::proto::FILE_DESCRIPTOR_SET,
            tonic_health::pb::FILE_DESCRIPTOR_SET,
            tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET,
            tonic_reflection::pb::v1alpha::FILE_DESCRIPTOR_SET,
        ] {
            for file in prost_types::FileDescriptorSet::decode(encoded)?.file {
                for service in &file.service {
                    let service_name = format!("{}.{}", file.package(), service.name());
                    for method in &service.method {
                        let kind = match (method.client_streaming(), method.server_streaming()) {
                            (false, false) => Kind::Unary,
                            (true, false) => Kind::ClientStream,
                            (false, true) => Kind::ServerStream,
                            (true, true) => Kind::BidiStream,
                        };
                        served.insert((
                            format!("/{service_name}/{}", method.name()),
                            service_name.clone(),
                            method.name().to_string(),
                            kind,
                        ));
                    }
                }
            }
        }
        Ok(served)
    }

    #[test]
    fn the_table_is_every_rpc_the_protos_declare() -> Result<(), prost::DecodeError> {
        let served = served()?;
        assert!(
            served.iter().any(|(_, service, ..)| service == PRESSROOM),
            "{served:?}"
        );
        let table: BTreeSet<_> = KNOWN
            .values()
            .map(|m| {
                (
                    m.path.to_string(),
                    m.service.to_string(),
                    m.name.to_string(),
                    m.kind,
                )
            })
            .collect();
        let missing: Vec<_> = served.difference(&table).collect();
        assert!(missing.is_empty(), "RPCs missing from KNOWN: {missing:?}");
        let extra: Vec<_> = table.difference(&served).collect();
        assert!(
            extra.is_empty(),
            "KNOWN has RPCs no proto declares: {extra:?}"
        );
        for method in KNOWN.values() {
            assert_eq!(
                method.role.is_some(),
                method.is_pressroom(),
                "{method:?}: our RPCs need a role, the open services none"
            );
        }
        Ok(())
    }
}
