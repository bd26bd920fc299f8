//! RSASSA-PSS-params (RFC 4055 section 3.1): the one parser for certificates, CRLs and CMS
//! signer infos, and the one encoder for what we sign.

use spki::AlgorithmIdentifierOwned;

use super::HashAlgorithm;
use crate::oid;

/// RSASSA-PSS-params as received, every field defaulted (RFC 4055 section 3.1).
#[derive(der::Sequence)]
struct Received {
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT", optional = "true")]
    hash: Option<AlgorithmIdentifierOwned>,
    #[asn1(context_specific = "1", tag_mode = "EXPLICIT", optional = "true")]
    mgf: Option<AlgorithmIdentifierOwned>,
    #[asn1(context_specific = "2", tag_mode = "EXPLICIT", optional = "true")]
    salt_len: Option<u32>,
    #[asn1(context_specific = "3", tag_mode = "EXPLICIT", optional = "true")]
    trailer: Option<u32>,
}

/// What we write: every field explicit, MGF1 over the same hash, salt as long as the hash (the
/// only shape aws-lc-rs signs, and what mainstream mail clients use).
#[derive(der::Sequence)]
struct Written {
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT")]
    hash: AlgorithmIdentifierOwned,
    #[asn1(context_specific = "1", tag_mode = "EXPLICIT")]
    mgf: AlgorithmIdentifierOwned,
    #[asn1(context_specific = "2", tag_mode = "EXPLICIT")]
    salt_len: u32,
}

/// Parameters we can verify: a hash other than SHA-1 (RFC 4055's defaults are SHA-1
/// everywhere, which we do not accept), MGF1 over the same hash, trailer field 1. The salt
/// length is as written; which lengths a verifier takes is its own rule (certificates and CRLs:
/// the hash length; CMS: also the key's maximum, OpenSSL's default).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Pss {
    pub(crate) hash: HashAlgorithm,
    pub(crate) salt_len: usize,
}

/// Parses RSASSA-PSS-params; the error says why they were refused, in words that follow
/// "RSASSA-PSS " in a verdict.
pub(crate) fn parse(any: &der::Any) -> Result<Pss, String> {
    let p: Received = any.decode_as().map_err(|e| format!("parameters: {e}"))?;
    let hash = p
        .hash
        .as_ref()
        .and_then(|h| HashAlgorithm::from_oid(&h.oid))
        .filter(|h| *h != HashAlgorithm::Sha1)
        .ok_or("with a hash other than SHA-256/384/512")?;
    let mgf_hash = p
        .mgf
        .as_ref()
        .filter(|m| m.oid == oid::MGF1)
        .and_then(|m| m.parameters.as_ref())
        .and_then(|p| p.decode_as::<AlgorithmIdentifierOwned>().ok())
        .and_then(|h| HashAlgorithm::from_oid(&h.oid));
    if mgf_hash != Some(hash) {
        return Err("with a mask generation other than MGF1 over the same hash".into());
    }
    if p.trailer.unwrap_or(1) != 1 {
        return Err("with a trailer field other than 1".into());
    }
    Ok(Pss {
        hash,
        salt_len: p.salt_len.unwrap_or(20) as usize,
    })
}

fn hash_alg_id(h: HashAlgorithm) -> AlgorithmIdentifierOwned {
    AlgorithmIdentifierOwned {
        oid: h.oid(),
        parameters: None,
    }
}

// Encoding two AlgorithmIdentifiers and an INTEGER built from our own constants into memory
// cannot fail (`der` errors only on lengths past 256 MiB or on invalid input, and there is
// none here); a Result would push an impossible error into every caller.
#[allow(clippy::expect_used)]
pub(crate) fn encode(h: HashAlgorithm) -> der::Any {
    let p = Written {
        hash: hash_alg_id(h),
        mgf: AlgorithmIdentifierOwned {
            oid: oid::MGF1,
            parameters: Some(der::Any::encode_from(&hash_alg_id(h)).expect("static encoding")),
        },
        salt_len: h.len() as u32,
    };
    der::Any::encode_from(&p).expect("static encoding")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_we_write_is_what_we_read() {
        for h in [
            HashAlgorithm::Sha256,
            HashAlgorithm::Sha384,
            HashAlgorithm::Sha512,
        ] {
            assert_eq!(
                parse(&encode(h)),
                Ok(Pss {
                    hash: h,
                    salt_len: h.len()
                })
            );
        }
    }

    #[test]
    fn defaults_mean_sha1_and_are_refused() {
        let empty = der::Any::encode_from(&Received {
            hash: None,
            mgf: None,
            salt_len: None,
            trailer: None,
        })
        .unwrap();
        assert_eq!(
            parse(&empty),
            Err("with a hash other than SHA-256/384/512".to_string())
        );
    }
}
