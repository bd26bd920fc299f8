//! `smimegw serve`: start-up of the gateway daemon.
//!
//! First start creates what the configuration asks for (data directory, key-encryption key, CA
//! with `ca.auto_init = true`); every later start checks them and refuses to run half-configured.

use crate::config::Config;
use crate::directory::{Directory, DirectoryError};

/// Why the gateway could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    /// The directory could not be opened or created.
    #[error(transparent)]
    Directory(#[from] DirectoryError),
    /// No CA and the configuration does not ask to create one.
    #[error(
        "the directory {0} has no CA: run `smimegw ca init --name \"...\"` (or `ca import`), or set auto_init = true under [ca] in {1}"
    )]
    NoCa(String, String),
    /// The SMTP side is not available in this build.
    #[error("{0}")]
    Unavailable(String),
}

/// Opens (or on first start creates) the directory and the CA, as configured.
pub fn prepare(config: &Config) -> Result<Directory, ServeError> {
    let dir = if config.ca.auto_init {
        Directory::open_or_create(config)?
    } else {
        Directory::open(config)?
    };
    if !dir.has_ca()? {
        if !config.ca.auto_init {
            return Err(ServeError::NoCa(
                dir.describe(),
                config.source.display().to_string(),
            ));
        }
        let cert = dir.init_ca(&config.ca.name, config.ca.key, config.ca.days)?;
        dir.issue_crl()?;
        tracing::info!(ca = %cert.subject_string(), store = %dir.describe(), "created the CA (ca.auto_init)");
        eprintln!(
            "smimegw: created CA '{}' and key-encryption key in {}",
            cert.subject_string(),
            config.data_dir().display()
        );
    }
    Ok(dir)
}

/// Runs the gateway.
pub fn run(config: &Config) -> Result<(), ServeError> {
    let dir = prepare(config)?;
    tracing::info!(store = %dir.describe(), "directory ready");
    Err(ServeError::Unavailable(format!(
        "directory {} is ready, but the SMTP proxy (listen {} -> relay {}) is not in this build yet; see the README's status section",
        dir.describe(),
        config.listen.address,
        config.relay.next_hop
    )))
}
