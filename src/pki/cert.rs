//! A parsed certificate with the questions the gateway keeps asking of it.
//!
//! x509-cert gives the ASN.1 view; [`Cert`] keeps the original DER next to it (signatures are over
//! the bytes as received, never over a re-encoding) and answers "which addresses", "which usages",
//! "is it a CA" in one place so path validation, issuance and the CLI agree.

use std::fmt;
use std::path::Path;

use der::{Decode, Encode, Reader, SliceReader};
use spki::SubjectPublicKeyInfoOwned;
use x509_cert::Certificate;
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::{
    AuthorityKeyIdentifier, BasicConstraints, ExtendedKeyUsage, KeyUsage, NameConstraints,
    SubjectAltName, SubjectKeyIdentifier,
};

use crate::oid;
use crate::pki::keys::HashAlgorithm;

/// Why bytes could not be read as certificates.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CertError {
    /// The DER does not decode as an X.509 certificate.
    #[error("{source_name}: not a valid X.509 certificate: {reason}")]
    Malformed {
        /// File name or other description of where the bytes came from.
        source_name: String,
        /// The decoder's complaint.
        reason: String,
    },
    /// The input held no certificate at all.
    #[error(
        "{0}: no certificate found (expected PEM 'BEGIN CERTIFICATE' blocks or one DER certificate)"
    )]
    Empty(String),
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// An extension is present but cannot be decoded (RFC 5280 says reject such certificates).
    #[error("certificate {subject}: extension {oid} is malformed: {reason}")]
    BadExtension {
        /// Subject of the certificate.
        subject: String,
        /// The extension.
        oid: der::asn1::ObjectIdentifier,
        /// The decoder's complaint.
        reason: String,
    },
}

/// A certificate: its exact DER bytes, the decoded structure and its SHA-256 fingerprint.
#[derive(Clone)]
pub struct Cert {
    der: Vec<u8>,
    x509: Certificate,
    fingerprint: [u8; 32],
    /// notBefore and notAfter, Unix seconds, read from the DER by [`validity_of`] (negative
    /// before 1970).
    not_before: i64,
    not_after: i64,
}

impl fmt::Debug for Cert {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Cert({}, serial {})", self.subject(), self.serial_hex())
    }
}

impl PartialEq for Cert {
    fn eq(&self, other: &Self) -> bool {
        self.fingerprint == other.fingerprint
    }
}
impl Eq for Cert {}

impl Cert {
    /// Parses one DER certificate; `source_name` is used in error messages.
    ///
    /// Validity times from 1950 to 1969 (UTCTime years 50-69, RFC 5280 section 4.1.2.5.1) are
    /// read, although the `der` crate's time types start at 1970: such a certificate is decoded
    /// with those times replaced by 1970-01-01 in a private copy, and [`Self::not_before`] and
    /// [`Self::not_after`] give the real times. [`Self::x509`] then shows the stand-in time;
    /// everything signed or hashed uses the DER as received.
    pub fn from_der_named(der: &[u8], source_name: &str) -> Result<Self, CertError> {
        let malformed = |e: der::Error| CertError::Malformed {
            source_name: source_name.to_string(),
            reason: e.to_string(),
        };
        let times = validity_of(der);
        let x509 = match Certificate::from_der(der) {
            Ok(c) => c,
            Err(e) => match times.as_ref().and_then(|t| before_1970_stand_in(der, t)) {
                Some(copy) => Certificate::from_der(&copy).map_err(|_| malformed(e))?,
                None => return Err(malformed(e)),
            },
        };
        let validity = x509.tbs_certificate().validity();
        let (not_before, not_after) = match &times {
            Some([(_, nb), (_, na)]) => (*nb, *na),
            None => (unix_of(&validity.not_before), unix_of(&validity.not_after)),
        };
        let mut fingerprint = [0u8; 32];
        fingerprint.copy_from_slice(&HashAlgorithm::Sha256.digest(der));
        Ok(Self {
            der: der.to_vec(),
            x509,
            fingerprint,
            not_before,
            not_after,
        })
    }

