//! OCSP (RFC 6960): one request per certificate, over HTTP GET when the encoded request is
//! short (appendix A.1: under 255 bytes) and POST otherwise, and the checks that make a
//! response an answer: a successful basic response (section 4.2.1) for our CertID, signed by
//! the certificate's issuer or by a responder the issuer delegated to with id-kp-OCSPSigning
//! (section 4.2.2.2), current (thisUpdate not in the future, nextUpdate not past).
//!
//! The structures are written here with `der` derive: RustCrypto's `x509-ocsp` 0.2 is built on
//! der 0.7 / x509-cert 0.2, not the der 0.8 / x509-cert 0.3 the rest of the crate uses. The
//! CertID hashes with SHA-1, as RFC 5019 section 2.1.1 asks of clients (an identifier, not a
//! signature: collisions give nothing away). No nonce is sent (RFC 5019 section 4): responses
//! are then cacheable by the responder and by us until nextUpdate.

use std::time::Duration;

use der::asn1::{BitString, GeneralizedTime, ObjectIdentifier, OctetString};
use der::{Any, Decode, Encode, Enumerated, Sequence, Tag, Tagged};
use sha1::Digest;
use spki::AlgorithmIdentifierOwned;
use x509_cert::ext::Extensions;
use x509_cert::ext::pkix::AuthorityInfoAccessSyntax;
use x509_cert::ext::pkix::CrlReason;
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::serial_number::SerialNumber;

use crate::oid;
use crate::pki::cert::{Cert, same_name};
use crate::pki::fetch::{FetchError, MAX_OCSP_BYTES, http_get, http_host, http_post};
use crate::pki::keys::verify_signature;
use crate::pki::revocation::RevocationReason;

/// How far a responder's clock may be ahead of ours.
const CLOCK_SKEW: i64 = 300;
/// How long a response without nextUpdate is used (RFC 5019 section 2.2.4: "newer information
/// is always available"; we ask again after this).
const NO_NEXT_UPDATE_TTL: i64 = 3600;

/// `CertID`, RFC 6960 section 4.1.1.
#[derive(Clone, Debug, PartialEq, Eq, Sequence)]
struct CertId {
    hash_algorithm: AlgorithmIdentifierOwned,
    issuer_name_hash: OctetString,
    issuer_key_hash: OctetString,
    serial_number: SerialNumber,
}

/// `Request`, without singleRequestExtensions.
#[derive(Clone, Debug, Sequence)]
struct Request {
    req_cert: CertId,
}

/// `TBSRequest`, version v1 (the DEFAULT, so absent), no requestorName or extensions.
#[derive(Clone, Debug, Sequence)]
struct TbsRequest {
    request_list: Vec<Request>,
}

/// `OCSPRequest`, unsigned.
#[derive(Clone, Debug, Sequence)]
struct OcspRequest {
    tbs_request: TbsRequest,
}

/// `OCSPResponseStatus`, RFC 6960 section 4.2.1.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Enumerated)]
#[repr(u32)]
enum ResponseStatus {
    Successful = 0,
    MalformedRequest = 1,
    InternalError = 2,
    TryLater = 3,
    SigRequired = 5,
    Unauthorized = 6,
}

#[derive(Clone, Debug, Sequence)]
struct ResponseBytes {
    response_type: ObjectIdentifier,
    response: OctetString,
}

#[derive(Clone, Debug, Sequence)]
struct OcspResponse {
    response_status: ResponseStatus,
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT", optional = "true")]
    response_bytes: Option<ResponseBytes>,
}

#[derive(Clone, Debug, Sequence)]
struct SingleResponse {
    cert_id: CertId,
    /// `CertStatus`: [0] IMPLICIT NULL good, [1] IMPLICIT RevokedInfo, [2] IMPLICIT unknown.
    cert_status: Any,
    this_update: GeneralizedTime,
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT", optional = "true")]
    next_update: Option<GeneralizedTime>,
    #[asn1(context_specific = "1", tag_mode = "EXPLICIT", optional = "true")]
    single_extensions: Option<Extensions>,
}

#[derive(Clone, Debug, Sequence)]
struct ResponseData {
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT", optional = "true")]
    version: Option<u8>,
    /// `ResponderID` (by name or by key hash); the signature decides, not this.
    responder_id: Any,
    produced_at: GeneralizedTime,
    responses: Vec<SingleResponse>,
    #[asn1(context_specific = "1", tag_mode = "EXPLICIT", optional = "true")]
    response_extensions: Option<Extensions>,
}

#[derive(Clone, Debug, Sequence)]
struct BasicOcspResponse {
    tbs_response_data: ResponseData,
    signature_algorithm: AlgorithmIdentifierOwned,
    signature: BitString,
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT", optional = "true")]
    certs: Option<Vec<x509_cert::Certificate>>,
}

