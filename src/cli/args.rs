//! Every command and flag, with its help text beside it. `--help` is generated from here.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use smimegw::pki::KeyAlgorithm;
use smimegw::smime::enveloped::ContentCipher;

/// smimegw — an S/MIME gateway for your MTA, with its own CA and certificate directory.
///
/// Outgoing mail is signed and encrypted, incoming mail decrypted and verified, with dual
/// (signing + encryption) certificates that smimegw issues, stores, renews and revokes.
/// Exit status: 0 success, 1 a verification said no, 2 usage or operational error.
#[derive(Debug, Parser)]
#[command(
    name = "smimegw",
    version,
    propagate_version = true,
    max_term_width = 100
)]
pub struct Cli {
    /// Configuration file.
    #[arg(long, global = true, env = "SMIMEGW_CONFIG", default_value = smimegw::config::DEFAULT_CONFIG_PATH)]
    pub config: PathBuf,

    /// Data directory (overrides `data_dir` in the configuration).
    #[arg(long, global = true, env = "SMIMEGW_DATA_DIR")]
    pub data_dir: Option<PathBuf>,

    /// More log output (-v info, -vv debug). Logs go to stderr.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Top-level commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the gateway (creates the data directory, key-encryption key and CA on first start
    /// when `ca.auto_init = true`).
    Serve,
    /// The certificate authority: create, import, show, publish the CRL.
    #[command(subcommand)]
    Ca(CaCommand),
    /// Person records: enrol, import, export, renew, revoke, list.
    #[command(subcommand)]
    User(UserCommand),
    /// Certificate requests from users who keep their own key: submit, approve, deny, pick up.
    #[command(subcommand)]
    Request(RequestCommand),
    /// Trusted roots, cross-certificates, CRLs, and checking a certificate against them.
    #[command(subcommand)]
    Trust(TrustCommand),
    /// Sign, encrypt, decrypt or verify one message offline (the engine the gateway uses).
    #[command(subcommand)]
    Smime(SmimeCommand),
    /// Dry run: apply exactly the treatment `serve` would apply to this envelope and message on
    /// the given listener, write the resulting message(s) on stdout (several copies as an mbox)
    /// and the decisions on stderr. Nothing is relayed.
    Process {
        /// The listener the message arrives on: `inbound` ([listen], mail from the world:
        /// decrypt, verify, annotate, never sign) or `submission` ([submission], mail users
        /// submitted: sign and encrypt by policy; applied here even when the table is absent).
        #[arg(long, value_enum, default_value_t = ListenerArg::Inbound)]
        listener: ListenerArg,
        /// Envelope sender (MAIL FROM).
        #[arg(long)]
        from: String,
        /// Envelope recipient (RCPT TO), repeatable.
        #[arg(long = "to", required = true)]
        to: Vec<String>,
        /// Input and output.
        #[command(flatten)]
        io: MessageIo,
    },
    /// Check the installation and say what to fix: the configuration, the key-encryption key's
    /// permissions and owner, the CA's expiry, users' certificates expiring soon, and whether
    /// the next hop answers and its STARTTLS works. Exit status: 0 all well, 1 problems found
    /// (warnings alone do not count), 2 usage error.
    Doctor {
        /// Report certificates that expire within this many days.
        #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u32).range(1..=3650))]
        expiring_days: u32,
    },
    /// The directory store itself: back it up, restore it, move it between backends, upgrade
    /// a PostgreSQL schema.
    #[command(subcommand)]
    Directory(DirectoryCommand),
    /// Show the append-only audit log of every lifecycle action.
    Audit {
        /// Print JSON (one array) instead of a table.
        #[arg(long)]
        json: bool,
        /// Check the log's chain instead of printing it: every entry is linked to the one before
        /// it under a key derived from the key-encryption key, so a changed, removed or
        /// inserted entry is found. Exit status 1 when something is wrong.
        #[arg(long)]
        verify: bool,
    },
    /// Measure the in-process S/MIME hot path (sign, verify, encrypt, decrypt, sign+encrypt,
    /// decrypt+verify, verify with the revocation step from a warm cache, and path validation
    /// with a cold and a warm chain cache) single-threaded with throwaway keys, and the aws-lc-rs
    /// ceilings on this CPU. Needs no configuration file or data directory. Progress goes to
    /// stderr.
    Bench {
        /// Message size (headers included): 1KiB, 10KiB, 100KiB, 1MiB, 10MiB, or bytes.
        #[arg(long, default_value = "10KiB", value_parser = parse_bench_size)]
        size: usize,
        /// Number of recipients to encrypt to.
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=64))]
        recipients: u16,
        /// Total time for the eight measurements (each gets an eighth); the ceilings add a
        /// quarter.
        #[arg(long, default_value_t = 10.0)]
        seconds: f64,
        /// Key type of the CA, the sender and the recipients: rsa2048, rsa3072, rsa4096, p256,
        /// p384.
        #[arg(long, default_value = "rsa2048")]
        key: KeyAlgorithm,
        /// Content cipher: aes128-cbc, aes256-cbc (every client reads it), aes128-gcm or
        /// aes256-gcm (AuthEnvelopedData, RFC 5083).
        #[arg(long, value_parser = ContentCipher::parse_written, default_value = "aes256-cbc")]
        cipher: ContentCipher,
        /// Print one JSON object per operation and ceiling, one per line, instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Print the shell completion script for SHELL (bash, zsh, fish, elvish, powershell),
    /// generated from the same definitions as --help. Needs no configuration.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Print the manual page of smimegw (roff), or with --out write one page per command
    /// (smimegw.1, smimegw-ca.1, smimegw-ca-init.1, ...) into a directory. Generated from the
    /// same definitions as --help. Needs no configuration.
    Man {
        /// Write every command's page into this directory instead of printing the main page.
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

fn parse_bench_size(s: &str) -> Result<usize, String> {
    smimegw::bench::parse_size(s).map_err(|e| e.to_string())
}

/// `smimegw directory ...`
#[derive(Debug, Subcommand)]
pub enum DirectoryCommand {
    /// Create or upgrade the PostgreSQL schema of `[directory]` (serve does it at start;
    /// every other command refuses an older schema). Safe to run on several nodes at once.
    Migrate,
    /// Write a consistent snapshot of the whole directory (records, sealed keys, the audit
    /// log) to a new file, mode 0600, while serve runs. Keys stay sealed under the
    /// key-encryption key: keep the KEK's own backup apart from this file.
    Export {
        /// The file to create (never overwritten).
        file: PathBuf,
        /// Print what was written as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Restore an export into the configured store, which must be empty: a data_dir without a
    /// directory yet, or a PostgreSQL database without smimegw tables (the schema is created).
    /// The local key-encryption key must be the one the export was sealed under. Adds one
    /// audit line of its own.
    Import {
        /// A file written by `smimegw directory export`.
        file: PathBuf,
        /// Print what was read as JSON.
        #[arg(long)]
        json: bool,
    },
}

/// `smimegw ca ...`
#[derive(Debug, Subcommand)]
pub enum CaCommand {
    /// Create a self-signed root CA (and the data directory and key-encryption key if needed).
    Init {
        /// The CA's common name, e.g. "Acme S/MIME Root".
        #[arg(long)]
        name: Option<String>,
        /// Key type: rsa2048, rsa3072, rsa4096, p256, p384 (default from the config, rsa3072).
        #[arg(long)]
        key: Option<KeyAlgorithm>,
        /// Lifetime in days (default from the config, 3650).
        #[arg(long)]
        days: Option<u32>,
    },
    /// Run as a subordinate of a third-party CA: install its certificate and key.
    Import {
        /// CA certificate (PEM or DER); further PEM certificates in the file are its chain.
        #[arg(long, requires = "key", conflicts_with = "p12")]
        cert: Option<PathBuf>,
        /// CA private key (PKCS #8 PEM "PRIVATE KEY", unencrypted).
        #[arg(long, requires = "cert")]
        key: Option<PathBuf>,
        /// CA certificate, key and chain as PKCS #12.
        #[arg(long)]
        p12: Option<PathBuf>,
        /// File holding the PKCS #12 password (otherwise you are prompted).
        #[arg(long)]
        password_file: Option<PathBuf>,
    },
    /// Show the CA certificate.
    Show {
        /// Print the certificate as PEM (with the chain above it, if any) instead of a summary.
        #[arg(long)]
        pem: bool,
    },
    /// Issue a TLS server certificate from our CA for the STARTTLS listener (point
    /// `[listen] tls_cert` / `tls_key` at the files). The key is written mode 0600 as PKCS #8
    /// PEM; neither file may exist yet. The serial is recorded and the action audited.
    IssueServer {
        /// The host name MTAs connect to (goes into subjectAltName dNSName and the CN).
        hostname: String,
        /// Issue a TLS *client* certificate (clientAuth) instead, for an MTA that must
        /// authenticate to the listener (`[listen] require_client_certificate = true`).
        #[arg(long)]
        client: bool,
        /// Where to write the certificate (PEM), followed by any intermediate CA certificates.
        #[arg(long)]
        cert_out: PathBuf,
        /// Where to write the private key (PKCS #8 PEM, mode 0600).
        #[arg(long)]
        key_out: PathBuf,
        /// Lifetime in days.
        #[arg(long, default_value_t = 365)]
        days: u32,
        /// Key type: p256, p384, rsa2048, rsa3072, rsa4096.
        #[arg(long, default_value = "p256")]
        key: KeyAlgorithm,
    },
    /// List every certificate our CA issued: users', TLS servers', MTA clients',
    /// cross-certificates, with serial, validity and revocation.
    Issued {
        /// Print JSON (one array) instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Revoke a TLS server or MTA client certificate by serial (from `ca issued`) and reissue
    /// the CRL; a running `serve` refuses that client certificate from the next handshake on.
    /// Users' certificates are revoked with `user revoke`.
    Revoke {
        /// The serial number (hex, as `ca issued` shows it).
        serial: String,
        /// RFC 5280 reason: unspecified, keyCompromise, cACompromise, affiliationChanged,
        /// superseded, cessationOfOperation, certificateHold, privilegeWithdrawn, aACompromise.
        #[arg(long, default_value = "unspecified")]
        reason: smimegw::pki::revocation::RevocationReason,
    },
    /// Issue a fresh CRL and write it to a file.
    Crl {
        /// Where to write the CRL.
        #[arg(long)]
        out: PathBuf,
        /// Write DER instead of PEM.
        #[arg(long)]
        der: bool,
    },
}

/// `--listener`: which of `serve`'s listeners `process` plays.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ListenerArg {
    /// Mail from the world (`[listen]`).
    Inbound,
    /// Mail users submitted (`[submission]`).
    Submission,
}

impl From<ListenerArg> for smimegw::policy::Listener {
    fn from(l: ListenerArg) -> Self {
        match l {
            ListenerArg::Inbound => Self::Inbound,
            ListenerArg::Submission => Self::Submission,
        }
    }
}

/// A certificate role on the command line.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum RoleArg {
    /// The signing certificate.
    Signing,
    /// The encryption certificate.
    Encryption,
    /// One certificate for both (single-certificate users).
    Both,
}

impl From<RoleArg> for smimegw::store::CertRole {
    fn from(r: RoleArg) -> Self {
        match r {
            RoleArg::Signing => Self::Signing,
            RoleArg::Encryption => Self::Encryption,
            RoleArg::Both => Self::Both,
        }
    }
}

/// PKCS #12 export profile on the command line.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum ProfileArg {
    /// OpenSSL 3's default (the default here too).
    Openssl3,
    /// What GnuPG 2.2's gpgsm can import.
    Gnupg22,
}

