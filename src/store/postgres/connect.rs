//! Connecting to PostgreSQL: the `postgres://` URL as libpq reads it, TLS
//! as its `sslmode` asks, and the connection pool.
//!
//! tokio-postgres knows `sslmode` `disable`, `prefer` and `require` only,
//! and leaves certificate checks to the TLS connector. We read libpq's
//! modes ourselves and give tokio-postgres the nearest of its three, with a
//! rustls configuration that checks what libpq would:
//!
//! | `sslmode`            | TLS                  | certificate checked            |
//! |----------------------|----------------------|--------------------------------|
//! | `disable`            | never                | —                              |
//! | `allow`, `prefer` (default), `require` | if offered / always | only against `sslrootcert` when given (chain, not name), as libpq |
//! | `verify-ca`          | always               | chain, against `sslrootcert` or the system's roots |
//! | `verify-full`        | always               | chain and host name            |
//!
//! `sslrootcert` is a PEM file, or `system` for the system's roots.

use std::{str::FromStr, sync::Arc, time::Duration};

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
    client::{
        WebPkiServerVerifier,
        danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier},
    },
    crypto::CryptoProvider,
    pki_types::{CertificateDer, ServerName, UnixTime, pem::PemObject},
};
use tokio_postgres_rustls::MakeRustlsConnect;

/// What is wrong with a store URL or its TLS settings.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The URL does not parse.
    #[error("the store URL is not a valid postgres:// URL: {0}")]
    Url(String),
    /// A TLS setting is wrong.
    #[error("the store URL's TLS settings: {0}")]
    Tls(String),
    /// The pool could not be built.
    #[error("the connection pool: {0}")]
    Pool(String),
}

/// How the server's certificate is checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Check {
    /// Not at all (libpq's `require` without `sslrootcert`).
    Nothing,
    /// The chain, not the host name (`verify-ca`).
    Chain,
    /// The chain and the host name (`verify-full`).
    Full,
}

/// A parsed store URL: what tokio-postgres connects with, and the TLS
/// connector that carries out `sslmode`.
#[derive(Clone)]
pub struct Target {
    /// The connection settings (without the TLS parameters).
    pub config: tokio_postgres::Config,
    /// The TLS connector (used only when `sslmode` asks for TLS).
    pub tls: MakeRustlsConnect,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The config holds the password: show only where it points.
        f.debug_struct("Target")
            .field("hosts", &self.config.get_hosts())
            .field("dbname", &self.config.get_dbname())
            .finish_non_exhaustive()
    }
}

impl Target {
    /// Parses `postgres://user:password@host:port/db?sslmode=...`.
    pub fn parse(url: &str) -> Result<Self, ConnectError> {
        let mut parsed = url::Url::parse(url).map_err(|e| ConnectError::Url(e.to_string()))?;
        if !matches!(parsed.scheme(), "postgres" | "postgresql") {
            return Err(ConnectError::Url(format!(
                "the scheme is `{}`, not postgres or postgresql",
                parsed.scheme()
            )));
        }
        let mut mode = "prefer".to_string();
        let mut root_cert = None;
        let mut rest = Vec::new();
        for (key, value) in parsed.query_pairs() {
            match &*key {
                "sslmode" => mode = value.into_owned(),
                "sslrootcert" => root_cert = Some(value.into_owned()),
                "sslcert" | "sslkey" => {
                    return Err(ConnectError::Tls(format!(
                        "`{key}` (client certificates) is not supported; use a password"
                    )));
                }
                _ => rest.push((key.into_owned(), value.into_owned())),
            }
        }
        let (pg_mode, check) = match mode.as_str() {
            "disable" => ("disable", Check::Nothing),
            "allow" | "prefer" => ("prefer", Check::Nothing),
            "require" => ("require", Check::Nothing),
            "verify-ca" => ("require", Check::Chain),
            "verify-full" => ("require", Check::Full),
            other => {
                return Err(ConnectError::Tls(format!(
                    "sslmode `{other}` is not one of disable, allow, prefer, require, verify-ca, \
                     verify-full"
                )));
            }
        };
        // libpq: a root certificate given with `require` checks the chain.
        let check = match (check, &root_cert) {
            (Check::Nothing, Some(_)) if pg_mode != "disable" => Check::Chain,
            (check, _) => check,
        };
        rest.push(("sslmode".into(), pg_mode.into()));
        parsed.query_pairs_mut().clear().extend_pairs(rest);
        let config = tokio_postgres::Config::from_str(parsed.as_str())
            .map_err(|e| ConnectError::Url(e.to_string()))?;
        let tls = MakeRustlsConnect::new(client_config(check, root_cert.as_deref())?);
        Ok(Self { config, tls })
    }