/// What a responder said about one certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OcspStatus {
    /// Not revoked.
    Good,
    /// Revoked at `revoked_at` (Unix seconds).
    Revoked {
        /// revocationTime.
        revoked_at: i64,
        /// revocationReason, when given.
        reason: Option<RevocationReason>,
    },
    /// The responder does not know the certificate.
    Unknown,
}

/// A verified answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OcspAnswer {
    /// The status.
    pub status: OcspStatus,
    /// thisUpdate, Unix seconds.
    pub this_update: i64,
    /// Until when it may be used, Unix seconds (nextUpdate, or thisUpdate plus an hour).
    pub valid_until: i64,
}

/// Why an OCSP exchange gave no answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OcspError {
    /// The HTTP exchange failed.
    #[error(transparent)]
    Fetch(#[from] FetchError),
    /// The response is not one we can use.
    #[error("OCSP response from {url}: {reason}")]
    Bad {
        /// The responder.
        url: String,
        /// What is wrong.
        reason: String,
    },
}

/// The http OCSP responders of a certificate's authorityInfoAccess (RFC 5280 section 4.2.2.1).
pub fn responder_urls(c: &Cert) -> Vec<String> {
    let Ok(Some((_, aia))) = c
        .x509()
        .tbs_certificate()
        .get_extension::<AuthorityInfoAccessSyntax>()
    else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for d in aia.0 {
        if d.access_method != oid::AD_OCSP {
            continue;
        }
        if let GeneralName::UniformResourceIdentifier(u) = d.access_location {
            let u = u.to_string();
            if http_host(&u).is_some() && !out.contains(&u) {
                out.push(u);
            }
        }
    }
    out
}

fn cert_id(c: &Cert, issuer: &Cert) -> Result<CertId, String> {
    let name = issuer.subject().to_der().map_err(|e| e.to_string())?;
    let key = issuer.spki().subject_public_key.raw_bytes();
    let h = |b: &[u8]| OctetString::new(sha1::Sha1::digest(b).to_vec()).map_err(|e| e.to_string());
    Ok(CertId {
        hash_algorithm: AlgorithmIdentifierOwned {
            oid: oid::SHA1,
            parameters: Some(der::asn1::Null.into()),
        },
        issuer_name_hash: h(&name)?,
        issuer_key_hash: h(key)?,
        serial_number: c.x509().tbs_certificate().serial_number().clone(),
    })
}

/// The DER request for `c` issued by `issuer`, and its CertID (to find the answer by).
fn request(c: &Cert, issuer: &Cert) -> Result<(Vec<u8>, CertId), String> {
    let id = cert_id(c, issuer)?;
    let req = OcspRequest {
        tbs_request: TbsRequest {
            request_list: vec![Request {
                req_cert: id.clone(),
            }],
        },
    };
    Ok((req.to_der().map_err(|e| e.to_string())?, id))
}

/// The GET URL of appendix A.1 (base64, then URL-encoded), when shorter than 255 bytes.
fn get_url(url: &str, der: &[u8]) -> Option<String> {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let enc = b64
        .replace('+', "%2B")
        .replace('/', "%2F")
        .replace('=', "%3D");
    let sep = if url.ends_with('/') { "" } else { "/" };
    let full = format!("{url}{sep}{enc}");
    (full.len() < 255).then_some(full)
}

/// Asks `url` about `c` (issued by `issuer`) within `timeout`, and checks the answer at `now`.
pub fn query(
    url: &str,
    c: &Cert,
    issuer: &Cert,
    now: i64,
    timeout: Duration,
) -> Result<OcspAnswer, OcspError> {
    let bad = |reason: String| OcspError::Bad {
        url: url.to_string(),
        reason,
    };
    let (der, id) = request(c, issuer).map_err(bad)?;
    let body = match get_url(url, &der) {
        Some(get) => http_get(&get, timeout, MAX_OCSP_BYTES)?,
        None => http_post(
            url,
            "application/ocsp-request",
            &der,
            timeout,
            MAX_OCSP_BYTES,
        )?,
    };
    check_response(&body, &id, issuer, now).map_err(bad)
}

fn unix(t: &GeneralizedTime) -> i64 {
    i64::try_from(t.to_unix_duration().as_secs()).unwrap_or(i64::MAX)
}