/// Password source for PKCS #12: never a plain argument (it would show in `ps` and history).
#[derive(Debug, Args)]
pub struct PasswordArgs {
    /// File holding the password (first line). Without it you are prompted on the terminal.
    #[arg(long)]
    pub password_file: Option<PathBuf>,
}

/// `smimegw user ...`
#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Generate keys and issue the dual certificates (signing + encryption) for an internal user.
    Enroll {
        /// The user's address; must be in one of internal_domains.
        email: String,
        /// Display name, e.g. "Alice Example".
        #[arg(long)]
        name: String,
        /// Issue one certificate for both signing and encryption instead of two.
        #[arg(long)]
        single: bool,
        /// Key type: rsa2048, rsa3072, rsa4096, p256, p384.
        #[arg(long, default_value = "rsa2048")]
        key: KeyAlgorithm,
        /// Lifetime in days (default ca.user_days from the config, 730).
        #[arg(long)]
        days: Option<u32>,
    },
    /// Import an existing certificate and key (PKCS #12) for an internal user.
    Import {
        /// The user's address (must be in the certificate).
        email: String,
        /// The PKCS #12 file.
        #[arg(long)]
        p12: PathBuf,
        /// What the certificate is used for.
        #[arg(long, value_enum, default_value = "both")]
        role: RoleArg,
        /// Display name (default: the certificate's common name).
        #[arg(long)]
        name: Option<String>,
        /// Where the password comes from.
        #[command(flatten)]
        password: PasswordArgs,
    },
    /// Export the encryption certificate and key as PKCS #12 (AES-256, PBKDF2-SHA256), so the
    /// user can read encrypted mail in their own client.
    Export {
        /// The user's address.
        email: String,
        /// Where to write the PKCS #12 file (created with mode 0600).
        #[arg(long)]
        p12: PathBuf,
        /// Export the signing key instead (signing keys normally never leave the gateway; the
        /// export is recorded in the audit log).
        #[arg(long)]
        include_signing_key: bool,
        /// Encryption profile: `openssl3` (AES-256, PBKDF2-SHA256: OpenSSL 3, NSS, Windows,
        /// macOS, GnuPG 2.4) or `gnupg22` (AES-128, PBKDF2-SHA1, for GnuPG 2.2's gpgsm, which
        /// reads nothing else).
        #[arg(long, value_enum, default_value = "openssl3")]
        profile: ProfileArg,
        /// Where the password comes from.
        #[command(flatten)]
        password: PasswordArgs,
    },
    /// Show a person record: certificates, states, validity.
    Show {
        /// The user's address.
        email: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// List person records.
    List {
        /// Only users with a current certificate expiring within this many days (e.g. 30d or 30).
        #[arg(long, value_parser = parse_days)]
        expiring: Option<u32>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Print a user's current certificate as PEM.
    Cert {
        /// The user's address.
        email: String,
        /// Which certificate.
        #[arg(long, value_enum)]
        role: RoleArg,
        /// Also print the chain up to our root.
        #[arg(long)]
        chain: bool,
    },
    /// Issue new certificates for a user (same keys, or new ones with --rekey). Old encryption
    /// keys stay and keep decrypting mail encrypted to them.
    Renew {
        /// The user's address (or --all-expiring).
        #[arg(
            required_unless_present = "all_expiring",
            conflicts_with = "all_expiring"
        )]
        email: Option<String>,
        /// Renew every active user's certificates that expire within this many days (e.g. 30d)
        /// and whose keys the gateway holds, as `serve` does by itself (`ca.renew_before_days`);
        /// list the due ones it cannot renew (CSR users, imports).
        #[arg(long, value_parser = parse_days)]
        all_expiring: Option<u32>,
        /// With --all-expiring: only say what would be renewed.
        #[arg(long, requires = "all_expiring")]
        dry_run: bool,
        /// Generate new keys too.
        #[arg(long)]
        rekey: bool,
        /// Lifetime in days (default ca.user_days from the config).
        #[arg(long)]
        days: Option<u32>,
    },
    /// Revoke all of a user's certificates and publish a new CRL.
    Revoke {
        /// The user's address.
        email: String,
        /// RFC 5280 reason: unspecified, keyCompromise, cACompromise, affiliationChanged,
        /// superseded, cessationOfOperation, certificateHold, privilegeWithdrawn, aACompromise.
        #[arg(long, default_value = "unspecified")]
        reason: smimegw::pki::revocation::RevocationReason,
    },
}