    /// Parses one DER certificate.
    pub fn from_der(der: &[u8]) -> Result<Self, CertError> {
        Self::from_der_named(der, "certificate")
    }

    /// Wraps a decoded certificate (re-encoding it to DER).
    pub fn from_x509(x509: Certificate) -> Result<Self, CertError> {
        let der = x509.to_der().map_err(|e| CertError::Malformed {
            source_name: "certificate".into(),
            reason: e.to_string(),
        })?;
        Self::from_der(&der)
    }

    /// The certificate exactly as received.
    pub fn der(&self) -> &[u8] {
        &self.der
    }

    /// The decoded structure (with a stand-in for validity times before 1970: see
    /// [`Self::from_der_named`]; ask [`Self::not_before`] and [`Self::not_after`] for times).
    pub fn x509(&self) -> &Certificate {
        &self.x509
    }

    /// SHA-256 over the DER: the identity of a certificate in the directory and in caches.
    pub fn fingerprint(&self) -> [u8; 32] {
        self.fingerprint
    }

    /// The fingerprint as lowercase hex.
    pub fn fingerprint_hex(&self) -> String {
        hex::encode(self.fingerprint)
    }

    /// The serial number's content bytes.
    pub fn serial(&self) -> &[u8] {
        self.x509.tbs_certificate().serial_number().as_bytes()
    }

    /// The serial number as lowercase hex (the form `openssl x509 -serial` prints, lowercased).
    pub fn serial_hex(&self) -> String {
        hex::encode(self.serial())
    }

    /// Subject distinguished name.
    pub fn subject(&self) -> &x509_cert::name::Name {
        self.x509.tbs_certificate().subject()
    }

    /// Issuer distinguished name.
    pub fn issuer(&self) -> &x509_cert::name::Name {
        self.x509.tbs_certificate().issuer()
    }

    /// Subject as an RFC 4514 string.
    pub fn subject_string(&self) -> String {
        self.subject().to_string()
    }

    /// Issuer as an RFC 4514 string.
    pub fn issuer_string(&self) -> String {
        self.issuer().to_string()
    }

    /// Start of validity, seconds since the Unix epoch (negative before 1970).
    pub fn not_before(&self) -> i64 {
        self.not_before
    }

    /// End of validity, seconds since the Unix epoch (negative before 1970).
    pub fn not_after(&self) -> i64 {
        self.not_after
    }

    /// The subject public key.
    pub fn spki(&self) -> &SubjectPublicKeyInfoOwned {
        self.x509.tbs_certificate().subject_public_key_info()
    }

    /// The raw bytes of the `tbsCertificate`, exactly as signed.
    pub fn tbs_der(&self) -> &[u8] {
        raw_first_element(&self.der).unwrap_or(&[])
    }

    /// The issuer's signature over [`Self::tbs_der`].
    pub fn signature_bytes(&self) -> &[u8] {
        self.x509.signature().raw_bytes()
    }

    /// Whether subject and issuer are the same name (a root or a self-issued key rollover).
    pub fn is_self_issued(&self) -> bool {
        self.subject() == self.issuer()
    }

    fn ext<'a, T: Decode<'a, Error = der::Error> + const_oid::AssociatedOid>(
        &'a self,
    ) -> Result<Option<(bool, T)>, CertError> {
        self.x509
            .tbs_certificate()
            .get_extension::<T>()
            .map_err(|e| CertError::BadExtension {
                subject: self.subject_string(),
                oid: T::OID,
                reason: e.to_string(),
            })
    }

    /// Checks that every extension we interpret decodes; path validation calls this so a broken
    /// extension is a rejection rather than a silently ignored constraint.
    pub fn check_extensions(&self) -> Result<(), CertError> {
        self.key_usage()?;
        self.extended_key_usage()?;
        self.basic_constraints()?;
        self.name_constraints()?;
        self.subject_alt_name()?;
        self.subject_key_id()?;
        self.authority_key_id()?;
        Ok(())
    }

    /// keyUsage, when present.
    pub fn key_usage(&self) -> Result<Option<KeyUsage>, CertError> {
        Ok(self.ext::<KeyUsage>()?.map(|(_, k)| k))
    }

