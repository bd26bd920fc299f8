//! `smimegw smime ...`: the engine on one message, for administrators, scripts and tests.

use std::io::{Read, Write};

use anyhow::{Context, Result, bail};

use super::args::{DigestArg, MessageIo, SmimeCommand};
use smimegw::directory::Directory;
use smimegw::pki::cert::read_certs_file;
use smimegw::pki::keys::HashAlgorithm;
use smimegw::pki::profile;
use smimegw::smime::enveloped::{Recipient, RecipientIdKind};
use smimegw::smime::message::{self, TrustInput};
use smimegw::smime::signed::{SignOptions, Signer};

fn read_input(io: &MessageIo) -> Result<Vec<u8>> {
    match &io.input {
        Some(p) => std::fs::read(p).with_context(|| format!("reading {}", p.display())),
        None => {
            let mut buf = Vec::new();
            std::io::stdin()
                .read_to_end(&mut buf)
                .context("reading the message from standard input")?;
            Ok(buf)
        }
    }
}

fn write_output(io: &MessageIo, data: &[u8]) -> Result<()> {
    match &io.output {
        Some(p) => std::fs::write(p, data).with_context(|| format!("writing {}", p.display())),
        None => {
            let mut out = std::io::stdout().lock();
            out.write_all(data).context("writing to standard output")?;
            out.flush().context("writing to standard output")
        }
    }
}

/// Runs one `smime` subcommand; returns the exit status.
pub(super) fn run(dir: &Directory, cmd: &SmimeCommand) -> Result<u8> {
    match cmd {
        SmimeCommand::Sign {
            signer,
            opaque,
            digest,
            pss,
            io,
        } => {
            let raw = read_input(io)?;
            let (cert, key, chain, enc) = dir.signing_identity(signer)?;
            let signers = [Signer {
                cert: &cert,
                key: &key,
                chain: &chain,
                encryption_cert: enc.as_ref(),
            }];
            let opts = SignOptions {
                digest: digest.map(|d| match d {
                    DigestArg::Sha256 => HashAlgorithm::Sha256,
                    DigestArg::Sha384 => HashAlgorithm::Sha384,
                    DigestArg::Sha512 => HashAlgorithm::Sha512,
                }),
                pss: *pss,
                ..SignOptions::default()
            };
            let out = message::sign(&raw, &signers, *opaque, &opts)
                .with_context(|| format!("signing as {signer}"))?;
            write_output(io, &out)?;
            Ok(0)
        }
        SmimeCommand::Encrypt {
            to,
            to_cert,
            cipher,
            oaep,
            ski,
            io,
        } => {
            let raw = read_input(io)?;
            let mut certs = Vec::new();
            for addr in to {
                certs.push(dir.encryption_cert(addr)?);
            }
            for f in to_cert {
                certs.push(read_certs_file(f)?.remove(0));
            }
            if certs.is_empty() {
                bail!("no recipients: give --to EMAIL or --to-cert FILE");
            }
            let id = if *ski {
                RecipientIdKind::SubjectKeyId
            } else {
                RecipientIdKind::IssuerAndSerial
            };
            let recipients: Vec<Recipient<'_>> = certs
                .iter()
                .map(|c| Recipient {
                    cert: c,
                    oaep: *oaep,
                    id,
                })
                .collect();
            let out = message::encrypt(&raw, &recipients, *cipher).context("encrypting")?;
            write_output(io, &out)?;
            Ok(0)
        }
        SmimeCommand::Decrypt { as_user, io } => {
            let raw = read_input(io)?;
            let keys = match as_user {
                Some(u) => dir.decryption_keys(u)?,
                None => dir.all_decryption_keys()?,
            };
            let d = message::decrypt(&raw, &keys).context("decrypting")?;
            eprintln!(
                "decrypted with the key of {} ({:?})",
                keys[d.key_index].0.email_addresses().join(", "),
                d.cipher
            );
            write_output(io, &d.message)?;
            Ok(0)
        }
        SmimeCommand::Verify { from, io } => {
            let raw = read_input(io)?;
            let ctx = dir.trust_context()?;
            let trust = TrustInput {
                ctx: &ctx,
                cache: None,
                generation: 0,
                now: profile::now(),
            };
            let v = message::verify(&raw, &trust, from.as_deref()).context("verifying")?;
            let mut all_ok = !v.reports.is_empty();
            for r in &v.reports {
                let who = r
                    .signer
                    .as_ref()
                    .map(|c| c.email_addresses().join(","))
                    .unwrap_or_else(|| "(unknown signer)".into());
                let ok = r.verdict.code() == "pass";
                all_ok &= ok;
                eprintln!("{} {} {}", r.verdict.code(), who, r.verdict);
            }
            write_output(io, &v.message)?;
            Ok(if all_ok { 0 } else { super::EXIT_NOT_TRUSTED })
        }
    }
}

/// `smimegw process`: the gateway's decision for one envelope, without relaying.
pub(super) fn process(
    dir: Directory,
    listener: smimegw::policy::Listener,
    from: &str,
    to: &[String],
    io: &MessageIo,
) -> Result<u8> {
    let raw = read_input(io)?;
    let gw = smimegw::gateway::Gateway::new(dir);
    let tx = smimegw::gateway::Transaction {
        mail_from: from.to_string(),
        rcpt_to: to.to_vec(),
        message: smimegw::mime::to_crlf(&raw),
        helo: "smimegw-process".into(),
    };
    match gw.process(&tx, listener) {
        smimegw::gateway::Decision::Refuse { refusal, .. } => {
            let r = smimegw::smtp::reply::Reply::refusal(&refusal);
            eprintln!("refuse: {} {} {}", r.code, r.enhanced, r.text);
            Ok(super::EXIT_NOT_TRUSTED)
        }
        smimegw::gateway::Decision::Relay(copies) => {
            let mut out = Vec::new();
            for c in &copies {
                eprintln!(
                    "copy to {}: {} [{}] verdict {}",
                    c.recipients.join(", "),
                    c.direction,
                    c.action,
                    c.verdict
                );
                if copies.len() > 1 {
                    out.extend_from_slice(
                        format!("From smimegw {}\r\n", c.recipients.join(",")).as_bytes(),
                    );
                }
                out.extend_from_slice(&c.message);
            }
            write_output(io, &out)?;
            Ok(0)
        }
    }
}
