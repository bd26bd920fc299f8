//! The S/MIME signed attributes a gateway cares about beyond RFC 5652's own: SMIMECapabilities
//! (RFC 8551 section 2.5.2) and SMIMEEncryptionKeyPreference (RFC 8551 section 2.5.3). Together
//! they tell a correspondent which ciphers we read and which certificate to encrypt to, which is
//! how a separate encryption certificate (the dual-certificate model) reaches the other side.

use der::asn1::ObjectIdentifier;
use der::{Decode, Encode};

use super::SignerId;
use super::asn1::{Tlv, children, read, retag, tlv};
use crate::oid;
use crate::pki::Cert;

/// One entry of SMIMECapabilities (RFC 8551 section 2.5.2): something the signer can decrypt,
/// listed in the signer's order of preference.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Capability {
    /// AES-256 in GCM mode, AuthEnvelopedData (RFC 5083, RFC 5084).
    Aes256Gcm,
    /// AES-128 in GCM mode, AuthEnvelopedData (RFC 5083, RFC 5084).
    Aes128Gcm,
    /// AES-256-CBC, EnvelopedData (RFC 3565).
    Aes256Cbc,
    /// AES-192-CBC, EnvelopedData (RFC 3565).
    Aes192Cbc,
    /// AES-128-CBC, EnvelopedData (RFC 3565).
    Aes128Cbc,
    /// RSAES-OAEP key transport with SHA-256 and MGF1-SHA-256 (RFC 8017 section 7.1, parameters
    /// as RFC 4055 section 4.1 encodes them). OAEP with other hashes (including the parameterless
    /// SHA-1 default) is reported as `Other(id-RSAES-OAEP)`, since we would not produce it.
    RsaOaep,
    /// Anything else, by capabilityID (parameters are not kept).
    Other(ObjectIdentifier),
}

impl Capability {
    /// The capabilityID.
    pub fn oid(&self) -> ObjectIdentifier {
        match self {
            Self::Aes256Gcm => oid::AES256_GCM,
            Self::Aes128Gcm => oid::AES128_GCM,
            Self::Aes256Cbc => oid::AES256_CBC,
            Self::Aes192Cbc => oid::AES192_CBC,
            Self::Aes128Cbc => oid::AES128_CBC,
            Self::RsaOaep => oid::RSAES_OAEP,
            Self::Other(o) => *o,
        }
    }

    fn from_entry(id: ObjectIdentifier, params: Option<Tlv<'_>>) -> Self {
        match id {
            o if o == oid::AES256_GCM => Self::Aes256Gcm,
            o if o == oid::AES128_GCM => Self::Aes128Gcm,
            o if o == oid::AES256_CBC => Self::Aes256Cbc,
            o if o == oid::AES192_CBC => Self::Aes192Cbc,
            o if o == oid::AES128_CBC => Self::Aes128Cbc,
            o if o == oid::RSAES_OAEP && params.is_some_and(is_oaep_sha256) => Self::RsaOaep,
            o => Self::Other(o),
        }
    }
}

fn oid_der(o: ObjectIdentifier) -> Vec<u8> {
    // An ObjectIdentifier always encodes; the fallback is never taken.
    o.to_der().unwrap_or_default()
}

/// AlgorithmIdentifier { sha256, NULL }: the form OpenSSL writes inside RSASSA-PSS and
/// RSAES-OAEP parameters (RFC 4055 section 2.1 requires readers to accept it and absent).
fn sha256_alg_id() -> Vec<u8> {
    tlv(0x30, &[oid_der(oid::SHA256), vec![0x05, 0x00]].concat())
}

/// RSAES-OAEP-params with SHA-256 and MGF1-SHA-256 (RFC 4055 section 4.1; EXPLICIT tags).
fn oaep_sha256_params() -> Vec<u8> {
    let hash = tlv(0xa0, &sha256_alg_id());
    let mgf = tlv(
        0xa1,
        &tlv(0x30, &[oid_der(oid::MGF1), sha256_alg_id()].concat()),
    );
    tlv(0x30, &[hash, mgf].concat())
}

/// Whether an AlgorithmIdentifier's first component is SHA-256.
fn names_sha256(alg: &[u8]) -> bool {
    read(alg)
        .ok()
        .and_then(|(t, _)| children(t.content).ok())
        .and_then(|c| c.first().map(|o| o.raw.to_vec()))
        .is_some_and(|o| ObjectIdentifier::from_der(&o).ok() == Some(oid::SHA256))
}

fn is_oaep_sha256(params: Tlv<'_>) -> bool {
    let Ok(fields) = children(params.content) else {
        return false;
    };
    let field = |tag: u8| fields.iter().find(|f| f.tag == tag).map(|f| f.content);
    let hash_ok = field(0xa0).is_some_and(names_sha256);
    let mgf_ok = field(0xa1).is_some_and(|mgf| {
        read(mgf)
            .ok()
            .and_then(|(seq, _)| children(seq.content).ok())
            .is_some_and(|parts| {
                parts.len() == 2
                    && ObjectIdentifier::from_der(parts[0].raw).ok() == Some(oid::MGF1)
                    && names_sha256(parts[1].raw)
            })
    });
    hash_ok && mgf_ok
}