    /// extKeyUsage purposes, when present.
    pub fn extended_key_usage(
        &self,
    ) -> Result<Option<Vec<der::asn1::ObjectIdentifier>>, CertError> {
        Ok(self.ext::<ExtendedKeyUsage>()?.map(|(_, k)| k.0))
    }

    /// basicConstraints, when present.
    pub fn basic_constraints(&self) -> Result<Option<BasicConstraints>, CertError> {
        Ok(self.ext::<BasicConstraints>()?.map(|(_, k)| k))
    }

    /// Whether this certificate may issue others (basicConstraints cA = TRUE).
    pub fn is_ca(&self) -> bool {
        matches!(self.basic_constraints(), Ok(Some(bc)) if bc.ca)
    }

    /// nameConstraints, when present.
    pub fn name_constraints(&self) -> Result<Option<NameConstraints>, CertError> {
        Ok(self.ext::<NameConstraints>()?.map(|(_, k)| k))
    }

    /// subjectAltName entries, when present.
    pub fn subject_alt_name(&self) -> Result<Option<Vec<GeneralName>>, CertError> {
        Ok(self.ext::<SubjectAltName>()?.map(|(_, k)| k.0))
    }

    /// subjectKeyIdentifier, when present.
    pub fn subject_key_id(&self) -> Result<Option<Vec<u8>>, CertError> {
        Ok(self
            .ext::<SubjectKeyIdentifier>()?
            .map(|(_, k)| k.0.as_bytes().to_vec()))
    }

    /// authorityKeyIdentifier's keyIdentifier, when present.
    pub fn authority_key_id(&self) -> Result<Option<Vec<u8>>, CertError> {
        Ok(self
            .ext::<AuthorityKeyIdentifier>()?
            .and_then(|(_, k)| k.key_identifier.map(|o| o.as_bytes().to_vec())))
    }

    /// The e-mail addresses the certificate is for: rfc822Name entries of the subjectAltName, or,
    /// only when there is no such entry, emailAddress attributes of the subject (RFC 8550 section 3
    /// allows the legacy form for reading). Lowercased, since the domain part is case-insensitive
    /// and no mail system we meet treats the local part case-sensitively.
    pub fn email_addresses(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .subject_alt_name()
            .ok()
            .flatten()
            .unwrap_or_default()
            .into_iter()
            .filter_map(|g| match g {
                GeneralName::Rfc822Name(s) => Some(s.as_str().to_ascii_lowercase()),
                _ => None,
            })
            .collect();
        if out.is_empty() {
            for atv in self.subject().iter() {
                if atv.oid == oid::AT_EMAIL_ADDRESS
                    && let Ok(s) = atv.value.decode_as::<der::asn1::Ia5String>()
                {
                    out.push(s.as_str().to_ascii_lowercase());
                }
            }
        }
        out
    }

    /// The subject's common name, if any (for display).
    pub fn common_name(&self) -> Option<String> {
        self.subject()
            .common_name()
            .ok()
            .flatten()
            .map(String::from)
    }

    /// PEM encoding.
    pub fn to_pem(&self) -> String {
        pem_encode("CERTIFICATE", &self.der)
    }
}

/// Whether two distinguished names denote the same entity, for chaining a certificate to its
/// issuer and a CRL to its issuer (RFC 5280 section 7.1).
///
/// Identical encodings match; otherwise string attributes are compared after the
/// simplifications RFC 5280 section 7.1 asks for (case folding, insignificant space removal),
/// regardless of which string type encodes them, so a CA that re-encodes its own name from
/// PrintableString to UTF8String still chains.
pub fn same_name(a: &x509_cert::name::Name, b: &x509_cert::name::Name) -> bool {
    if a == b {
        return true;
    }
    if a.len() != b.len() {
        return false;
    }
    a.iter_rdn().zip(b.iter_rdn()).all(|(ra, rb)| {
        ra.len() == rb.len() && ra.iter().all(|x| rb.iter().any(|y| same_attribute(x, y)))
    })
}

