//! The records of the directory (the "Person document" and friends), as stored.
//!
//! Certificates are stored as DER (base64 in the JSON encoding); private keys never appear here,
//! only a key id that points at a sealed entry of the keys table.

use serde::{Deserialize, Serialize};

/// Base64 (standard alphabet) for byte fields, so records stay readable JSON.
pub mod b64 {
    use base64::Engine as _;
    use serde::{Deserialize, Deserializer, Serializer};

    /// Encodes bytes.
    pub fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(v))
    }
    /// Decodes bytes.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s = String::deserialize(d)?;
        base64::engine::general_purpose::STANDARD
            .decode(s)
            .map_err(serde::de::Error::custom)
    }
}

/// Base64 for optional byte fields.
pub mod b64_opt {
    use base64::Engine as _;
    use serde::{Deserialize, Deserializer, Serializer};

    /// Encodes optional bytes.
    pub fn serialize<S: Serializer>(v: &Option<Vec<u8>>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(b) => s.serialize_some(&base64::engine::general_purpose::STANDARD.encode(b)),
            None => s.serialize_none(),
        }
    }
    /// Decodes optional bytes.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<u8>>, D::Error> {
        let s = Option::<String>::deserialize(d)?;
        s.map(|s| {
            base64::engine::general_purpose::STANDARD
                .decode(s)
                .map_err(serde::de::Error::custom)
        })
        .transpose()
    }
}

/// What a certificate is for, in the dual-certificate model.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CertRole {
    /// Signing only (digitalSignature, nonRepudiation): its key never leaves the gateway.
    Signing,
    /// Encryption only (keyEncipherment / keyAgreement): its key may be exported as PKCS #12.
    Encryption,
    /// One certificate for both (single-certificate users).
    Both,
}

impl CertRole {
    /// Whether this certificate can sign.
    pub fn signs(self) -> bool {
        matches!(self, Self::Signing | Self::Both)
    }
    /// Whether this certificate can receive encrypted mail.
    pub fn encrypts(self) -> bool {
        matches!(self, Self::Encryption | Self::Both)
    }
    /// Whether its key may leave the gateway without `--include-signing-key`: only a key that
    /// decrypts and never signs.
    pub fn exportable(self) -> bool {
        self == Self::Encryption
    }
}

impl std::fmt::Display for CertRole {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Signing => "signing",
            Self::Encryption => "encryption",
            Self::Both => "both",
        })
    }
}

impl std::str::FromStr for CertRole {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "signing" => Ok(Self::Signing),
            "encryption" => Ok(Self::Encryption),
            "both" => Ok(Self::Both),
            o => Err(format!(
                "unknown role '{o}': expected signing, encryption or both"
            )),
        }
    }
}

/// Where a user's certificate came from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum CertSource {
    /// Keys generated and certificate issued by the gateway (`user enroll`, `user renew`).
    Enrolled,
    /// Issued from a user's CSR (`request approve`): the gateway does not hold the key.
    Request {
        /// The request id.
        request_id: String,
    },
    /// Brought in as PKCS #12 (`user import`), typically from a third-party CA.
    Imported,
}

/// Lifecycle state of one certificate in a person record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "state")]
pub enum CertState {
    /// In use.
    Current,
    /// Replaced by renewal: no longer used to sign or to receive new mail, but its key still
    /// decrypts mail that was encrypted to it.
    Superseded {
        /// When (unix seconds).
        at: i64,
    },
    /// Revoked (listed on our CRL if we issued it).
    Revoked {
        /// When (unix seconds).
        at: i64,
        /// RFC 5280 reason name.
        reason: String,
    },
}

/// One certificate in a person record.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct UserCert {
    /// Signing, encryption or both.
    pub role: CertRole,
    /// The certificate (DER).
    #[serde(with = "b64")]
    pub cert_der: Vec<u8>,
    /// The sealed private key, when the gateway holds it.
    pub key_id: Option<String>,
    /// Where it came from.
    pub source: CertSource,
    /// Lifecycle state.
    pub state: CertState,
    /// Serial number (hex), for display and revocation.
    pub serial: String,
    /// End of validity (unix seconds), for expiry listings without parsing.
    pub not_after: i64,
    /// Intermediate certificates that came with an imported certificate (DER).
    #[serde(default)]
    pub chain: Vec<ChainCert>,
}