/// Encodes SMIMECapabilities (`SEQUENCE OF SMIMECapability`, RFC 8551 section 2.5.2) in the
/// order given, which is the order of preference. Ciphers carry no parameters; RSA-OAEP carries
/// its SHA-256 parameters so a reader knows which OAEP we mean.
pub fn encode_capabilities(caps: &[Capability]) -> Vec<u8> {
    let entries: Vec<Vec<u8>> = caps
        .iter()
        .map(|c| {
            let mut body = oid_der(c.oid());
            if *c == Capability::RsaOaep {
                body.extend(oaep_sha256_params());
            }
            tlv(0x30, &body)
        })
        .collect();
    tlv(0x30, &entries.concat())
}

/// Reads SMIMECapabilities, keeping the sender's order. Entries that cannot be read are left
/// out rather than failing the signature: the attribute is advice about what to send next.
pub fn decode_capabilities(der: &[u8]) -> Vec<Capability> {
    let Ok((seq, _)) = read(der) else {
        return Vec::new();
    };
    if seq.tag != 0x30 {
        return Vec::new();
    }
    let Ok(entries) = children(seq.content) else {
        return Vec::new();
    };
    entries
        .iter()
        .filter(|e| e.tag == 0x30)
        .filter_map(|e| {
            let parts = children(e.content).ok()?;
            let id = ObjectIdentifier::from_der(parts.first()?.raw).ok()?;
            Some(Capability::from_entry(id, parts.get(1).copied()))
        })
        .collect()
}

/// SMIMEEncryptionKeyPreference naming `cert` by issuer and serial number: the `[0] IMPLICIT
/// IssuerAndSerialNumber` choice (RFC 8551 section 2.5.3; the module uses implicit tags).
pub(super) fn encode_key_preference(cert: &Cert) -> Result<Vec<u8>, der::Error> {
    let isn = cms::cert::IssuerAndSerialNumber {
        issuer: cert.issuer().clone(),
        serial_number: cert.x509().tbs_certificate().serial_number().clone(),
    };
    Ok(retag(&isn.to_der()?, 0xa0))
}

/// Reads SMIMEEncryptionKeyPreference: `[0]` issuerAndSerialNumber, `[1]` RecipientKeyIdentifier
/// (its subjectKeyIdentifier) or `[2]` subjectAltKeyIdentifier. `None` when unreadable.
pub(super) fn decode_key_preference(value: &[u8]) -> Option<SignerId> {
    let (t, _) = read(value).ok()?;
    match t.tag {
        0xa0 => {
            let isn = cms::cert::IssuerAndSerialNumber::from_der(&retag(t.raw, 0x30)).ok()?;
            Some(SignerId::IssuerAndSerial {
                issuer: isn.issuer,
                serial: isn.serial_number.as_bytes().to_vec(),
            })
        }
        0xa1 => {
            let first = *children(t.content).ok()?.first()?;
            (first.tag == 0x04).then(|| SignerId::SubjectKeyId(first.content.to_vec()))
        }
        0x82 => Some(SignerId::SubjectKeyId(t.content.to_vec())),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capabilities_round_trip_in_order() {
        let caps = vec![
            Capability::Aes128Gcm,
            Capability::RsaOaep,
            Capability::Aes256Cbc,
            Capability::Other(oid::DES_EDE3_CBC),
            Capability::Aes192Cbc,
        ];
        assert_eq!(decode_capabilities(&encode_capabilities(&caps)), caps);
        assert!(decode_capabilities(&[0x30, 0x03, 0x30, 0x01]).is_empty());
        assert!(decode_capabilities(b"garbage").is_empty());
        // OAEP without parameters means SHA-1 (RFC 4055 defaults): not the OAEP we write.
        let sha1_oaep = tlv(0x30, &tlv(0x30, &oid_der(oid::RSAES_OAEP)));
        assert_eq!(
            decode_capabilities(&sha1_oaep),
            [Capability::Other(oid::RSAES_OAEP)]
        );
    }

    #[test]
    fn key_preference_choices() {
        let ski = [0x82, 0x03, 1, 2, 3];
        assert_eq!(
            decode_key_preference(&ski),
            Some(SignerId::SubjectKeyId(vec![1, 2, 3]))
        );
        let rki = [0xa1, 0x05, 0x04, 0x03, 4, 5, 6];
        assert_eq!(
            decode_key_preference(&rki),
            Some(SignerId::SubjectKeyId(vec![4, 5, 6]))
        );
        assert_eq!(decode_key_preference(&[0xa0, 0x00]), None);
        assert_eq!(decode_key_preference(&[0x05, 0x00]), None);
    }
}
