//! Client certificates on a listener (`require_client_certificate`): MTAs authenticate with a
//! certificate our CA issued, and one our CA has revoked is refused from the next handshake on.
//!
//! rustls' WebPKI verifier takes its CRLs once, when it is built. This verifier builds it again
//! whenever the directory's trust generation moved (`ca revoke`, `ca crl`, `user revoke` and
//! trust changes bump it), so a revocation needs no restart of `serve`. The generation is one
//! read per handshake; the rebuild happens once per change.

use std::sync::{Arc, RwLock};

use tokio_rustls::rustls;
use tokio_rustls::rustls::DistinguishedName;
use tokio_rustls::rustls::client::danger::HandshakeSignatureValid;
use tokio_rustls::rustls::pki_types::{CertificateDer, CertificateRevocationListDer, UnixTime};
use tokio_rustls::rustls::server::WebPkiClientVerifier;
use tokio_rustls::rustls::server::danger::{ClientCertVerified, ClientCertVerifier};

use crate::directory::{Directory, DirectoryError};
use crate::gateway::Gateway;

/// Why the verifier could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientAuthError {
    /// The directory could not be read (CA certificate, CRLs, trust generation).
    #[error(transparent)]
    Directory(#[from] DirectoryError),
    /// rustls refused the CA certificate or a CRL.
    #[error("client certificate verifier: {0}")]
    Verifier(String),
}

/// A client-certificate verifier over our CA that follows the directory's CRLs.
pub struct ReloadingClientVerifier {
    gateway: Arc<Gateway>,
    provider: Arc<rustls::crypto::CryptoProvider>,
    roots: Arc<rustls::RootCertStore>,
    hints: Vec<DistinguishedName>,
    current: RwLock<(u64, Arc<dyn ClientCertVerifier>)>,
}

impl std::fmt::Debug for ReloadingClientVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let generation = self.current.read().map(|c| c.0).unwrap_or_default();
        write!(f, "ReloadingClientVerifier(trust generation {generation})")
    }
}

impl ReloadingClientVerifier {
    /// A verifier trusting our CA, with the CRLs the directory holds now.
    pub fn new(
        gateway: Arc<Gateway>,
        provider: Arc<rustls::crypto::CryptoProvider>,
    ) -> Result<Self, ClientAuthError> {
        let directory = gateway.directory();
        let ca = directory.ca_cert()?;
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(CertificateDer::from(ca.der().to_vec()))
            .map_err(|e| ClientAuthError::Verifier(format!("our CA certificate as root: {e}")))?;
        let roots = Arc::new(roots);
        let generation = directory.trust_generation()?;
        let first = build(directory, &roots, &provider)?;
        let hints = first.root_hint_subjects().to_vec();
        Ok(Self {
            gateway,
            provider,
            roots,
            hints,
            current: RwLock::new((generation, first)),
        })
    }

    /// The verifier for the directory as it is now: rebuilt when the trust generation moved.
    /// A directory that cannot be read keeps the last verifier (and says so in the log): the
    /// listener stays up, with the revocations it knew.
    fn verifier(&self) -> Arc<dyn ClientCertVerifier> {
        let directory = self.gateway.directory();
        let last = {
            let c = self.current.read().unwrap_or_else(|e| e.into_inner());
            (c.0, c.1.clone())
        };
        let generation = match directory.trust_generation() {
            Ok(g) => g,
            Err(e) => {
                tracing::error!(error = %e, "client certificates: cannot read the trust generation; using the CRLs loaded before");
                return last.1;
            }
        };
        if generation == last.0 {
            return last.1;
        }
        match build(directory, &self.roots, &self.provider) {
            Ok(v) => {
                *self.current.write().unwrap_or_else(|e| e.into_inner()) = (generation, v.clone());
                tracing::info!(
                    generation,
                    "client certificates: CRLs reloaded from the directory"
                );
                v
            }
            Err(e) => {
                tracing::error!(error = %e, "client certificates: cannot reload the CRLs; using those loaded before");
                last.1
            }
        }
    }
}

fn build(
    directory: &Directory,
    roots: &Arc<rustls::RootCertStore>,
    provider: &Arc<rustls::crypto::CryptoProvider>,
) -> Result<Arc<dyn ClientCertVerifier>, ClientAuthError> {
    let crls = directory
        .trust_context()?
        .crls
        .iter()
        .map(|c| CertificateRevocationListDer::from(c.der().to_vec()))
        .collect::<Vec<_>>();
    WebPkiClientVerifier::builder_with_provider(roots.clone(), provider.clone())
        .with_crls(crls)
        .build()
        .map_err(|e| ClientAuthError::Verifier(e.to_string()))
}

impl ClientCertVerifier for ReloadingClientVerifier {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        true
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &self.hints
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        self.verifier()
            .verify_client_cert(end_entity, intermediates, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}
