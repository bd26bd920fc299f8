//! Public-key infrastructure: keys, certificates, the CA, path validation, revocation, PKCS #12.

pub mod bundle;
pub mod ca;
pub mod cert;
pub mod csr;
pub mod fetch;
pub mod keys;
pub mod name_constraints;
pub mod ocsp;
pub mod online;
pub mod path;
pub mod pkcs12;
pub mod profile;
pub mod revocation;
#[cfg(test)]
pub(crate) mod testpki;

pub use cert::{Cert, CertError};
pub use keys::{HashAlgorithm, KeyAlgorithm, KeyError, PrivateKey, SignatureAlgorithm};
pub use path::{
    AnchorKind, ChainCache, PathError, Query, TrustAnchor, TrustContext, Usage, ValidatedPath,
    validate,
};
pub use pkcs12::{Pkcs12Contents, Pkcs12Error};
pub use revocation::{Crl, CrlError, RevocationReason, RevokedEntry};