/// A chain certificate inside a record.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ChainCert(#[serde(with = "b64")] pub Vec<u8>);

/// Whether a person may use the gateway.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UserStatus {
    /// Normal.
    Active,
    /// All certificates revoked.
    Revoked,
}

/// A person record.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct UserRecord {
    /// Lowercase e-mail address (the key).
    pub email: String,
    /// Display name (the certificate's common name).
    pub display_name: String,
    /// Status.
    pub status: UserStatus,
    /// Created (unix seconds).
    pub created: i64,
    /// Every certificate, current and past (past encryption keys keep decrypting old mail).
    pub certs: Vec<UserCert>,
}

impl UserRecord {
    /// The current certificate that signs, if any (a single certificate signs and encrypts).
    pub fn current_signing(&self) -> Option<&UserCert> {
        self.newest_current(|c| c.role.signs())
    }

    /// The current certificate that encrypts, if any.
    pub fn current_encryption(&self) -> Option<&UserCert> {
        self.newest_current(|c| c.role.encrypts())
    }

    fn newest_current(&self, serves: impl Fn(&UserCert) -> bool) -> Option<&UserCert> {
        self.certs
            .iter()
            .rev()
            .find(|c| c.state == CertState::Current && serves(c))
    }
}

/// A private key sealed under the key-encryption key.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SealedKey {
    /// AES-256-GCM nonce.
    #[serde(with = "b64")]
    pub nonce: Vec<u8>,
    /// Ciphertext and tag of the PKCS #8 key; the key id (and, from format 2 on, the
    /// `exportable` flag) is the associated data.
    #[serde(with = "b64")]
    pub ciphertext: Vec<u8>,
    /// Whether `user export` may release it (encryption keys: yes; signing keys: only with an
    /// explicit flag, which is audited).
    pub exportable: bool,
    /// What the associated data covers: 1, the key id only (keys sealed before the flag was
    /// bound; absent in their records); 2, the key id and `exportable`, so that flipping the
    /// flag in the database makes the key fail to open instead of making it exportable.
    #[serde(default = "aad_format_1")]
    pub aad_format: u8,
}

fn aad_format_1() -> u8 {
    1
}

/// State of a certificate request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "state")]
pub enum RequestState {
    /// Waiting for an administrator.
    Pending,
    /// Approved and issued.
    Approved {
        /// Serial of the issued certificate (hex).
        serial: String,
        /// When (unix seconds).
        at: i64,
    },
    /// Denied.
    Denied {
        /// The administrator's reason.
        reason: String,
        /// When (unix seconds).
        at: i64,
    },
}

/// A certificate request (the Domino "request / approve" flow).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RequestRecord {
    /// Request id.
    pub id: String,
    /// Requested address (from the CSR).
    pub email: String,
    /// Display name (from the CSR's common name, else the address).
    pub display_name: String,
    /// Requested role.
    pub role: CertRole,
    /// The CSR (DER).
    #[serde(with = "b64")]
    pub csr_der: Vec<u8>,
    /// Submitted (unix seconds).
    pub submitted: i64,
    /// Who submitted it.
    pub submitted_by: String,
    /// State.
    pub state: RequestState,
    /// The issued certificate, once approved.
    #[serde(with = "b64_opt", default)]
    pub cert_der: Option<Vec<u8>>,
}

/// How a foreign certificate authority is trusted.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum TrustKind {
    /// Added as a trust anchor as it is.
    Root,
    /// Our CA issued a cross-certificate for its key, optionally limited to some domains.
    CrossCertified {
        /// The cross-certificate our CA issued (DER).
        #[serde(with = "b64")]
        cross_cert_der: Vec<u8>,
        /// Domains it may vouch for (rfc822Name name constraints); empty = unrestricted.
        permitted_domains: Vec<String>,
    },
    /// Taken from a root program's bundle (`trust import-bundle`); a later import under the
    /// same source adds and removes its roots.
    Bundle {
        /// The `--source` name it was imported under.
        source: String,
        /// Whether it may vouch for internal-domain addresses too.
        internal_too: bool,
    },
}