/// Whether `basic` is signed by `issuer` or by a responder certificate it carries that
/// `issuer` issued for id-kp-OCSPSigning and that is valid at `now` (RFC 6960 4.2.2.2).
fn check_signer(
    basic: &BasicOcspResponse,
    tbs: &[u8],
    issuer: &Cert,
    now: i64,
) -> Result<(), String> {
    let sig = basic.signature.raw_bytes();
    let alg = &basic.signature_algorithm;
    if verify_signature(issuer.spki(), alg, tbs, sig).is_ok() {
        return Ok(());
    }
    for x in basic.certs.iter().flatten() {
        let Ok(r) = Cert::from_x509(x.clone()) else {
            continue;
        };
        let delegated = same_name(r.issuer(), issuer.subject())
            && verify_signature(
                issuer.spki(),
                r.x509().signature_algorithm(),
                r.tbs_der(),
                r.signature_bytes(),
            )
            .is_ok()
            && matches!(r.extended_key_usage(), Ok(Some(k)) if k.contains(&oid::KP_OCSP_SIGNING))
            && r.not_before() <= now
            && now <= r.not_after();
        if delegated && verify_signature(r.spki(), alg, tbs, sig).is_ok() {
            return Ok(());
        }
    }
    Err("not signed by the issuer nor by a responder it delegated to (id-kp-OCSPSigning)".into())
}

/// Reads an OCSPResponse and finds a verified, current answer for `id`.
fn check_response(body: &[u8], id: &CertId, issuer: &Cert, now: i64) -> Result<OcspAnswer, String> {
    let resp = OcspResponse::from_der(body).map_err(|e| format!("not an OCSP response: {e}"))?;
    if resp.response_status != ResponseStatus::Successful {
        return Err(format!("responder says {:?}", resp.response_status));
    }
    let bytes = resp.response_bytes.ok_or("no response bytes")?;
    if bytes.response_type != oid::OCSP_BASIC {
        return Err(format!(
            "response type {} is not basic",
            bytes.response_type
        ));
    }
    let raw = bytes.response.as_bytes();
    let basic = BasicOcspResponse::from_der(raw).map_err(|e| format!("malformed: {e}"))?;
    let tbs = crate::pki::cert::raw_first_element(raw).ok_or("cannot locate tbsResponseData")?;
    check_signer(&basic, tbs, issuer, now)?;
    let single = basic
        .tbs_response_data
        .responses
        .iter()
        .find(|s| s.cert_id == *id)
        .ok_or("no answer for the certificate asked about")?;
    let this_update = unix(&single.this_update);
    if this_update > now + CLOCK_SKEW {
        return Err("thisUpdate is in the future".into());
    }
    let valid_until = match &single.next_update {
        Some(n) => unix(n),
        None => this_update + NO_NEXT_UPDATE_TTL,
    };
    if valid_until < now {
        return Err("the response is out of date".into());
    }
    let status = match single.cert_status.tag() {
        Tag::ContextSpecific { number, .. } if number.value() == 0 => OcspStatus::Good,
        Tag::ContextSpecific { number, .. } if number.value() == 1 => {
            let (revoked_at, reason) = revoked_info(single.cert_status.value())?;
            OcspStatus::Revoked { revoked_at, reason }
        }
        Tag::ContextSpecific { number, .. } if number.value() == 2 => OcspStatus::Unknown,
        t => return Err(format!("certStatus with tag {t}")),
    };
    Ok(OcspAnswer {
        status,
        this_update,
        valid_until,
    })
}

/// The content of `RevokedInfo` (IMPLICIT: the SEQUENCE's content without its header).
fn revoked_info(content: &[u8]) -> Result<(i64, Option<RevocationReason>), String> {
    #[derive(Sequence)]
    struct RevokedInfo {
        revocation_time: GeneralizedTime,
        #[asn1(context_specific = "0", tag_mode = "EXPLICIT", optional = "true")]
        revocation_reason: Option<CrlReason>,
    }
    let mut seq = Vec::with_capacity(content.len() + 4);
    seq.push(0x30);
    let len = der::Length::try_from(content.len()).map_err(|e| e.to_string())?;
    len.encode_to_vec(&mut seq).map_err(|e| e.to_string())?;
    seq.extend_from_slice(content);
    let r = RevokedInfo::from_der(&seq).map_err(|e| format!("revokedInfo: {e}"))?;
    let reason = r
        .revocation_reason
        .and_then(|c| RevocationReason::from_code(c as u8));
    Ok((unix(&r.revocation_time), reason))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_requests_go_by_get_url_encoded() {
        let u = get_url("http://127.0.0.1:1/", &[0xfb, 0xff]).unwrap();
        assert_eq!(u, "http://127.0.0.1:1/%2B%2F8%3D");
        let u = get_url("http://h/ocsp", &[0]).unwrap();
        assert_eq!(u, "http://h/ocsp/AA%3D%3D");
        assert!(get_url("http://h/", &[0; 300]).is_none());
    }
}
