//! The key-encryption key: every private key is sealed with AES-256-GCM under it before it is
//! stored, so a copy of the database alone reveals no key.
//!
//! The KEK lives in a file of its own (mode 0600, or a systemd credential), outside the database,
//! so backups of the two can be kept apart. The key id is the AEAD's associated data: a sealed
//! key copied onto another record's id does not open.

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use zeroize::Zeroizing;

use super::records::SealedKey;

/// The id under which the KEK check value is sealed (see [`Kek::check_value`]).
const CHECK_ID: &str = "smimegw-kek-check";
const CHECK_PLAINTEXT: &[u8] = b"smimegw key-encryption key check v1";

/// Problems with the key-encryption key.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KekError {
    /// A key could not be sealed (nothing was stored).
    #[error("cannot seal private key {key_id}: {reason}; nothing was stored")]
    Seal {
        /// The key's id.
        key_id: String,
        /// What failed.
        reason: &'static str,
    },
    /// The file does not exist.
    #[error(
        "key-encryption key {0} is missing: if this directory is new run `smimegw ca init` (it creates the key); if the directory holds keys, restore the file from your backup (without it the stored private keys cannot be opened)"
    )]
    Missing(PathBuf),
    /// The file exists but cannot be read.
    #[error(
        "cannot read key-encryption key {path}: {source} (smimegw must run as the user that owns it)"
    )]
    Unreadable {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The file is readable by group or others.
    #[error(
        "key-encryption key {path} has mode {mode:04o}, readable by other users: run `chmod 600 {path}` (and check who may have read it)"
    )]
    TooOpen {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The file does not hold a 256-bit key.
    #[error(
        "key-encryption key {0} is not 64 hexadecimal digits (or 32 raw bytes): restore it from your backup"
    )]
    Malformed(PathBuf),
    /// The file holds a key, but not the one this directory was sealed with.
    #[error(
        "key-encryption key {kek} does not match the directory {store}: restore the key file that belongs to this directory"
    )]
    WrongKey {
        /// The key file.
        kek: PathBuf,
        /// The store.
        store: String,
    },
    /// A sealed private key does not open (tampered, or sealed under another key).
    #[error(
        "sealed private key '{0}' does not open under the key-encryption key (damaged record or wrong key)"
    )]
    Unseal(String),
    /// The file could not be created.
    #[error("cannot create key-encryption key {path}: {source}")]
    Create {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
}

/// The key-encryption key, held in memory only while the process runs.
pub struct Kek {
    key: LessSafeKey,
    /// HMAC-SHA256 key for the audit log's chain, derived from the KEK (so that a link can be
    /// forged only by someone who holds the KEK).
    audit_key: aws_lc_rs::hmac::Key,
    path: PathBuf,
}

impl std::fmt::Debug for Kek {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Kek({}, <redacted>)", self.path.display())
    }
}

impl Kek {
    /// Where the KEK is looked for: the configured file; else a systemd credential named `kek`
    /// (`LoadCredential=kek:...`); else `<data_dir>/kek` when one is there already (where
    /// installations before this default kept it; `smimegw doctor` warns about it); else beside
    /// the configuration file, `<config dir>/<config name>.kek`. Not in the data directory: a
    /// copy of that directory (a backup, a snapshot) must not hold both the sealed keys and the
    /// key that opens them.
    pub fn resolve_path(configured: Option<&Path>, data_dir: &Path, config_file: &Path) -> PathBuf {
        if let Some(p) = configured {
            return p.to_path_buf();
        }
        if let Some(dir) = std::env::var_os("CREDENTIALS_DIRECTORY") {
            let p = Path::new(&dir).join("kek");
            if p.exists() {
                return p;
            }
        }
        let legacy = data_dir.join("kek");
        if legacy.exists() {
            return legacy;
        }
        let name = config_file
            .file_stem()
            .map_or_else(|| "smimegw".into(), |s| s.to_string_lossy().into_owned());
        config_file.with_file_name(format!("{name}.kek"))
    }