/// A trusted root or cross-certified foreign CA.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TrustRecord {
    /// Id (first 16 hex digits of the foreign certificate's SHA-256 fingerprint).
    pub id: String,
    /// How it is trusted.
    pub kind: TrustKind,
    /// The foreign CA certificate (DER).
    #[serde(with = "b64")]
    pub cert_der: Vec<u8>,
    /// Subject, for listings.
    pub subject: String,
    /// Added (unix seconds).
    pub added: i64,
}

/// A certificate harvested from a valid signature, usable to encrypt to that correspondent.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct HarvestedCert {
    /// Address.
    pub email: String,
    /// The encryption certificate (DER).
    #[serde(with = "b64")]
    pub cert_der: Vec<u8>,
    /// Chain that came with it (DER).
    #[serde(default)]
    pub chain: Vec<ChainCert>,
    /// The SMIMECapabilities the signer advertised (DER), if any.
    #[serde(with = "b64_opt", default)]
    pub capabilities: Option<Vec<u8>>,
    /// When it was last seen (unix seconds).
    pub seen: i64,
    /// The signingTime of the message its capabilities came from, when it had one: a message
    /// signed earlier (a delayed or replayed one) does not replace them.
    #[serde(default)]
    pub signed_at: Option<i64>,
}

/// A CRL held in the directory.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CrlRecord {
    /// Issuer name, for listings.
    pub issuer: String,
    /// The CRL (DER).
    #[serde(with = "b64")]
    pub der: Vec<u8>,
    /// Imported from outside (true) or issued by our CA (false).
    pub imported: bool,
}

/// A CA certificate the directory knows without trusting it (table `ca_certs`).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct KnownCaRecord {
    /// The certificate (DER).
    #[serde(with = "b64")]
    pub der: Vec<u8>,
    /// When it was recorded (Unix seconds); the oldest go first when the table is full.
    pub learned: i64,
    /// Where it came from: `signer chain`, or `import-crl CRLFILE` (the chain that authenticated
    /// that CRL).
    pub source: String,
}

/// A certificate our CA issued: keeps serials unique and feeds the CRL.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct IssuedRecord {
    /// Serial (hex).
    pub serial: String,
    /// Subject address or name.
    pub subject: String,
    /// What it is ("signing", "encryption", "both", "cross-certificate", "server").
    pub purpose: String,
    /// Issued (unix seconds).
    pub issued: i64,
    /// End of validity (unix seconds).
    pub not_after: i64,
    /// Revocation, if revoked: (unix seconds, reason name).
    pub revoked: Option<(i64, String)>,
}

/// The CA: its certificate, its key's id, and the chain above it when subordinate.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CaRecord {
    /// CA certificate (DER).
    #[serde(with = "b64")]
    pub cert_der: Vec<u8>,
    /// Sealed key id.
    pub key_id: String,
    /// Certificates above ours when we run as a subordinate (DER), up to the third party's root.
    #[serde(default)]
    pub chain: Vec<ChainCert>,
    /// Next CRL number (RFC 5280 section 5.2.3: monotonically increasing).
    pub next_crl_number: u64,
}

/// One line of the append-only audit log.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct AuditEntry {
    /// Sequence number (assigned on append).
    #[serde(default)]
    pub seq: u64,
    /// When (unix seconds).
    pub at: i64,
    /// Who (OS user, or "smimegw serve").
    pub actor: String,
    /// What, as a stable verb: "ca.init", "user.enroll", "request.approve"...
    pub action: String,
    /// On what: an address, request id, serial, trust id.
    pub subject: String,
    /// Details for a human.
    pub detail: String,
    /// The link that chains this entry to the one before it (see `Directory::verify_audit`);
    /// empty in entries written before the log was chained.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub chain: String,
}

impl AuditEntry {
    /// What the chain link covers: the entry without its sequence number (the store assigns
    /// it) and without the link itself.
    pub fn chained_bytes(&self) -> Vec<u8> {
        let bare = AuditEntry {
            seq: 0,
            chain: String::new(),
            ..self.clone()
        };
        serde_json::to_vec(&bare).unwrap_or_default()
    }
}

/// The newest entry of the audit log, kept beside it in the same transaction: a removed last
/// entry shows as a head that no entry matches.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct AuditHead {
    /// Its sequence number.
    pub seq: u64,
    /// Its chain link.
    pub chain: String,
}
