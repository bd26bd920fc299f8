//! The TOML configuration, validated once at start.
//!
//! Every key is listed here with its default; unknown keys are errors (a typo must not silently
//! turn encryption off). Errors name the file, the key, the value and what was expected.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use ipnet::IpNet;
use serde::Deserialize;

use crate::pki::KeyAlgorithm;
use crate::smime::enveloped::ContentCipher;

/// Where the configuration lives unless `--config` or `SMIMEGW_CONFIG` says otherwise.
pub const DEFAULT_CONFIG_PATH: &str = "/etc/smimegw/smimegw.toml";

/// Why the configuration cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error(
        "cannot read configuration file {path}: {source} (pass --config PATH or set SMIMEGW_CONFIG)"
    )]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// TOML syntax error, wrong type, or unknown key (toml's message names the key and line).
    #[error("configuration file {path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's message, which names the key, line and column.
        message: String,
    },
    /// A value parsed but makes no sense.
    #[error("configuration file {path}: key `{key}` = {value}: {expected}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// The dotted key.
        key: String,
        /// The offending value as written.
        value: String,
        /// What would be accepted.
        expected: String,
    },
}

/// When to encrypt outgoing mail.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EncryptMode {
    /// Never encrypt.
    Never,
    /// Encrypt when every recipient's certificate is known; otherwise send signed only.
    Opportunistic,
    /// Encrypt always; refuse the message (or recipient) when a certificate is missing.
    Required,
}

/// STARTTLS towards the next hop.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum StartTls {
    /// Plain SMTP (typical for a loopback re-injection port).
    Off,
    /// Use STARTTLS when the next hop offers it.
    Opportunistic,
    /// Refuse to relay unless STARTTLS succeeds.
    Required,
}

// Checked at compile time: `new_assert` in a const panics during compilation, not at run time.
const LOOPBACK_V4: IpNet = IpNet::new_assert(
    std::net::IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 0)),
    8,
);
const LOOPBACK_V6: IpNet =
    IpNet::new_assert(std::net::IpAddr::V6(std::net::Ipv6Addr::LOCALHOST), 128);

/// `[listen]` and `[submission]`: an SMTP side the MTA talks to. The two tables take the same
/// keys; what differs is the role (see [`crate::policy::Listener`]): `[listen]` takes mail from
/// the world and never signs, `[submission]` takes mail the users submitted and signs it.
#[derive(Clone, Debug, Deserialize, serde::Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ListenConfig {
    /// Address and port to listen on.
    pub address: SocketAddr,
    /// Networks allowed to connect (CIDR). Everything else is refused at connect.
    pub allowed_clients: Vec<IpNet>,
    /// Largest message accepted, in bytes (advertised with SIZE).
    pub max_message_size: u64,
    /// PEM certificate chain for STARTTLS.
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for STARTTLS.
    pub tls_key: Option<PathBuf>,
    /// Accept mail only over TLS from clients presenting a certificate issued by our CA
    /// (certificate authentication instead of passwords). Needs `tls_cert` and `tls_key`.
    pub require_client_certificate: bool,
    /// Most recipients in one transaction (more get 452 4.5.3, RFC 5321 section 4.5.3.1.8).
    pub max_recipients: usize,
    /// Most concurrent sessions (more get 421 at connect).
    pub max_sessions: usize,
    /// Seconds to wait for a command (RFC 5321 section 4.5.3.2 suggests 300).
    pub command_timeout_secs: u64,
    /// Seconds to wait for each chunk of DATA (RFC 5321 suggests 180 per chunk, 600 at the end).
    pub data_timeout_secs: u64,
    /// Longest command line in bytes, CRLF included (RFC 5321 section 4.5.3.1.4 says at least
    /// 512); a longer one gets 500 5.5.2 and counts as an error of the session.
    pub max_command_line: usize,
}

impl Default for ListenConfig {
    fn default() -> Self {
        Self {
            address: SocketAddr::from(([127, 0, 0, 1], 10025)),
            allowed_clients: vec![LOOPBACK_V4, LOOPBACK_V6],
            max_message_size: 50 * 1024 * 1024,
            tls_cert: None,
            tls_key: None,
            require_client_certificate: false,
            max_recipients: 1000,
            max_sessions: 1000,
            command_timeout_secs: 300,
            data_timeout_secs: 600,
            max_command_line: crate::limits::MAX_COMMAND_LINE,
        }
    }
}

