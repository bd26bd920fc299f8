//! S/MIME (RFC 8551) on top of CMS (RFC 5652): what the gateway signs, verifies, encrypts and
//! decrypts. [`signed`] and [`enveloped`] work on CMS; [`message`] on whole RFC 5322 messages.

mod asn1;
pub mod enveloped;
pub mod message;
pub mod signed;
