//! Public-key infrastructure: keys, certificates, the CA, path validation, revocation, PKCS #12.

pub mod cert;
pub mod keys;
pub mod name_constraints;
pub mod path;
pub mod revocation;
#[cfg(test)]
pub(crate) mod testpki;

pub use cert::{Cert, CertError};
pub use keys::{HashAlgorithm, KeyAlgorithm, KeyError, PrivateKey, SignatureAlgorithm};
pub use path::{
    AnchorKind, ChainCache, PathError, Query, TrustAnchor, TrustContext, Usage, ValidatedPath,
    validate,
};
pub use revocation::{Crl, CrlError, RevocationReason, RevokedEntry};
