//! smimegw: an S/MIME gateway for MTAs, with its own CA and certificate directory.
//!
//! The modules follow the message path and the certificate model (see DESIGN.md):
//! [`config`] is read first; [`smtp`] receives and relays; [`policy`] decides who gets what;
//! [`smime`] turns messages into CMS and back, over the byte-exact [`mime`] layer; [`pki`] holds
//! keys, certificate profiles, the CA, path validation, revocation and PKCS #12; [`store`] is the
//! directory's storage; [`directory`] is the certificate lifecycle an administrator drives through
//! the `smimegw` binary's CLI (which uses this library through its public interface only);
//! [`serve`] starts the gateway. [`address`] reads a message's From field and
//! [`results`] owns every header field the gateway writes or removes.
#![forbid(unsafe_code)]
#![warn(missing_docs, unreachable_pub)]
// No panics on data from the network or disk: errors propagate with context. Tests may unwrap
// (clippy.toml: allow-unwrap-in-tests, allow-expect-in-tests).
#![deny(clippy::unwrap_used, clippy::expect_used)]

pub mod address;
pub mod bench;
pub mod ber;
pub mod config;
pub mod directory;
pub mod doctor;
#[doc(hidden)]
pub mod fuzzing;
pub mod gateway;
pub mod hardening;
pub mod limits;
pub mod metrics;
pub mod mime;
pub mod notify;
pub mod oid;
pub mod pki;
pub mod policy;
pub mod results;
pub mod serve;
pub mod smime;
pub mod smtp;
pub mod store;
#[cfg(test)]
pub(crate) mod test_peers;
