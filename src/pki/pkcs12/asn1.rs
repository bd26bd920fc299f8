//! The PKCS #12 ASN.1 structures (RFC 7292), plus the few PKCS #5 (RFC 8018) and CMS (RFC 5652)
//! structures a password-protected PFX is built from.
//!
//! Everything borrows from the buffer it was decoded from, so a decrypted `SafeContents` stays in
//! one zeroizing buffer instead of being copied into owned values that nobody wipes. Each buffer
//! is DER by the time it gets here: BER input goes through [`super::ber::to_der`] first.

use der::asn1::{AnyRef, ObjectIdentifier, OctetStringRef, SetOfVec};
use der::{Sequence, ValueOrd};
use spki::AlgorithmIdentifierRef;

/// `PFX`, RFC 7292 section 4.
#[derive(Sequence)]
pub(super) struct Pfx<'a> {
    /// Always v3 (3).
    pub(super) version: u8,
    /// `data` in password integrity mode; `signedData` in public-key integrity mode (unsupported).
    pub(super) auth_safe: ContentInfo<'a>,
    #[asn1(optional = "true")]
    pub(super) mac_data: Option<MacData<'a>>,
}

/// `MacData`, RFC 7292 section 4.
#[derive(Sequence)]
pub(super) struct MacData<'a> {
    pub(super) mac: DigestInfo<'a>,
    pub(super) mac_salt: &'a OctetStringRef,
    /// `iterations INTEGER DEFAULT 1`. Read as u64 so that absurd values are reported as such
    /// rather than as a decoding error.
    #[asn1(default = "one")]
    pub(super) iterations: u64,
}

fn one() -> u64 {
    1
}

/// `DigestInfo`, RFC 8017 section 9.2 (as used by `MacData`).
#[derive(Sequence)]
pub(super) struct DigestInfo<'a> {
    pub(super) algorithm: AlgorithmIdentifierRef<'a>,
    pub(super) digest: &'a OctetStringRef,
}

/// `ContentInfo`, RFC 5652 section 3. An `AuthenticatedSafe` (RFC 7292 section 4.1) is a
/// `SEQUENCE OF ContentInfo`: `data` for plain `SafeContents`, `encryptedData` for
/// password-encrypted ones.
#[derive(Sequence)]
pub(super) struct ContentInfo<'a> {
    pub(super) content_type: ObjectIdentifier,
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT", optional = "true")]
    pub(super) content: Option<AnyRef<'a>>,
}

/// `EncryptedData`, RFC 5652 section 8 (version 0, no unprotected attributes in PKCS #12).
#[derive(Sequence)]
pub(super) struct EncryptedData<'a> {
    pub(super) version: u8,
    pub(super) encrypted_content_info: EncryptedContentInfo<'a>,
}

/// `EncryptedContentInfo`, RFC 5652 section 6.1.
#[derive(Sequence)]
pub(super) struct EncryptedContentInfo<'a> {
    pub(super) content_type: ObjectIdentifier,
    pub(super) content_encryption_algorithm: AlgorithmIdentifierRef<'a>,
    /// `encryptedContent [0] IMPLICIT OCTET STRING OPTIONAL`, taken as whatever follows because
    /// BER writers send it constructed (see [`super::ber::join_segments`]).
    #[asn1(optional = "true")]
    pub(super) encrypted_content: Option<AnyRef<'a>>,
}

/// `SafeBag`, RFC 7292 section 4.2. A `SafeContents` is a `SEQUENCE OF SafeBag`.
#[derive(Clone, Sequence)]
pub(super) struct SafeBag<'a> {
    pub(super) bag_id: ObjectIdentifier,
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT")]
    pub(super) bag_value: AnyRef<'a>,
    #[asn1(optional = "true")]
    pub(super) bag_attributes: Option<SetOfVec<Attribute<'a>>>,
}

/// `PKCS12Attribute`, RFC 7292 section 4.2 (friendlyName and localKeyID, RFC 2985 section 5.5).
#[derive(Clone, Sequence, ValueOrd)]
pub(super) struct Attribute<'a> {
    pub(super) attr_id: ObjectIdentifier,
    pub(super) attr_values: SetOfVec<AnyRef<'a>>,
}

/// `CertBag`, RFC 7292 section 4.2.3. For `x509Certificate` the value is an OCTET STRING holding
/// the certificate's DER.
#[derive(Sequence)]
pub(super) struct CertBag<'a> {
    pub(super) cert_id: ObjectIdentifier,
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT")]
    pub(super) cert_value: AnyRef<'a>,
}

/// `EncryptedPrivateKeyInfo`, RFC 5958 section 3 (the value of a `pkcs8ShroudedKeyBag`).
#[derive(Sequence)]
pub(super) struct EncryptedPrivateKeyInfo<'a> {
    pub(super) encryption_algorithm: AlgorithmIdentifierRef<'a>,
    pub(super) encrypted_data: &'a OctetStringRef,
}

/// `pkcs-12PbeParams`, RFC 7292 appendix C.
#[derive(Sequence)]
pub(super) struct Pkcs12PbeParams<'a> {
    pub(super) salt: &'a OctetStringRef,
    pub(super) iterations: u64,
}

/// `PBES2-params`, RFC 8018 appendix A.4.
#[derive(Sequence)]
pub(super) struct Pbes2Params<'a> {
    pub(super) key_derivation_func: AlgorithmIdentifierRef<'a>,
    pub(super) encryption_scheme: AlgorithmIdentifierRef<'a>,
}

/// `PBKDF2-params`, RFC 8018 appendix A.2. Only the `specified` salt choice exists in practice;
/// `otherSource` fails to decode and is reported as malformed.
#[derive(Sequence)]
pub(super) struct Pbkdf2Params<'a> {
    pub(super) salt: &'a OctetStringRef,
    pub(super) iteration_count: u64,
    #[asn1(optional = "true")]
    pub(super) key_length: Option<u16>,
    /// `DEFAULT algid-hmacWithSHA1` when absent.
    #[asn1(optional = "true")]
    pub(super) prf: Option<AlgorithmIdentifierRef<'a>>,
}