/// `[limits]`: what one message may cost in memory and CPU. Inbound mail over a limit is
/// delivered unchanged with a result header naming it; outbound mail that must be signed or
/// encrypted is refused with 554 5.6.0; a message over its time budget gets 451 4.3.0.
#[derive(Clone, Debug, Deserialize, serde::Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// Deepest MIME nesting (multipart inside multipart...).
    pub max_mime_depth: usize,
    /// Most header fields in one entity (the message header, or one part's).
    pub max_headers: usize,
    /// Most MIME entities in one message, the message itself included.
    pub max_parts: usize,
    /// Largest header field in bytes, folded lines included.
    pub max_header_size: usize,
    /// Most S/MIME layers unwrapped on the way in.
    pub max_cms_layers: usize,
    /// Seconds one message may spend in parsing and cryptography.
    pub max_processing_secs: u64,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        let l = crate::limits::Limits::default();
        Self {
            max_mime_depth: l.mime_depth,
            max_headers: l.headers,
            max_parts: l.parts,
            max_header_size: l.header_size,
            max_cms_layers: l.cms_layers,
            max_processing_secs: l.processing_secs,
        }
    }
}

impl LimitsConfig {
    /// The bounds for one message, without a deadline yet ([`crate::limits::Limits::starting`]).
    pub fn limits(&self) -> crate::limits::Limits {
        crate::limits::Limits {
            mime_depth: self.max_mime_depth,
            headers: self.max_headers,
            parts: self.max_parts,
            header_size: self.max_header_size,
            cms_layers: self.max_cms_layers,
            processing_secs: self.max_processing_secs,
            deadline: None,
        }
    }
}

pub use crate::pki::online::WhenUnknown;

/// `[revocation]`: where revocation answers come from besides the CRLs an administrator
/// imported, how long a message may wait for one, and what an unknown status means.
#[derive(Clone, Debug, Deserialize, serde::Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct RevocationConfig {
    /// Fetch CRLs from the certificates' cRLDistributionPoints (http URLs).
    pub fetch: bool,
    /// Ask OCSP responders named in authorityInfoAccess (RFC 6960).
    pub ocsp: bool,
    /// Seconds one message may wait for a fetch (a fetch still running then goes on in the
    /// background and serves later messages); also the HTTP timeout of one fetch.
    pub timeout_secs: u64,
    /// The verdict of a valid signature whose revocation status is unknown.
    pub when_unknown: WhenUnknown,
}

impl Default for RevocationConfig {
    fn default() -> Self {
        Self {
            fetch: true,
            ocsp: true,
            timeout_secs: 3,
            when_unknown: WhenUnknown::Pass,
        }
    }
}

/// `[directory]`: the PostgreSQL database several gateways share (see README, "Running several
/// gateways"). Every node still keeps `data_dir` for its local state, and every node must use
/// the same key-encryption key, or the sealed keys are unreadable.
#[derive(Clone, Debug, Deserialize, serde::Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct DirectoryConfig {
    /// `postgres://user@host:port/dbname`; the password comes from `password_file`, never from
    /// the URL (which is logged).
    pub url: String,
    /// A file holding the database password (one line), readable only by smimegw.
    pub password_file: Option<PathBuf>,
    /// TLS to the database server.
    #[serde(default)]
    pub tls: DatabaseTls,
    /// PEM file of the CA that issued the server's certificate, for `tls = "verify-full"` with a
    /// private CA (default: the system's roots).
    pub ca_file: Option<PathBuf>,
    /// Connections this node keeps open (each message holds one for a few milliseconds).
    #[serde(default = "DirectoryConfig::default_pool_size")]
    pub pool_size: usize,
    /// Seconds one connection attempt, one wait for a pooled connection or one statement may
    /// take before the operation fails (a message then gets 451 4.3.0 and the MTA retries).
    #[serde(default = "DirectoryConfig::default_timeout")]
    pub timeout_secs: u64,
}

impl DirectoryConfig {
    fn default_pool_size() -> usize {
        16
    }
    fn default_timeout() -> u64 {
        5
    }
}

/// How the connection to the database is protected, named after libpq's `sslmode`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DatabaseTls {
    /// Plain TCP: only for loopback or a Unix socket.
    Off,
    /// TLS, but any server certificate is accepted (encrypts, does not authenticate).
    Require,
    /// TLS with the server certificate verified against `ca_file` (or the system roots) and
    /// its name against the host of `url`.
    #[default]
    VerifyFull,
}

