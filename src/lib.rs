//! smimegw: an S/MIME gateway for MTAs, with its own CA and certificate directory.
//!
//! The modules follow the message path and the certificate model (see DESIGN.md):
//! [`config`] is read first; [`pki`] holds keys, certificate profiles, the CA, path validation,
//! revocation and PKCS #12; [`store`] is the directory's storage; [`directory`] is the certificate
//! lifecycle an administrator drives through the [`cli`].
#![forbid(unsafe_code)]
#![warn(missing_docs, unreachable_pub)]

pub mod oid;
pub mod config;
pub mod pki;
pub mod store;
