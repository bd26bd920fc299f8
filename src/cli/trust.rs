//! `smimegw trust ...`: roots, cross-certificates, CRLs, bundles, and checking a certificate.

use super::*;

pub(super) fn trust(cli: &Cli, c: &TrustCommand) -> Result<u8> {
    let (_, dir) = open(cli)?;
    match c {
        TrustCommand::AddRoot { cert } => {
            let c = first_cert(cert)?;
            let s = dir.add_root(&c)?;
            println!("Trusted root {} added as {}", s.subject, s.id);
        }
        TrustCommand::CrossCertify {
            cert,
            permit_domain,
            days,
            out,
        } => {
            let c = first_cert(cert)?;
            let (s, cross) = dir.cross_certify(&c, permit_domain, *days)?;
            println!(
                "Cross-certified {} as {} (cross-certificate serial {}){}",
                s.subject,
                s.id,
                cross.serial_hex(),
                if permit_domain.is_empty() {
                    String::new()
                } else {
                    format!(", only for {}", permit_domain.join(", "))
                }
            );
            if let Some(out) = out {
                std::fs::write(out, cross.to_pem())
                    .with_context(|| format!("writing {}", out.display()))?;
            }
        }
        TrustCommand::List { json } => {
            let list = dir.list_trust()?;
            if *json {
                println!("{}", serde_json::to_string_pretty(&list)?);
            } else {
                output::trust_table(&list);
            }
        }
        TrustCommand::Remove { id } => {
            dir.remove_trust(id)?;
            println!("Removed trust entry {id}");
        }
        TrustCommand::ImportBundle {
            file,
            source,
            internal_too,
            json,
        } => {
            let bytes =
                std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
            let source = match source {
                Some(s) => s.clone(),
                None => file
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .ok_or_else(|| anyhow!("{}: give --source NAME", file.display()))?,
            };
            let report =
                dir.import_bundle(&bytes, &file.display().to_string(), &source, *internal_too)?;
            if *json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                output::bundle_import(&report);
            }
        }
        TrustCommand::ImportCrl { crl, issuer } => {
            let bytes = std::fs::read(crl).with_context(|| format!("reading {}", crl.display()))?;
            let given = match issuer {
                Some(p) => read_certs_file(p)?,
                None => Vec::new(),
            };
            let issuer = dir.import_crl(&bytes, &crl.display().to_string(), &given)?;
            println!("Imported CRL of {issuer}");
        }
        TrustCommand::Check {
            cert,
            untrusted,
            email,
            at,
            usage,
            json,
        } => {
            // As the gateway takes every certificate of a message: the leaf, then whatever
            // else the file holds, then --untrusted.
            let mut chain = read_certs_file(cert)?;
            let leaf = chain.remove(0);
            if let Some(p) = untrusted {
                chain.extend(read_certs_file(p)?);
            }
            let at = match at {
                Some(s) => Some(
                    time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
                        .map_err(|e| anyhow!("--at '{s}': not an RFC 3339 time such as 2026-01-31T12:00:00Z ({e})"))?
                        .unix_timestamp(),
                ),
                None => None,
            };
            let usage = match usage {
                UsageArg::Signing => Some(Usage::Signing),
                UsageArg::Encryption => Some(Usage::Encryption),
                UsageArg::Any => None,
            };
            let mut verdict = dir.check_trust(&leaf, &chain, email.as_deref(), at, usage)?;
            let revocation = revocation_line(&dir, &mut verdict, at)?;
            output::trust_check(&leaf, &verdict, revocation.as_deref(), *json)?;
            return Ok(if verdict.is_ok() { 0 } else { EXIT_NOT_TRUSTED });
        }
    }
    Ok(0)
}

/// The revocation line the gateway writes into X-Smimegw-Result, for a trusted path (fetching
/// as `[revocation]` says); a revoked certificate turns the verdict into that failure.
pub(super) fn revocation_line(
    dir: &Directory,
    verdict: &mut smimegw::directory::TrustCheck,
    at: Option<i64>,
) -> Result<Option<String>> {
    use smimegw::pki::online::{Checker, PathRevocation};
    let Ok(p) = verdict else {
        return Ok(None);
    };
    let rc = &dir.config().revocation;
    let timeout = std::time::Duration::from_secs(rc.timeout_secs);
    let now = at.unwrap_or_else(smimegw::pki::profile::now);
    let status = Checker::new(rc.fetch, rc.ocsp, timeout).check(
        &dir.trust_context()?,
        p,
        now,
        std::time::Instant::now() + timeout,
    );
    let line = status.describe(now);
    if let PathRevocation::Revoked(e) = status {
        *verdict = Err(e);
        return Ok(None);
    }
    Ok(Some(line))
}