/// `smimegw request ...`
#[derive(Debug, Subcommand)]
pub enum RequestCommand {
    /// Submit a PKCS #10 request; prints the request id alone on the last line.
    Submit {
        /// The CSR (PEM or DER). Its signature is verified and its address must be internal.
        #[arg(long)]
        csr: PathBuf,
        /// What the certificate will be used for.
        #[arg(long, value_enum, default_value = "both")]
        role: RoleArg,
    },
    /// List pending requests (all requests with --all).
    List {
        /// Include approved and denied requests.
        #[arg(long)]
        all: bool,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Approve a pending request: issues the certificate into the user's record.
    Approve {
        /// Request id.
        id: String,
        /// Lifetime in days (default ca.user_days from the config).
        #[arg(long)]
        days: Option<u32>,
    },
    /// Deny a pending request.
    Deny {
        /// Request id.
        id: String,
        /// Why (recorded and shown to whoever picks it up).
        #[arg(long)]
        reason: String,
    },
    /// Write the issued certificate and its chain (PEM) for an approved request.
    Pickup {
        /// Request id.
        id: String,
        /// Where to write the PEM file.
        #[arg(long)]
        out: PathBuf,
    },
}

/// Certificate usage to check.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum UsageArg {
    /// Signing (digitalSignature or nonRepudiation, emailProtection).
    Signing,
    /// Encryption (keyEncipherment or keyAgreement, emailProtection).
    Encryption,
    /// No usage check: only the path (for a CA certificate).
    Any,
}