/// `[relay]`: where processed mail goes.
#[derive(Clone, Debug, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RelayConfig {
    /// Next hop, `host:port`.
    pub next_hop: String,
    /// STARTTLS towards the next hop.
    pub starttls: StartTls,
    /// Seconds the next hop may stay silent (connecting, answering a command, accepting bytes)
    /// before the relay gives up and the MTA gets a 4xx.
    pub timeout_secs: u64,
    /// Connections to the next hop kept open between messages for reuse (0: a new connection
    /// per message). Each occupies one of the next hop's smtpd processes while it waits.
    pub idle_connections: usize,
    /// Seconds an unused kept connection stays open before it is closed with QUIT.
    pub idle_secs: u64,
}

impl Default for RelayConfig {
    fn default() -> Self {
        Self {
            next_hop: "127.0.0.1:10026".into(),
            starttls: StartTls::Off,
            timeout_secs: 60,
            idle_connections: 8,
            idle_secs: 5,
        }
    }
}

impl RelayConfig {
    /// `timeout_secs` as a duration.
    pub fn timeout(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.timeout_secs)
    }

    /// `idle_secs` as a duration.
    pub fn idle(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.idle_secs)
    }
}

/// `[metrics]`: the HTTP listener for `/metrics` (Prometheus) and `/healthz`.
#[derive(Clone, Debug, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// Serve the listener at all.
    pub enabled: bool,
    /// Where to listen. Loopback by default: the gauges name users, so expose it further only
    /// behind a firewall or a proxy that authenticates the scraper.
    pub listen: SocketAddr,
    /// Host names (the request's `Host`, port aside) the listener answers to; empty means the
    /// loopback names, so a web page cannot read it through DNS rebinding.
    pub allowed_hosts: Vec<String>,
    /// A file holding a bearer token every request must carry (`Authorization: Bearer ...`).
    pub bearer_token_file: Option<PathBuf>,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            listen: SocketAddr::from(([127, 0, 0, 1], 9925)),
            allowed_hosts: Vec::new(),
            bearer_token_file: None,
        }
    }
}

/// `[ca]`: the built-in certificate authority.
#[derive(Clone, Debug, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct CaConfig {
    /// Create the CA on first start of `serve` when none exists.
    pub auto_init: bool,
    /// The CA's common name.
    pub name: String,
    /// The CA key type.
    pub key: KeyAlgorithm,
    /// CA certificate lifetime in days.
    pub days: u32,
    /// Default lifetime of user certificates in days (the CA/B Forum S/MIME baseline caps it at 825).
    pub user_days: u32,
    /// Days between CRL updates (nextUpdate).
    pub crl_days: u32,
    /// `serve` renews the certificates it holds keys for this many days before they expire;
    /// 0 turns automatic renewal off.
    pub renew_before_days: u32,
    /// Automatic renewal generates new keys (old encryption keys keep decrypting).
    pub renew_rekey: bool,
}

impl Default for CaConfig {
    fn default() -> Self {
        Self {
            auto_init: false,
            name: "smimegw CA".into(),
            key: KeyAlgorithm::Rsa3072,
            days: 3650,
            user_days: 730,
            crl_days: 7,
            renew_before_days: 30,
            renew_rekey: false,
        }
    }
}

/// `[notify]`: notices by mail (see [`crate::notify`]): expiry warnings and renewals to users,
/// request decisions to requesters, a daily digest to the administrators.
#[derive(Clone, Debug, Deserialize, serde::Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct NotifyConfig {
    /// Send notices at all.
    pub enabled: bool,
    /// The sender address (envelope and `From:`), in an internal domain: the gateway signs the
    /// notices with a certificate of its own for it. Default `postmaster@<first internal domain>`
    /// (filled in by validation).
    pub from: Option<String>,
    /// Who gets the daily digest.
    pub admins: Vec<String>,
    /// Days before expiry on which users are warned, e.g. `[30, 7, 1]` (kept largest first).
    pub days: Vec<u32>,
}

impl Default for NotifyConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            from: None,
            admins: Vec::new(),
            days: vec![30, 7, 1],
        }
    }
}

impl NotifyConfig {
    /// The sender address (validated and defaulted at load).
    pub fn sender(&self) -> &str {
        self.from.as_deref().unwrap_or("")
    }

    /// The largest of `days`: how far ahead the digest looks.
    pub fn horizon_days(&self) -> u32 {
        self.days.iter().copied().max().unwrap_or(0)
    }
}

