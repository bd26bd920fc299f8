//! Public-key infrastructure: keys, certificates, the CA, path validation, revocation, PKCS #12.

pub mod cert;
pub mod keys;
pub mod pkcs12;

pub use cert::{Cert, CertError};
pub use keys::{HashAlgorithm, KeyAlgorithm, KeyError, PrivateKey, SignatureAlgorithm};
pub use pkcs12::{Pkcs12Contents, Pkcs12Error};