/// `smimegw trust ...`
#[derive(Debug, Subcommand)]
pub enum TrustCommand {
    /// Trust a foreign root CA certificate as it is.
    AddRoot {
        /// The root certificate (PEM or DER).
        cert: PathBuf,
    },
    /// Cross-certify a foreign CA: our CA signs a certificate for its key, optionally limited to
    /// some mail domains, so its users' signatures are trusted through our root.
    CrossCertify {
        /// The foreign CA certificate (PEM or DER).
        cert: PathBuf,
        /// Trust it only for addresses in this domain (repeatable).
        #[arg(long = "permit-domain")]
        permit_domain: Vec<String>,
        /// Lifetime of the cross-certificate in days.
        #[arg(long, default_value_t = 730)]
        days: u32,
        /// Also write the cross-certificate (PEM) here.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// List trusted roots, cross-certified CAs and bundled roots (with their source).
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Remove a trust entry (a cross-certificate we issued is revoked too).
    Remove {
        /// The entry id from `trust list`.
        id: String,
    },
    /// Import a root program's S/MIME roots: a PEM bundle, or Mozilla's certdata.txt (only roots
    /// whose e-mail trust is CKT_NSS_TRUSTED_DELEGATOR). Importing again under the same source
    /// adds the new roots and removes those no longer in the file. Expired roots, duplicates and
    /// roots already trusted otherwise are skipped and counted; a certificate that is not a CA
    /// refuses the whole file. These roots never vouch for addresses in internal_domains unless
    /// --internal-too is given (our users' certificates come from our CA).
    ImportBundle {
        /// The bundle (PEM certificates or certdata.txt).
        file: PathBuf,
        /// The name its roots are recorded under (default: the file's name).
        #[arg(long)]
        source: Option<String>,
        /// Let these roots vouch for internal-domain addresses too.
        #[arg(long)]
        internal_too: bool,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Import a CRL of any CA that chains to a trust anchor (a root, our CA, or a
    /// cross-certified CA), replacing an older one of the same CA.
    ImportCrl {
        /// The CRL (PEM or DER).
        crl: PathBuf,
        /// The certificate that signed the CRL and its chain up to a trusted or cross-certified
        /// CA (PEM, several certificates). Not needed for a CA the directory knows: a root, a
        /// cross-certified CA, or an intermediate seen in a validated signer chain.
        #[arg(long, value_name = "FILE")]
        issuer: Option<PathBuf>,
    },
    /// Validate a certificate against the directory, as the gateway does for every signature.
    /// Exit 0 when trusted, 1 when not, 2 on bad input.
    Check {
        /// The certificate to check (PEM or DER: the first certificate in the file; any others
        /// in it are taken as intermediates that came with it, as the gateway takes the
        /// certificates of a message).
        cert: PathBuf,
        /// Intermediate certificates that came with it (PEM).
        #[arg(long)]
        untrusted: Option<PathBuf>,
        /// The address that must be in the certificate.
        #[arg(long)]
        email: Option<String>,
        /// Validate at this time (RFC 3339) instead of now.
        #[arg(long)]
        at: Option<String>,
        /// Check the key usage for this purpose: `signing` (the default: what the gateway
        /// checks for every signature), `encryption` (what it checks before encrypting to a
        /// certificate) or `any` (the path only, e.g. for a CA certificate).
        #[arg(long, value_enum, default_value_t = UsageArg::Signing)]
        usage: UsageArg,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

/// Accepts "30", "30d".
fn parse_days(s: &str) -> Result<u32, String> {
    s.trim_end_matches('d')
        .parse()
        .map_err(|_| format!("'{s}' is not a number of days (e.g. 30 or 30d)"))
}

/// Input and output of the offline S/MIME commands.
#[derive(Debug, Args)]
pub struct MessageIo {
    /// Read the RFC 5322 message from this file instead of standard input.
    #[arg(long = "in", value_name = "FILE")]
    pub input: Option<PathBuf>,
    /// Write the resulting message to this file instead of standard output.
    #[arg(long = "out", value_name = "FILE")]
    pub output: Option<PathBuf>,
}

/// Digest algorithms on the command line.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum DigestArg {
    /// SHA-256.
    Sha256,
    /// SHA-384.
    Sha384,
    /// SHA-512.
    Sha512,
}

/// `smimegw smime ...`
#[derive(Debug, Subcommand)]
pub enum SmimeCommand {
    /// Sign a message with a user's signing certificate (multipart/signed, or opaque).
    Sign {
        /// The signer (an enrolled user whose signing key the gateway holds).
        #[arg(long)]
        signer: String,
        /// Opaque application/pkcs7-mime signed-data instead of multipart/signed.
        #[arg(long)]
        opaque: bool,
        /// Digest algorithm [default: SHA-256 for RSA keys, the curve's own for ECDSA: SHA-256
        /// for P-256, SHA-384 for P-384]. An ECDSA key signs with its curve's digest only;
        /// another is refused.
        #[arg(long, value_enum)]
        digest: Option<DigestArg>,
        /// RSA-PSS instead of PKCS #1 v1.5 (RSA keys only).
        #[arg(long)]
        pss: bool,
        /// Input and output.
        #[command(flatten)]
        io: MessageIo,
    },
    /// Encrypt a message to recipients from the directory or from certificate files.
    Encrypt {
        /// A recipient whose encryption certificate is in the directory (repeatable).
        #[arg(long = "to")]
        to: Vec<String>,
        /// A recipient certificate file (PEM or DER) for someone not in the directory (repeatable).
        #[arg(long = "to-cert")]
        to_cert: Vec<PathBuf>,
        /// Content cipher: aes128-cbc, aes256-cbc (every client reads it), aes128-gcm or
        /// aes256-gcm (AuthEnvelopedData, RFC 5083).
        #[arg(long, value_parser = ContentCipher::parse_written, default_value = "aes256-cbc")]
        cipher: ContentCipher,
        /// RSA-OAEP (SHA-256) key transport instead of PKCS #1 v1.5 for RSA recipients.
        #[arg(long)]
        oaep: bool,
        /// Identify recipients by subjectKeyIdentifier instead of issuer and serial number.
        #[arg(long)]
        ski: bool,
        /// Input and output.
        #[command(flatten)]
        io: MessageIo,
    },
    /// Decrypt a message with the keys the directory holds (current and renewed-away ones).
    Decrypt {
        /// Use only this user's keys (default: every encryption key the directory holds).
        #[arg(long = "as")]
        as_user: Option<String>,
        /// Input and output.
        #[command(flatten)]
        io: MessageIo,
    },
    /// Verify a signed message; prints one line per signer on stderr and the signed content on
    /// stdout. Exit 0 only when every signature is valid and trusted.
    Verify {
        /// The address the signer must have (default: the From header).
        #[arg(long)]
        from: Option<String>,
        /// Input and output.
        #[command(flatten)]
        io: MessageIo,
    },
}