/// Signing and encryption policy at one level (global, domain or user). Unset fields inherit.
#[derive(Clone, Debug, Default, Deserialize, serde::Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct PolicyRule {
    /// Sign outgoing mail.
    pub sign: Option<bool>,
    /// When to encrypt outgoing mail.
    pub encrypt: Option<EncryptMode>,
    /// Detached (multipart/signed, readable without S/MIME support) or opaque signatures.
    pub signature: Option<SignatureForm>,
    /// Content cipher: `auto` picks AES-256-GCM only when every recipient advertised it in
    /// SMIMECapabilities, else AES-256-CBC (Outlook and some Thunderbird versions cannot read
    /// AuthEnvelopedData).
    pub cipher: Option<CipherChoice>,
}

/// Signature form.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize, serde::Serialize,
)]
#[serde(rename_all = "lowercase")]
pub enum SignatureForm {
    /// multipart/signed with application/pkcs7-signature (RFC 8551 section 3.5.3).
    Detached,
    /// application/pkcs7-mime; smime-type=signed-data.
    Opaque,
}

/// The content cipher of outgoing mail: one choice, in the library's own cipher type.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize, serde::Serialize,
)]
#[serde(try_from = "String", into = "String")]
pub enum CipherChoice {
    /// GCM when every recipient advertised it, else AES-256-CBC.
    Auto,
    /// Always this cipher.
    Fixed(ContentCipher),
}

impl TryFrom<String> for CipherChoice {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        if s == "auto" {
            return Ok(Self::Auto);
        }
        ContentCipher::parse_written(&s)
            .map(Self::Fixed)
            .map_err(|e| format!("{e}, or auto"))
    }
}

impl From<CipherChoice> for String {
    fn from(c: CipherChoice) -> String {
        match c {
            CipherChoice::Auto => "auto".into(),
            CipherChoice::Fixed(c) => c.to_string(),
        }
    }
}

/// What to do with mail from an internal sender who is not enrolled.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum UnknownSender {
    /// Relay it without a signature (encryption still applies).
    Relay,
    /// Refuse it with a 5xx that says the sender must be enrolled.
    Reject,
}

/// What to do with submitted mail whose `From:` is not exactly one mailbox equal to the
/// envelope sender: the gateway signs only as the author the reader sees, and only when the
/// submitting MTA (which authenticated the envelope sender) vouches for that same address.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FromMismatch {
    /// Refuse the message with 550 5.7.1 naming both addresses (the default).
    Refuse,
    /// Relay it unsigned (encryption still applies), and log why.
    Relay,
}

/// When a recipient whose required encryption certificate is unknown is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RefuseAt {
    /// At RCPT TO, for that recipient only (the others still get the message).
    Rcpt,
    /// At the end of DATA, for the whole message.
    Data,
}

/// What inbound mail decrypted from a cipher without integrity protection (AES-CBC in
/// EnvelopedData) becomes when no signature inside it passes: an attacker who holds such a
/// ciphertext can change the plaintext undetected (the EFAIL "CBC gadgets", CVE-2017-17689).
/// AES-GCM (AuthEnvelopedData, RFC 5083) and a passing signature inside are integrity
/// protection; an outer signature over the ciphertext is not (anyone can sign a ciphertext).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum UnauthenticatedCbc {
    /// Delivered decrypted; the verdict says the content was not integrity-protected.
    Deliver,
    /// As `deliver`, and the Subject starts with a tag the reader sees in any client.
    Annotate,
    /// Delivered as received, still encrypted, with the verdict saying why (the default).
    KeepEncrypted,
}

/// `[policy]` with its per-domain and per-user overrides.
#[derive(Clone, Debug, Default, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyConfig {
    /// Sign outgoing mail (default true).
    pub sign: Option<bool>,
    /// When to encrypt (default opportunistic).
    pub encrypt: Option<EncryptMode>,
    /// Signature form (default detached).
    pub signature: Option<SignatureForm>,
    /// Content cipher (default auto).
    pub cipher: Option<CipherChoice>,
    /// Internal sender not enrolled: relay unsigned or reject (default relay).
    pub unknown_sender: Option<UnknownSender>,
    /// Required encryption without a certificate: refuse at RCPT or at DATA (default data).
    pub refuse_at: Option<RefuseAt>,
    /// Submitted mail whose From is not the envelope sender: refuse or relay unsigned (default
    /// refuse).
    pub from_mismatch: Option<FromMismatch>,
    /// Inbound content decrypted from AES-CBC without a passing signature inside: deliver,
    /// annotate or keep encrypted (default keep_encrypted).
    pub unauthenticated_cbc: Option<UnauthenticatedCbc>,
    /// Let RSA and ECDSA signatures over SHA-1 pass (default false: they read `neutral`, since
    /// RFC 8551 section 2.1 deprecates SHA-1 for signatures). For legacy partners only.
    pub insecure_sha1_signatures: Option<bool>,
    /// Overrides per recipient domain.
    #[serde(default)]
    pub domains: BTreeMap<String, PolicyRule>,
    /// Overrides per user address.
    #[serde(default)]
    pub users: BTreeMap<String, PolicyRule>,
}

