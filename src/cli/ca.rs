//! `smimegw ca ...`: create or import the CA, issue TLS certificates, revoke, publish the CRL.

use super::*;

pub(super) fn ca(cli: &Cli, c: &CaCommand) -> Result<u8> {
    match c {
        CaCommand::Init { name, key, days } => {
            let config = load_config(cli)?;
            let dir = Directory::open_or_create(&config)?;
            let name = name.clone().unwrap_or_else(|| config.ca.name.clone());
            let cert = dir.init_ca(
                &name,
                key.unwrap_or(config.ca.key),
                days.unwrap_or(config.ca.days),
            )?;
            dir.issue_crl()?;
            println!(
                "Created CA '{}' in {}",
                cert.subject_string(),
                dir.describe()
            );
            output::cert_summary(&cert);
            Ok(0)
        }
        CaCommand::Import {
            cert,
            key,
            p12,
            password_file,
        } => {
            let config = load_config(cli)?;
            let (ca_cert, ca_key, chain) = if let Some(p12) = p12 {
                let bytes =
                    std::fs::read(p12).with_context(|| format!("reading {}", p12.display()))?;
                let pw = read_password(password_file.as_deref(), "PKCS #12 password: ")?;
                let c = smimegw::pki::pkcs12::parse(&bytes, &pw)
                    .with_context(|| format!("reading {}", p12.display()))?;
                (c.cert, c.key, c.chain)
            } else {
                let (Some(cert), Some(key)) = (cert, key) else {
                    bail!("give either --cert F --key F, or --p12 F");
                };
                let mut certs = read_certs_file(cert)?;
                let first = certs.remove(0);
                (first, read_private_key(key)?, certs)
            };
            let dir = Directory::open_or_create(&config)?;
            let installed = dir.import_ca(ca_cert, ca_key, chain)?;
            dir.issue_crl()?;
            println!(
                "Imported CA '{}' into {}",
                installed.subject_string(),
                dir.describe()
            );
            output::cert_summary(&installed);
            Ok(0)
        }
        CaCommand::Show { pem } => {
            let (_, dir) = open(cli)?;
            let cert = dir.ca_cert()?;
            if *pem {
                print!("{}", cert.to_pem());
                for c in dir.ca_chain()? {
                    print!("{}", c.to_pem());
                }
            } else {
                output::cert_summary(&cert);
            }
            Ok(0)
        }
        CaCommand::IssueServer {
            hostname,
            client,
            cert_out,
            key_out,
            days,
            key,
        } => {
            let (_, dir) = open(cli)?;
            if *days == 0 {
                bail!("--days must be at least 1");
            }
            smimegw::directory::check_hostname(hostname)?;
            // Claim both files before issuing, so that nothing is issued (and no serial
            // recorded) when they cannot be written; remove them again if issuing fails.
            let mut key_file = create_new_file(key_out, 0o600)?;
            let mut cert_file = match create_new_file(cert_out, 0o644) {
                Ok(f) => f,
                Err(e) => {
                    let _ = std::fs::remove_file(key_out);
                    return Err(e);
                }
            };
            let written = dir
                .issue_tls(
                    hostname,
                    *key,
                    *days,
                    if *client {
                        smimegw::directory::TlsRole::Client
                    } else {
                        smimegw::directory::TlsRole::Server
                    },
                )
                .map_err(anyhow::Error::from)
                .and_then(|issued| {
                    let key_pem =
                        zeroize::Zeroizing::new(pem_encode("PRIVATE KEY", issued.key.pkcs8_der()));
                    key_file
                        .write_all(key_pem.as_bytes())
                        .and_then(|()| key_file.sync_all())
                        .with_context(|| format!("writing {}", key_out.display()))?;
                    let mut pem = issued.cert.to_pem();
                    for c in &issued.chain {
                        pem.push_str(&c.to_pem());
                    }
                    cert_file
                        .write_all(pem.as_bytes())
                        .and_then(|()| cert_file.sync_all())
                        .with_context(|| format!("writing {}", cert_out.display()))?;
                    Ok(issued)
                });
            let issued = match written {
                Ok(i) => i,
                Err(e) => {
                    let _ = std::fs::remove_file(key_out);
                    let _ = std::fs::remove_file(cert_out);
                    return Err(e);
                }
            };
            println!(
                "Issued a TLS server certificate for {} (serial {}); wrote {} and {} (mode 0600)",
                hostname,
                issued.cert.serial_hex(),
                cert_out.display(),
                key_out.display()
            );
            println!(
                "Use it with:\n[listen]\ntls_cert = \"{}\"\ntls_key = \"{}\"",
                cert_out.display(),
                key_out.display()
            );
            output::cert_summary(&issued.cert);
            Ok(0)
        }
        CaCommand::Issued { json } => {
            let (_, dir) = open(cli)?;
            let issued = dir.issued()?;
            if *json {
                println!("{}", serde_json::to_string_pretty(&issued)?);
            } else {
                output::issued_table(&issued);
            }
            Ok(0)
        }
        CaCommand::Revoke { serial, reason } => {
            let (_, dir) = open(cli)?;
            let rec = dir.revoke_serial(serial, *reason)?;
            println!(
                "Revoked {} certificate {} of {} ({}); the CRL was reissued",
                rec.purpose,
                rec.serial,
                rec.subject,
                reason.name()
            );
            Ok(0)
        }
        CaCommand::Crl { out, der } => {
            let (_, dir) = open(cli)?;
            let crl = dir.issue_crl()?;
            let bytes = if *der {
                crl
            } else {
                pem_encode("X509 CRL", &crl).into_bytes()
            };
            std::fs::write(out, bytes).with_context(|| format!("writing {}", out.display()))?;
            println!("Wrote CRL to {}", out.display());
            Ok(0)
        }
    }
}
