//! S/MIME (RFC 8551) on top of CMS (RFC 5652): what the gateway signs, verifies, encrypts and decrypts.

pub mod signed;