    /// Reads the KEK, refusing a file that other users can read.
    pub fn load(path: &Path) -> Result<Self, KekError> {
        let meta = match std::fs::metadata(path) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(KekError::Missing(path.to_path_buf()));
            }
            Err(source) => {
                return Err(KekError::Unreadable {
                    path: path.to_path_buf(),
                    source,
                });
            }
        };
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(KekError::TooOpen {
                path: path.to_path_buf(),
                mode,
            });
        }
        let raw = Zeroizing::new(std::fs::read(path).map_err(|source| KekError::Unreadable {
            path: path.to_path_buf(),
            source,
        })?);
        let bytes: Zeroizing<Vec<u8>> = if raw.len() == 32 {
            Zeroizing::new(raw.to_vec())
        } else {
            let text =
                std::str::from_utf8(&raw).map_err(|_| KekError::Malformed(path.to_path_buf()))?;
            let decoded =
                hex::decode(text.trim()).map_err(|_| KekError::Malformed(path.to_path_buf()))?;
            Zeroizing::new(decoded)
        };
        Self::from_bytes(&bytes, path)
    }

    fn from_bytes(bytes: &[u8], path: &Path) -> Result<Self, KekError> {
        if bytes.len() != 32 {
            return Err(KekError::Malformed(path.to_path_buf()));
        }
        let unbound = UnboundKey::new(&AES_256_GCM, bytes)
            .map_err(|_| KekError::Malformed(path.to_path_buf()))?;
        use aws_lc_rs::hmac;
        let derived = hmac::sign(
            &hmac::Key::new(hmac::HMAC_SHA256, bytes),
            b"smimegw audit chain v1",
        );
        Ok(Self {
            key: LessSafeKey::new(unbound),
            audit_key: hmac::Key::new(hmac::HMAC_SHA256, derived.as_ref()),
            path: path.to_path_buf(),
        })
    }

    /// The chain link of an audit entry: HMAC-SHA256 under a key derived from the KEK, over the
    /// previous entry's link and this entry's canonical encoding, in hex.
    pub fn audit_link(&self, previous: &str, entry: &[u8]) -> String {
        let mut ctx = aws_lc_rs::hmac::Context::with_key(&self.audit_key);
        ctx.update(previous.as_bytes());
        ctx.update(&[0]);
        ctx.update(entry);
        hex::encode(ctx.sign().as_ref())
    }

    /// Creates a new random KEK file with mode 0600 (never overwriting an existing file).
    pub fn create(path: &Path) -> Result<Self, KekError> {
        let err = |source| KekError::Create {
            path: path.to_path_buf(),
            source,
        };
        let mut key = Zeroizing::new([0u8; 32]);
        SystemRandom::new()
            .fill(&mut key[..])
            .map_err(|_| err(std::io::Error::other("no randomness")))?;
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(err)?;
        }
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .map_err(err)?;
        let text = Zeroizing::new(format!("{}\n", hex::encode(&key[..])));
        f.write_all(text.as_bytes()).map_err(err)?;
        f.sync_all().map_err(err)?;
        Self::from_bytes(&key[..], path)
    }

    /// The file it came from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Seals a private key (PKCS #8 DER) for storage under `key_id`, binding `exportable` to it. A failing system random
    /// number generator is an error, never a reused nonce.
    pub fn seal(
        &self,
        key_id: &str,
        plaintext: &[u8],
        exportable: bool,
    ) -> Result<SealedKey, KekError> {
        let err = |reason| KekError::Seal {
            key_id: key_id.to_string(),
            reason,
        };
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new()
            .fill(&mut nonce)
            .map_err(|_| err("the system random number generator failed"))?;
        let mut buf = plaintext.to_vec();
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(associated_data(key_id, exportable, SEAL_FORMAT)),
                &mut buf,
            )
            .map_err(|_| err("AES-256-GCM sealing failed"))?;
        Ok(SealedKey {
            nonce: nonce.to_vec(),
            ciphertext: buf,
            exportable,
            aad_format: SEAL_FORMAT,
        })
    }

    /// Opens a sealed key; the result is wiped from memory when dropped.
    pub fn open(&self, key_id: &str, sealed: &SealedKey) -> Result<Zeroizing<Vec<u8>>, KekError> {
        let nonce: [u8; NONCE_LEN] = sealed
            .nonce
            .as_slice()
            .try_into()
            .map_err(|_| KekError::Unseal(key_id.to_string()))?;
        let mut buf = Zeroizing::new(sealed.ciphertext.clone());
        let len = self
            .key
            .open_in_place(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(associated_data(
                    key_id,
                    sealed.exportable,
                    sealed.aad_format,
                )),
                &mut buf,
            )
            .map_err(|_| KekError::Unseal(key_id.to_string()))?
            .len();
        buf.truncate(len);
        Ok(buf)
    }

    /// A sealed constant stored beside the keys, so a wrong KEK is reported when the directory
    /// is opened rather than at the first signature.
    pub fn check_value(&self) -> Result<SealedKey, KekError> {
        self.seal(CHECK_ID, CHECK_PLAINTEXT, false)
    }

    /// Verifies a check value made by [`Self::check_value`].
    pub fn verify_check(&self, sealed: &SealedKey, store: &str) -> Result<(), KekError> {
        match self.open(CHECK_ID, sealed) {
            Ok(p) if p.as_slice() == CHECK_PLAINTEXT => Ok(()),
            _ => Err(KekError::WrongKey {
                kek: self.path.clone(),
                store: store.to_string(),
            }),
        }
    }
}

