//! TLS to the database server: `tls = "require"` and `"verify-full"` (rustls on aws-lc-rs).

use std::path::Path;
use std::sync::Arc;

use super::resolve;
use crate::config::{DatabaseTls, DirectoryConfig};

pub(super) fn tls_config(
    config: &DirectoryConfig,
    config_file: &Path,
) -> Result<tokio_rustls::rustls::ClientConfig, String> {
    use tokio_rustls::rustls;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS set-up: {e}"))?;
    if config.tls == DatabaseTls::Require {
        return Ok(builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyServerCert(provider)))
            .with_no_client_auth());
    }
    let mut roots = rustls::RootCertStore::empty();
    match &config.ca_file {
        Some(file) => {
            let file = resolve(config_file, file);
            let pem = std::fs::read(&file)
                .map_err(|e| format!("cannot read directory.ca_file {}: {e}", file.display()))?;
            for cert in rustls_pemfile::certs(&mut pem.as_slice()) {
                let cert = cert.map_err(|e| {
                    format!(
                        "directory.ca_file {}: not PEM certificates: {e}",
                        file.display()
                    )
                })?;
                roots.add(cert).map_err(|e| {
                    format!(
                        "directory.ca_file {}: unusable certificate: {e}",
                        file.display()
                    )
                })?;
            }
            if roots.is_empty() {
                return Err(format!(
                    "directory.ca_file {} holds no certificate",
                    file.display()
                ));
            }
        }
        None => {
            for cert in rustls_native_certs::load_native_certs().certs {
                let _ = roots.add(cert);
            }
            if roots.is_empty() {
                return Err(
                    "tls = \"verify-full\" found no system roots: set directory.ca_file to the PEM file of the CA that issued the database server's certificate".into(),
                );
            }
        }
    }
    Ok(builder.with_root_certificates(roots).with_no_client_auth())
}

/// `tls = "require"`: libpq's sslmode=require, which encrypts without authenticating the
/// server. The handshake signature is still checked, so the session key belongs to whoever
/// holds the presented certificate's key.
#[derive(Debug)]
struct AnyServerCert(Arc<tokio_rustls::rustls::crypto::CryptoProvider>);

impl tokio_rustls::rustls::client::danger::ServerCertVerifier for AnyServerCert {
    fn verify_server_cert(
        &self,
        _end_entity: &tokio_rustls::rustls::pki_types::CertificateDer<'_>,
        _intermediates: &[tokio_rustls::rustls::pki_types::CertificateDer<'_>],
        _server_name: &tokio_rustls::rustls::pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        _now: tokio_rustls::rustls::pki_types::UnixTime,
    ) -> Result<tokio_rustls::rustls::client::danger::ServerCertVerified, tokio_rustls::rustls::Error>
    {
        Ok(tokio_rustls::rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &tokio_rustls::rustls::pki_types::CertificateDer<'_>,
        dss: &tokio_rustls::rustls::DigitallySignedStruct,
    ) -> Result<
        tokio_rustls::rustls::client::danger::HandshakeSignatureValid,
        tokio_rustls::rustls::Error,
    > {
        tokio_rustls::rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &tokio_rustls::rustls::pki_types::CertificateDer<'_>,
        dss: &tokio_rustls::rustls::DigitallySignedStruct,
    ) -> Result<
        tokio_rustls::rustls::client::danger::HandshakeSignatureValid,
        tokio_rustls::rustls::Error,
    > {
        tokio_rustls::rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<tokio_rustls::rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