impl PolicyConfig {
    /// `unauthenticated_cbc`, defaulted: keep such mail encrypted, so the gateway never hands
    /// a reader plaintext that an attacker may have shaped (the README's "Security model" says
    /// why this is the default).
    pub fn unauthenticated_cbc(&self) -> UnauthenticatedCbc {
        self.unauthenticated_cbc
            .unwrap_or(UnauthenticatedCbc::KeepEncrypted)
    }

    /// `insecure_sha1_signatures`, defaulted to false.
    pub fn insecure_sha1_signatures(&self) -> bool {
        self.insecure_sha1_signatures.unwrap_or(false)
    }
}

/// The whole configuration file.
#[derive(Clone, Debug, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Directory holding the store, the key-encryption key (by default) and nothing else.
    pub data_dir: Option<PathBuf>,
    /// Key-encryption key file (default: beside the configuration file, `<name>.kek`; see
    /// [`crate::store::Kek::resolve_path`]).
    pub key_encryption_key_file: Option<PathBuf>,
    /// Domains whose users this gateway serves.
    #[serde(default)]
    pub internal_domains: Vec<String>,
    /// authserv-id written into Authentication-Results (default: the host name).
    pub authserv_id: Option<String>,
    /// The inbound SMTP listener (mail from the world: decrypt, verify, annotate; never sign).
    #[serde(default)]
    pub listen: ListenConfig,
    /// The outbound SMTP listener (mail users submitted: sign and encrypt by policy; never
    /// decrypt). Without it the gateway signs nothing.
    pub submission: Option<ListenConfig>,
    /// Next hop.
    #[serde(default)]
    pub relay: RelayConfig,
    /// Built-in CA.
    #[serde(default)]
    pub ca: CaConfig,
    /// Signing and encryption policy.
    #[serde(default)]
    pub policy: PolicyConfig,
    /// Metrics and health listener.
    #[serde(default)]
    pub metrics: MetricsConfig,
    /// Per-message bounds on parsing and processing.
    #[serde(default)]
    pub limits: LimitsConfig,
    /// Revocation checking: fetching, timeouts, the policy for "unknown".
    #[serde(default)]
    pub revocation: RevocationConfig,
    /// Notices by mail.
    #[serde(default)]
    pub notify: NotifyConfig,
    /// A shared PostgreSQL directory for a fleet of gateways; absent, the directory is the
    /// embedded redb file in `data_dir`.
    pub directory: Option<DirectoryConfig>,
    /// The file this was read from (not a key).
    #[serde(skip)]
    pub source: PathBuf,
}

impl Config {
    /// Reads and validates a configuration file; `data_dir_override` is `--data-dir`.
    pub fn load(path: &Path, data_dir_override: Option<&Path>) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text, path, data_dir_override)
    }

    /// Parses and validates configuration text; `path` is only used in messages.
    pub fn parse(
        text: &str,
        path: &Path,
        data_dir_override: Option<&Path>,
    ) -> Result<Self, ConfigError> {
        let mut cfg: Config = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_path_buf(),
            message: e.to_string().trim_end().replace('\n', " "),
        })?;
        cfg.source = path.to_path_buf();
        if let Some(d) = data_dir_override {
            cfg.data_dir = Some(d.to_path_buf());
        }
        cfg.validate()?;
        Ok(cfg)
    }

    /// The data directory (validated to be set).
    pub fn data_dir(&self) -> &Path {
        self.data_dir.as_deref().unwrap_or(Path::new("."))
    }

    /// The key-encryption key file in force (see [`crate::store::Kek::resolve_path`]).
    pub fn kek_path(&self) -> PathBuf {
        crate::store::Kek::resolve_path(
            self.key_encryption_key_file.as_deref(),
            self.data_dir(),
            &self.source,
        )
    }

    /// Whether `address` belongs to one of the internal domains (case-insensitive).
    pub fn is_internal(&self, address: &str) -> bool {
        let Some((_, domain)) = address.rsplit_once('@') else {
            return false;
        };
        let domain = domain.trim_end_matches('.').to_ascii_lowercase();
        self.internal_domains.contains(&domain)
    }
}

mod validate;

#[cfg(test)]
mod tests;