/// The associated-data format [`Kek::seal`] writes (see [`SealedKey::aad_format`]).
pub const SEAL_FORMAT: u8 = 2;

/// The AES-GCM associated data of a sealed key: its id, and from format 2 on whether it may be
/// exported. A format other than 1 or 2 (a damaged or forged record) binds to nothing that
/// was ever sealed, so it never opens.
fn associated_data(key_id: &str, exportable: bool, format: u8) -> Vec<u8> {
    match format {
        1 => key_id.as_bytes().to_vec(),
        2 => format!("smimegw-key-v2\0{key_id}\0exportable={exportable}").into_bytes(),
        other => format!("smimegw-key-unknown-format-{other}").into_bytes(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_load_seal_open() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("kek");
        let k = Kek::create(&p).unwrap();
        assert_eq!(
            std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let s = k.seal("k1", b"secret key bytes", true).unwrap();
        assert!(!s.ciphertext.windows(6).any(|w| w == b"secret"));
        let k2 = Kek::load(&p).unwrap();
        assert_eq!(k2.open("k1", &s).unwrap().as_slice(), b"secret key bytes");
        // Bound to its id.
        assert!(matches!(k2.open("k2", &s), Err(KekError::Unseal(_))));
        // Never overwrites.
        assert!(Kek::create(&p).is_err());
    }

    /// Someone who can write the database but has no KEK cannot make a signing key exportable:
    /// the flag is authenticated with the key, and so is the record's format (no downgrade to
    /// the format that did not bind it). Keys sealed before the flag was bound still open.
    #[test]
    fn the_exportable_flag_is_bound_to_the_sealed_key() {
        let dir = tempfile::tempdir().unwrap();
        let k = Kek::create(&dir.path().join("kek")).unwrap();
        let signing = k.seal("k1", b"signing key", false).unwrap();
        assert_eq!(signing.aad_format, SEAL_FORMAT);
        let flipped = SealedKey {
            exportable: true,
            ..signing.clone()
        };
        assert!(matches!(k.open("k1", &flipped), Err(KekError::Unseal(_))));
        let downgraded = SealedKey {
            exportable: true,
            aad_format: 1,
            ..signing.clone()
        };
        assert!(matches!(
            k.open("k1", &downgraded),
            Err(KekError::Unseal(_))
        ));
        assert_eq!(k.open("k1", &signing).unwrap().as_slice(), b"signing key");

        // A record from before (format 1: the key id alone; no aad_format in its JSON).
        let mut buf = b"old key".to_vec();
        let nonce = [7u8; NONCE_LEN];
        k.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(b"k-old".as_slice()),
                &mut buf,
            )
            .unwrap();
        let json = serde_json::json!({
            "nonce": base64::Engine::encode(&base64::engine::general_purpose::STANDARD, nonce),
            "ciphertext": base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &buf),
            "exportable": true,
        });
        let legacy: SealedKey = serde_json::from_value(json).unwrap();
        assert_eq!(legacy.aad_format, 1);
        assert_eq!(k.open("k-old", &legacy).unwrap().as_slice(), b"old key");
    }

    #[test]
    fn world_readable_is_refused_with_the_fix() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("kek");
        Kek::create(&p).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = Kek::load(&p).unwrap_err().to_string();
        assert!(
            e.contains("chmod 600") && e.contains(&p.display().to_string()),
            "{e}"
        );
    }

    #[test]
    fn missing_and_malformed() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("kek");
        assert!(matches!(Kek::load(&p), Err(KekError::Missing(_))));
        std::fs::write(&p, "not hex").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(matches!(Kek::load(&p), Err(KekError::Malformed(_))));
    }

    #[test]
    fn wrong_kek_is_detected_by_check_value() {
        let dir = tempfile::tempdir().unwrap();
        let a = Kek::create(&dir.path().join("a")).unwrap();
        let b = Kek::create(&dir.path().join("b")).unwrap();
        let check = a.check_value().unwrap();
        a.verify_check(&check, "s").unwrap();
        assert!(matches!(
            b.verify_check(&check, "s"),
            Err(KekError::WrongKey { .. })
        ));
    }
}
