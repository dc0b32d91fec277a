//! TLS and mutual TLS with certificates made in the test, and the plaintext
//! health port beside a TLS server.

use std::path::Path;

use pressroom::proto::v1::{
    ListPressReleasesRequest, press_release_service_client::PressReleaseServiceClient,
};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

use crate::helpers::{TestResult, TestServer, temp_dir};

struct Pki {
    ca: String,
    server_cert: String,
    server_key: String,
    client_cert: String,
    client_key: String,
    other_ca: String,
}

fn pki() -> Result<Pki, rcgen::Error> {
    let ca_params = || -> Result<CertificateParams, rcgen::Error> {
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        Ok(params)
    };
    let ca = CertifiedIssuer::self_signed(ca_params()?, KeyPair::generate()?)?;
    let other = CertifiedIssuer::self_signed(ca_params()?, KeyPair::generate()?)?;
    let server_key = KeyPair::generate()?;
    let server =
        CertificateParams::new(vec!["localhost".to_string()])?.signed_by(&server_key, &ca)?;
    let client_key = KeyPair::generate()?;
    let client = CertificateParams::new(vec!["client".to_string()])?.signed_by(&client_key, &ca)?;
    Ok(Pki {
        ca: ca.pem(),
        server_cert: server.pem(),
        server_key: server_key.serialize_pem(),
        client_cert: client.pem(),
        client_key: client_key.serialize_pem(),
        other_ca: other.pem(),
    })
}

fn write(dir: &Path, name: &str, text: &str) -> Result<String, std::io::Error> {
    let path = dir.join(name);
    std::fs::write(&path, text)?;
    Ok(path.display().to_string())
}

async fn list_over_tls(
    server: &TestServer,
    ca: &str,
    identity: Option<(&str, &str)>,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let mut tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(ca))
        .domain_name("localhost");
    if let Some((cert, key)) = identity {
        tls = tls.identity(Identity::from_pem(cert, key));
    }
    let channel = Channel::from_shared(format!("https://localhost:{}", server.addr.port()))?
        .tls_config(tls)?
        .connect()
        .await?;
    PressReleaseServiceClient::new(channel)
        .list_press_releases(ListPressReleasesRequest::default())
        .await?;
    Ok(())
}

#[tokio::test]
async fn tls_and_the_plaintext_health_port() -> TestResult {
    let pki = pki()?;
    let dir = temp_dir();
    let cert = write(dir.path(), "server.pem", &pki.server_cert)?;
    let key = write(dir.path(), "server.key", &pki.server_key)?;
    let server = TestServer::start_in(
        dir,
        &[
            "--tls-cert",
            &cert,
            "--tls-key",
            &key,
            "--health-listen",
            "127.0.0.1:0",
        ],
    )
    .await;
    list_over_tls(&server, &pki.ca, None).await?;
    assert!(
        list_over_tls(&server, &pki.other_ca, None).await.is_err(),
        "a server certificate from another CA was trusted"
    );
    let plaintext = Channel::from_shared(format!("http://{}", server.addr))?
        .connect()
        .await;
    let refused = match plaintext {
        Ok(channel) => PressReleaseServiceClient::new(channel)
            .list_press_releases(ListPressReleasesRequest::default())
            .await
            .is_err(),
        Err(_) => true,
    };
    assert!(refused, "plaintext was served on the TLS port");

    let health_addr = server.health_addr.ok_or("no health port")?;
    let mut health = HealthClient::new(
        Channel::from_shared(format!("http://{health_addr}"))?
            .connect()
            .await?,
    );
    for service in ["", "pressroom.v1.PressReleaseService"] {
        let status = health
            .check(HealthCheckRequest {
                service: service.into(),
            })
            .await?
            .into_inner();
        assert_eq!(status.status(), ServingStatus::Serving, "{service:?}");
    }
    Ok(())
}

#[tokio::test]
async fn mutual_tls_needs_a_client_certificate() -> TestResult {
    let pki = pki()?;
    let dir = temp_dir();
    let cert = write(dir.path(), "server.pem", &pki.server_cert)?;
    let key = write(dir.path(), "server.key", &pki.server_key)?;
    let ca = write(dir.path(), "ca.pem", &pki.ca)?;
    let server = TestServer::start_in(
        dir,
        &[
            "--tls-cert",
            &cert,
            "--tls-key",
            &key,
            "--tls-client-ca",
            &ca,
        ],
    )
    .await;
    assert!(
        list_over_tls(&server, &pki.ca, None).await.is_err(),
        "no client certificate was accepted"
    );
    list_over_tls(&server, &pki.ca, Some((&pki.client_cert, &pki.client_key))).await?;
    Ok(())
}