/// One attribute of a distinguished name compared as [`same_name`] describes.
pub fn same_attribute(
    x: &x509_cert::attr::AttributeTypeAndValue,
    y: &x509_cert::attr::AttributeTypeAndValue,
) -> bool {
    if x.oid != y.oid {
        return false;
    }
    if x.value == y.value {
        return true;
    }
    match (attribute_text(&x.value), attribute_text(&y.value)) {
        (Some(a), Some(b)) => a == b,
        _ => false,
    }
}

/// The text of a string-valued attribute, case-folded with leading, trailing and repeated
/// interior spaces removed (the LDAP string preparation RFC 5280 section 7.1 points to, without
/// its Unicode normalisation step).
fn attribute_text(v: &der::Any) -> Option<String> {
    use der::{Tag, Tagged};
    let bytes = v.value();
    let raw = match v.tag() {
        Tag::Utf8String | Tag::PrintableString | Tag::Ia5String | Tag::VisibleString => {
            String::from_utf8(bytes.to_vec()).ok()?
        }
        Tag::TeletexString => bytes.iter().map(|&b| char::from(b)).collect(),
        Tag::BmpString => {
            if !bytes.len().is_multiple_of(2) {
                return None;
            }
            let units: Vec<u16> = bytes
                .chunks_exact(2)
                .map(|c| u16::from_be_bytes([c[0], c[1]]))
                .collect();
            String::from_utf16(&units).ok()?
        }
        _ => return None,
    };
    Some(
        raw.split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .to_lowercase(),
    )
}

fn unix_of(t: &x509_cert::time::Time) -> i64 {
    i64::try_from(t.to_unix_duration().as_secs()).unwrap_or(i64::MAX)
}

/// Reads a DER UTCTime or GeneralizedTime value (the content octets) as Unix seconds, negative
/// before 1970. UTCTime years 50-99 are 19YY and 00-49 are 20YY (RFC 5280 section 4.1.2.5.1);
/// both forms must be in Zulu time with seconds and, for GeneralizedTime, no fraction (RFC 5280
/// sections 4.1.2.5.1 and 4.1.2.5.2).
pub fn parse_time(tag: der::Tag, value: &[u8]) -> Option<i64> {
    let digits = |r: std::ops::Range<usize>| -> Option<u32> {
        let b = value.get(r)?;
        if !b.iter().all(u8::is_ascii_digit) {
            return None;
        }
        std::str::from_utf8(b).ok()?.parse().ok()
    };
    let (year, rest) = match (tag, value.len()) {
        (der::Tag::UtcTime, 13) => {
            let yy = i32::try_from(digits(0..2)?).ok()?;
            (if yy >= 50 { 1900 + yy } else { 2000 + yy }, 2)
        }
        (der::Tag::GeneralizedTime, 15) => (i32::try_from(digits(0..4)?).ok()?, 4),
        _ => return None,
    };
    if value.last() != Some(&b'Z') {
        return None;
    }
    let month = time::Month::try_from(u8::try_from(digits(rest..rest + 2)?).ok()?).ok()?;
    let date = time::Date::from_calendar_date(
        year,
        month,
        u8::try_from(digits(rest + 2..rest + 4)?).ok()?,
    )
    .ok()?;
    let t = time::Time::from_hms(
        u8::try_from(digits(rest + 4..rest + 6)?).ok()?,
        u8::try_from(digits(rest + 6..rest + 8)?).ok()?,
        u8::try_from(digits(rest + 8..rest + 10)?).ok()?,
    )
    .ok()?;
    Some(
        time::PrimitiveDateTime::new(date, t)
            .assume_utc()
            .unix_timestamp(),
    )
}

/// notBefore and notAfter of a DER certificate, each as (byte range of the time's content
/// octets, Unix seconds), read without the `der` crate's time types.
type ValidityTimes = [(std::ops::Range<usize>, i64); 2];