    /// A pool of at most `size` connections. Each connection runs
    /// `session_options` (`-c name=value ...`) at start.
    pub fn pool(&self, size: usize, session_options: &str) -> Result<Pool, ConnectError> {
        let mut config = self.config.clone();
        let options = match config.get_options() {
            Some(existing) if !existing.is_empty() => format!("{existing} {session_options}"),
            _ => session_options.to_string(),
        };
        config.options(options);
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(10));
        }
        config.keepalives_idle(Duration::from_secs(30));
        let manager = Manager::from_config(
            config,
            self.tls.clone(),
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        Pool::builder(manager)
            .max_size(size.max(2))
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(Duration::from_secs(30)))
            .create_timeout(Some(Duration::from_secs(15)))
            .recycle_timeout(Some(Duration::from_secs(5)))
            .build()
            .map_err(|e| ConnectError::Pool(e.to_string()))
    }

    /// Opens one connection outside the pool (for `LISTEN` and the advisory
    /// lock, which live as long as their session) and drives it on a task.
    /// Asynchronous messages (notifications) go to `messages`.
    pub async fn connect_dedicated(
        &self,
        messages: Option<tokio::sync::mpsc::UnboundedSender<tokio_postgres::Notification>>,
    ) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
        let (client, mut connection) = self.config.connect(self.tls.clone()).await?;
        tokio::spawn(async move {
            let mut stream = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
            while let Some(message) = futures_util::StreamExt::next(&mut stream).await {
                match message {
                    Ok(tokio_postgres::AsyncMessage::Notification(note)) => {
                        if let Some(messages) = &messages {
                            let _ = messages.send(note);
                        }
                    }
                    Ok(_) => {}
                    Err(error) => {
                        tracing::debug!(%error, "dedicated database connection ended");
                        break;
                    }
                }
            }
        });
        Ok(client)
    }
}

/// The rustls configuration for a certificate check.
fn client_config(check: Check, root_cert: Option<&str>) -> Result<ClientConfig, ConnectError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(|e| ConnectError::Tls(e.to_string()))?;
    let verifier: Arc<dyn ServerCertVerifier> = match check {
        Check::Nothing => Arc::new(AnyCertificate(provider)),
        Check::Chain | Check::Full => {
            let roots = Arc::new(roots(root_cert)?);
            let webpki = WebPkiServerVerifier::builder_with_provider(roots, provider)
                .build()
                .map_err(|e| ConnectError::Tls(e.to_string()))?;
            if check == Check::Full {
                webpki
            } else {
                Arc::new(ChainOnly(webpki))
            }
        }
    };
    Ok(builder
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth())
}

/// The roots to check a chain against.
fn roots(root_cert: Option<&str>) -> Result<RootCertStore, ConnectError> {
    let mut store = RootCertStore::empty();
    match root_cert {
        Some(path) if path != "system" => {
            let certificates: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
                .and_then(|certs| certs.collect())
                .map_err(|e| ConnectError::Tls(format!("sslrootcert `{path}`: {e}")))?;
            if certificates.is_empty() {
                return Err(ConnectError::Tls(format!(
                    "sslrootcert `{path}` holds no certificate"
                )));
            }
            for certificate in certificates {
                store
                    .add(certificate)
                    .map_err(|e| ConnectError::Tls(format!("sslrootcert `{path}`: {e}")))?;
            }
        }
        _ => {
            let found = rustls_native_certs::load_native_certs();
            store.add_parsable_certificates(found.certs);
            if store.is_empty() {
                return Err(ConnectError::Tls(
                    "no system root certificates found; name one with sslrootcert".into(),
                ));
            }
        }
    }
    Ok(store)
}

/// libpq's `require`: encrypted, the certificate not checked. The handshake
/// signatures are still verified.
#[derive(Debug)]
struct AnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// libpq's `verify-ca`: the chain is checked, the host name is not.
#[derive(Debug)]
struct ChainOnly(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn libpq_modes_map_to_what_tokio_postgres_knows() -> Result<(), ConnectError> {
        use tokio_postgres::config::SslMode;
        let mode = |url: &str| Target::parse(url).map(|t| t.config.get_ssl_mode());
        assert_eq!(
            mode("postgres://u@h/db")?,
            SslMode::Prefer,
            "libpq's default"
        );
        assert_eq!(mode("postgres://u@h/db?sslmode=disable")?, SslMode::Disable);
        assert_eq!(mode("postgres://u@h/db?sslmode=require")?, SslMode::Require);
        assert_eq!(
            mode("postgresql://u@h/db?sslmode=verify-full")?,
            SslMode::Require
        );
        let target = Target::parse("postgres://u:secret@h:6543/db?application_name=x")?;
        assert_eq!(target.config.get_dbname(), Some("db"));
        assert_eq!(target.config.get_ports(), &[6543]);
        assert!(
            !format!("{target:?}").contains("secret"),
            "no password in Debug"
        );
        Ok(())
    }

    #[test]
    fn bad_urls_and_modes_are_refused_with_the_reason() {
        let error = |url: &str| Target::parse(url).err().map(|e| e.to_string());
        assert!(error("mysql://u@h/db").is_some_and(|e| e.contains("scheme")));
        assert!(
            error("postgres://u@h/db?sslmode=sometimes").is_some_and(|e| e.contains("verify-full"))
        );
        assert!(
            error("postgres://u@h/db?sslcert=/c.pem")
                .is_some_and(|e| e.contains("client certificates"))
        );
        assert!(
            error("postgres://u@h/db?sslmode=verify-full&sslrootcert=/nonexistent.pem")
                .is_some_and(|e| e.contains("/nonexistent.pem"))
        );
    }
}
