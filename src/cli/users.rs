//! `smimegw user ...` and `smimegw request ...`: person records and the approval flow.

use super::*;

pub(super) fn user(cli: &Cli, c: &UserCommand) -> Result<u8> {
    let (config, dir) = open(cli)?;
    match c {
        UserCommand::Enroll {
            email,
            name,
            single,
            key,
            days,
        } => {
            let s = dir.enroll(
                email,
                &EnrollOptions {
                    display_name: name.clone(),
                    single: *single,
                    key: *key,
                    days: days.unwrap_or(config.ca.user_days),
                },
            )?;
            println!("Enrolled {}", s.email);
            output::user(&s);
        }
        UserCommand::Import {
            email,
            p12,
            role,
            name,
            password,
        } => {
            let bytes = std::fs::read(p12).with_context(|| format!("reading {}", p12.display()))?;
            let pw = read_password(password.password_file.as_deref(), "PKCS #12 password: ")?;
            let contents = smimegw::pki::pkcs12::parse(&bytes, &pw)
                .with_context(|| format!("reading {}", p12.display()))?;
            let s = dir.import_user(
                email,
                name.as_deref(),
                (*role).into(),
                contents.cert,
                contents.key,
                contents.chain,
            )?;
            println!(
                "Imported a {} certificate for {}",
                smimegw::store::CertRole::from(*role),
                s.email
            );
            output::user(&s);
        }
        UserCommand::Export {
            email,
            p12,
            include_signing_key,
            profile,
            password,
        } => {
            let pw = read_new_password(password.password_file.as_deref())?;
            let (key, cert, chain) = dir.export_material(email, *include_signing_key)?;
            let name = cert.common_name().unwrap_or_else(|| email.clone());
            let profile = match profile {
                args::ProfileArg::Openssl3 => smimegw::pki::pkcs12::ExportProfile::OpenSsl3,
                args::ProfileArg::Gnupg22 => smimegw::pki::pkcs12::ExportProfile::LegacyGnupg22,
            };
            let der =
                smimegw::pki::pkcs12::build_with_profile(&key, &cert, &chain, &pw, &name, profile)?;
            write_private_file(p12, &der)?;
            println!(
                "Wrote {} (certificate {} and its key) ",
                p12.display(),
                cert.serial_hex()
            );
        }
        UserCommand::Show { email, json } => {
            let s = dir.user_summary(email)?;
            if *json {
                println!("{}", serde_json::to_string_pretty(&s)?);
            } else {
                output::user(&s);
            }
        }
        UserCommand::List { expiring, json } => {
            let users = dir.list_users(*expiring)?;
            if *json {
                println!("{}", serde_json::to_string_pretty(&users)?);
            } else {
                output::user_table(&users);
            }
        }
        UserCommand::Cert { email, role, chain } => {
            for c in dir.user_cert(email, (*role).into(), *chain)? {
                print!("{}", c.to_pem());
            }
        }
        UserCommand::Renew {
            email,
            all_expiring,
            dry_run,
            rekey,
            days,
        } => {
            let days = days.unwrap_or(config.ca.user_days);
            if let Some(within) = all_expiring {
                let report = dir
                    .renew_expiring(*within, *rekey, days, *dry_run, None)?
                    .unwrap_or_default();
                output::renewal(&report, *dry_run);
                return Ok(if report.failed.is_empty() {
                    0
                } else {
                    EXIT_ERROR
                });
            }
            let Some(email) = email else {
                bail!("name a user, or pass --all-expiring DAYS");
            };
            let s = dir.renew(email, *rekey, days)?;
            println!(
                "Renewed {}{}",
                s.email,
                if *rekey { " with new keys" } else { "" }
            );
            output::user(&s);
        }
        UserCommand::Revoke { email, reason } => {
            let s = dir.revoke_user(email, *reason)?;
            println!(
                "Revoked every certificate of {} ({reason}); the CRL was reissued",
                s.email
            );
            output::user(&s);
        }
    }
    Ok(0)
}

pub(super) fn request(cli: &Cli, c: &RequestCommand) -> Result<u8> {
    let (config, dir) = open(cli)?;
    match c {
        RequestCommand::Submit { csr, role } => {
            let bytes = std::fs::read(csr).with_context(|| format!("reading {}", csr.display()))?;
            let r = dir
                .submit_request(&bytes, &csr.display().to_string(), (*role).into())
                .with_context(|| format!("request {}", csr.display()))?;
            println!(
                "Submitted request for {} ({}); an administrator approves it with:",
                r.email, r.role
            );
            println!("  smimegw request approve {}", r.id);
            println!("{}", r.id);
        }
        RequestCommand::List { all, json } => {
            let list = dir.list_requests(*all)?;
            if *json {
                println!("{}", serde_json::to_string_pretty(&list)?);
            } else {
                output::request_table(&list);
            }
        }
        RequestCommand::Approve { id, days } => {
            let cert = dir.approve_request(id, days.unwrap_or(config.ca.user_days))?;
            println!(
                "Approved request {id}: issued certificate {} for {}",
                cert.serial_hex(),
                cert.email_addresses().join(", ")
            );
            println!("The user picks it up with: smimegw request pickup {id} --out cert.pem");
        }
        RequestCommand::Deny { id, reason } => {
            dir.deny_request(id, reason)?;
            println!("Denied request {id}: {reason}");
        }
        RequestCommand::Pickup { id, out } => {
            let certs = dir.pickup_request(id)?;
            let pem: String = certs.iter().map(Cert::to_pem).collect();
            std::fs::write(out, pem).with_context(|| format!("writing {}", out.display()))?;
            println!(
                "Wrote the certificate and its chain ({} certificates) to {}",
                certs.len(),
                out.display()
            );
        }
    }
    Ok(0)
}