fn validity_of(cert: &[u8]) -> Option<ValidityTimes> {
    let mut r = SliceReader::new(cert).ok()?;
    let skip = |r: &mut SliceReader<'_>| -> Option<der::Header> {
        let h = der::Header::decode(r).ok()?;
        r.read_slice(h.length()).ok()?;
        Some(h)
    };
    der::Header::decode(&mut r).ok()?; // Certificate
    der::Header::decode(&mut r).ok()?; // tbsCertificate
    if der::Tag::peek(&r).ok()?.is_context_specific() {
        skip(&mut r)?; // [0] version
    }
    skip(&mut r)?; // serialNumber
    skip(&mut r)?; // signature
    skip(&mut r)?; // issuer
    der::Header::decode(&mut r).ok()?; // validity
    let mut one = || -> Option<(std::ops::Range<usize>, i64)> {
        let h = der::Header::decode(&mut r).ok()?;
        let start = usize::try_from(r.position()).ok()?;
        let value = r.read_slice(h.length()).ok()?;
        let t = parse_time(h.tag(), value)?;
        Some((start..start + value.len(), t))
    };
    Some([one()?, one()?])
}

/// A copy of `cert` whose validity times before 1970 are replaced by 1970-01-01 00:00:00 of
/// the same encoded length, so that the `der` crate (whose times start at 1970) decodes it;
/// `None` when no time is before 1970.
fn before_1970_stand_in(cert: &[u8], times: &ValidityTimes) -> Option<Vec<u8>> {
    let mut copy = cert.to_vec();
    let mut changed = false;
    for (range, t) in times {
        if *t < 0 {
            let stand_in: &[u8] = match range.len() {
                13 => b"700101000000Z",
                15 => b"19700101000000Z",
                _ => return None,
            };
            copy.get_mut(range.clone())?.copy_from_slice(stand_in);
            changed = true;
        }
    }
    changed.then_some(copy)
}

/// A Unix time as `YYYY-MM-DD HH:MM:SS UTC`, for messages a mail administrator reads.
pub fn format_time(unix: i64) -> String {
    let fmt =
        time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second] UTC");
    time::OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| t.format(&fmt).ok())
        .unwrap_or_else(|| format!("@{unix}"))
}

/// Encodes `der` as one PEM block with the given label (64-column base64, LF line ends).
pub fn pem_encode(label: &str, der: &[u8]) -> String {
    der::pem::encode_string(label, der::pem::LineEnding::LF, der).unwrap_or_default()
}

/// Slices out the first TLV inside an outer SEQUENCE (the signed part of a certificate, CRL or
/// CSR), so signatures are checked over the received bytes rather than a re-encoding.
pub fn raw_first_element(outer: &[u8]) -> Option<&[u8]> {
    let mut r = SliceReader::new(outer).ok()?;
    let header = der::Header::decode(&mut r).ok()?;
    let _ = header;
    let start = usize::try_from(r.position()).ok()?;
    let inner_header = der::Header::decode(&mut r).ok()?;
    let hdr_len = usize::try_from(r.position()).ok()? - start;
    let body_len = usize::try_from(inner_header.length()).ok()?;
    outer.get(start..start + hdr_len + body_len)
}

/// Parses every certificate in `bytes`: one or more PEM blocks, or a single DER certificate.
pub fn parse_certs(bytes: &[u8], source_name: &str) -> Result<Vec<Cert>, CertError> {
    if looks_like_pem(bytes) {
        let mut out = Vec::new();
        for (label, der) in pem_blocks(bytes) {
            if label == "CERTIFICATE"
                || label == "X509 CERTIFICATE"
                || label == "TRUSTED CERTIFICATE"
            {
                out.push(Cert::from_der_named(&der, source_name)?);
            }
        }
        if out.is_empty() {
            return Err(CertError::Empty(source_name.to_string()));
        }
        Ok(out)
    } else if bytes.is_empty() {
        Err(CertError::Empty(source_name.to_string()))
    } else {
        Ok(vec![Cert::from_der_named(bytes, source_name)?])
    }
}

/// Reads every certificate in a file (PEM or DER); errors name the file.
pub fn read_certs_file(path: &Path) -> Result<Vec<Cert>, CertError> {
    let bytes = std::fs::read(path).map_err(|source| CertError::Io {
        path: path.display().to_string(),
        source,
    })?;
    parse_certs(&bytes, &path.display().to_string())
}

/// Whether the bytes look like PEM text rather than DER.
pub fn looks_like_pem(bytes: &[u8]) -> bool {
    bytes.windows(11).take(4096).any(|w| w == b"-----BEGIN ")
}

