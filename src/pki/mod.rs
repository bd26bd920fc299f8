//! Public-key infrastructure: keys, certificates, the CA, path validation, revocation, PKCS #12.

pub mod cert;
pub mod keys;

pub use cert::{Cert, CertError};
pub use keys::{HashAlgorithm, KeyAlgorithm, KeyError, PrivateKey, SignatureAlgorithm};