/// Every PEM block in `bytes` (label, decoded DER), skipping text between blocks and blocks whose
/// base64 is broken (they simply do not appear; callers check for what they expected).
pub fn pem_blocks(bytes: &[u8]) -> Vec<(String, Vec<u8>)> {
    let text = String::from_utf8_lossy(bytes);
    let mut out = Vec::new();
    let mut rest: &str = &text;
    while let Some(start) = rest.find("-----BEGIN ") {
        let after = &rest[start..];
        let Some(end_rel) = after.find("-----END ") else {
            break;
        };
        let Some(close) = after[end_rel + 9..].find("-----") else {
            break;
        };
        let block_end = end_rel + 9 + close + 5;
        let block = &after[..block_end];
        if let Ok((label, der)) = der::pem::decode_vec(block.as_bytes()) {
            out.push((label.to_string(), der));
        } else if let Some(label) = block
            .strip_prefix("-----BEGIN ")
            .and_then(|b| b.split("-----").next())
        {
            // Tolerate CRLF and trailing spaces by normalising and retrying once.
            let norm: String = block
                .lines()
                .map(|l| l.trim_end())
                .collect::<Vec<_>>()
                .join("\n");
            if let Ok((_, der)) = der::pem::decode_vec(norm.as_bytes()) {
                out.push((label.to_string(), der));
            }
        }
        rest = &after[block_end..];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pki::testpki::{DAY, KeyKind, Pki, now};

    /// 1965-01-01 00:00:00 UTC.
    const JAN_1965: i64 = -157_766_400;

    #[test]
    fn times_parse_both_forms_and_both_centuries() {
        use der::Tag::{GeneralizedTime, UtcTime};
        assert_eq!(parse_time(UtcTime, b"650101000000Z"), Some(JAN_1965));
        assert_eq!(parse_time(UtcTime, b"500101000000Z"), Some(-631_152_000));
        assert_eq!(parse_time(UtcTime, b"491231235959Z"), Some(2_524_607_999));
        assert_eq!(parse_time(UtcTime, b"700101000000Z"), Some(0));
        assert_eq!(
            parse_time(GeneralizedTime, b"19650101000000Z"),
            Some(JAN_1965)
        );
        assert_eq!(
            parse_time(GeneralizedTime, b"20500101000000Z"),
            Some(2_524_608_000)
        );
        for bad in [
            &b"6501010000Z"[..],
            b"650101000000+",
            b"651301000000Z",
            b"6501010000001",
        ] {
            assert_eq!(parse_time(UtcTime, bad), None, "{bad:?}");
        }
    }

    /// Issue 12: a certificate whose notBefore is in 1965 (UTCTime "65...", RFC 5280 section
    /// 4.1.2.5.1) could not be read at all, because the der crate's times start at 1970.
    #[test]
    fn certificate_valid_from_1965_loads_with_its_real_dates() {
        let pki = Pki::new();
        let ca = pki.root("ca", "/CN=Old Dates CA", KeyKind::P256, None);
        let leaf = pki.issue(
            &ca,
            "old",
            "/CN=Old Dates",
            &pki.leaf_ext("old@acme.test"),
            KeyKind::P256,
            Some((JAN_1965, now() + 30 * DAY)),
        );
        let text = pki.run(&[
            "x509",
            "-in",
            leaf.to_str().unwrap(),
            "-noout",
            "-startdate",
        ]);
        assert!(text.contains("1965"), "{text}");
        let c = pki.cert(&leaf);
        assert_eq!(c.not_before(), JAN_1965);
        assert!(c.not_after() > now());
        assert_eq!(c.email_addresses(), vec!["old@acme.test".to_string()]);
        // The bytes are the bytes received: fingerprint and signed part are of the original.
        let der = std::fs::read_to_string(&leaf).unwrap();
        let (_, original) = der::pem::decode_vec(der.as_bytes()).unwrap();
        assert_eq!(c.der(), &original[..]);
        assert!(c.tbs_der().windows(13).any(|w| w == b"650101000000Z"));
    }
}
