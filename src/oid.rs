//! Every object identifier smimegw speaks, in one place, each with the document that defines it.
//!
//! Keeping them together makes it easy to audit which algorithms we accept (and which we refuse).

use const_oid::ObjectIdentifier as Oid;

// ---- Public-key algorithms ----------------------------------------------------------------
/// rsaEncryption, RFC 8017 appendix A.1.
pub const RSA_ENCRYPTION: Oid = Oid::new_unwrap("1.2.840.113549.1.1.1");
/// id-ecPublicKey, RFC 5480 section 2.1.1.
pub const EC_PUBLIC_KEY: Oid = Oid::new_unwrap("1.2.840.10045.2.1");
/// secp256r1 (NIST P-256), RFC 5480 section 2.1.1.1.
pub const SECP256R1: Oid = Oid::new_unwrap("1.2.840.10045.3.1.7");
/// secp384r1 (NIST P-384), RFC 5480 section 2.1.1.1.
pub const SECP384R1: Oid = Oid::new_unwrap("1.3.132.0.34");

// ---- Signature algorithms -----------------------------------------------------------------
/// sha1WithRSAEncryption, RFC 8017 appendix A.2.4 (legacy: accepted only for verification of old data).
pub const SHA1_WITH_RSA: Oid = Oid::new_unwrap("1.2.840.113549.1.1.5");
/// sha256WithRSAEncryption, RFC 8017 appendix A.2.4.
pub const SHA256_WITH_RSA: Oid = Oid::new_unwrap("1.2.840.113549.1.1.11");
/// sha384WithRSAEncryption, RFC 8017 appendix A.2.4.
pub const SHA384_WITH_RSA: Oid = Oid::new_unwrap("1.2.840.113549.1.1.12");
/// sha512WithRSAEncryption, RFC 8017 appendix A.2.4.
pub const SHA512_WITH_RSA: Oid = Oid::new_unwrap("1.2.840.113549.1.1.13");
/// id-RSASSA-PSS, RFC 8017 appendix A.2.3 / RFC 4055 section 3.
pub const RSASSA_PSS: Oid = Oid::new_unwrap("1.2.840.113549.1.1.10");
/// id-mgf1, RFC 8017 appendix B.2.1.
pub const MGF1: Oid = Oid::new_unwrap("1.2.840.113549.1.1.8");
/// ecdsa-with-SHA1, RFC 3279 section 2.2.3 (legacy: message signatures are verified and then
/// judged by policy; certificate signatures with it are refused).
pub const ECDSA_WITH_SHA1: Oid = Oid::new_unwrap("1.2.840.10045.4.1");
/// ecdsa-with-SHA256, RFC 5758 section 3.2.
pub const ECDSA_WITH_SHA256: Oid = Oid::new_unwrap("1.2.840.10045.4.3.2");
/// ecdsa-with-SHA384, RFC 5758 section 3.2.
pub const ECDSA_WITH_SHA384: Oid = Oid::new_unwrap("1.2.840.10045.4.3.3");
/// ecdsa-with-SHA512, RFC 5758 section 3.2.
pub const ECDSA_WITH_SHA512: Oid = Oid::new_unwrap("1.2.840.10045.4.3.4");

// ---- Digests ------------------------------------------------------------------------------
/// id-sha1, RFC 3279 section 2.2.1 (legacy).
pub const SHA1: Oid = Oid::new_unwrap("1.3.14.3.2.26");
/// id-sha256, RFC 5754 section 2.2.
pub const SHA256: Oid = Oid::new_unwrap("2.16.840.1.101.3.4.2.1");
/// id-sha384, RFC 5754 section 2.3.
pub const SHA384: Oid = Oid::new_unwrap("2.16.840.1.101.3.4.2.2");
/// id-sha512, RFC 5754 section 2.4.
pub const SHA512: Oid = Oid::new_unwrap("2.16.840.1.101.3.4.2.3");
/// hmacWithSHA1, RFC 8018 appendix B.1.1 (the PBKDF2 default PRF).
pub const HMAC_WITH_SHA1: Oid = Oid::new_unwrap("1.2.840.113549.2.7");
/// hmacWithSHA256, RFC 8018 appendix B.1.2.
pub const HMAC_WITH_SHA256: Oid = Oid::new_unwrap("1.2.840.113549.2.9");
/// hmacWithSHA384, RFC 8018 appendix B.1.2.
pub const HMAC_WITH_SHA384: Oid = Oid::new_unwrap("1.2.840.113549.2.10");
/// hmacWithSHA512, RFC 8018 appendix B.1.2.
pub const HMAC_WITH_SHA512: Oid = Oid::new_unwrap("1.2.840.113549.2.11");

// ---- Ciphers ------------------------------------------------------------------------------
/// id-aes128-CBC, RFC 3565 section 4.1.
pub const AES128_CBC: Oid = Oid::new_unwrap("2.16.840.1.101.3.4.1.2");
/// id-aes192-CBC, RFC 3565 section 4.1.
pub const AES192_CBC: Oid = Oid::new_unwrap("2.16.840.1.101.3.4.1.22");
/// id-aes256-CBC, RFC 3565 section 4.1.
pub const AES256_CBC: Oid = Oid::new_unwrap("2.16.840.1.101.3.4.1.42");
/// des-ede3-cbc, RFC 8018 appendix B.2.2 (legacy: read in PBES2, never written).
pub const DES_EDE3_CBC: Oid = Oid::new_unwrap("1.2.840.113549.3.7");
/// id-aes128-GCM, RFC 5084 section 3.2.
pub const AES128_GCM: Oid = Oid::new_unwrap("2.16.840.1.101.3.4.1.6");
/// id-aes256-GCM, RFC 5084 section 3.2.
pub const AES256_GCM: Oid = Oid::new_unwrap("2.16.840.1.101.3.4.1.46");

// ---- X.509 extensions (RFC 5280 section 4.2) ---------------------------------------------
/// id-ce-subjectKeyIdentifier, RFC 5280 section 4.2.1.2.
pub const SUBJECT_KEY_IDENTIFIER: Oid = Oid::new_unwrap("2.5.29.14");
/// id-ce-keyUsage, RFC 5280 section 4.2.1.3.
pub const KEY_USAGE: Oid = Oid::new_unwrap("2.5.29.15");
/// id-ce-subjectAltName, RFC 5280 section 4.2.1.6.
pub const SUBJECT_ALT_NAME: Oid = Oid::new_unwrap("2.5.29.17");
/// id-ce-basicConstraints, RFC 5280 section 4.2.1.9.
pub const BASIC_CONSTRAINTS: Oid = Oid::new_unwrap("2.5.29.19");
/// id-ce-cRLNumber, RFC 5280 section 5.2.3.
pub const CRL_NUMBER: Oid = Oid::new_unwrap("2.5.29.20");
/// id-ce-cRLReasons, RFC 5280 section 5.3.1.
pub const CRL_REASON: Oid = Oid::new_unwrap("2.5.29.21");
/// id-ce-nameConstraints, RFC 5280 section 4.2.1.10.
pub const NAME_CONSTRAINTS: Oid = Oid::new_unwrap("2.5.29.30");
/// id-ce-certificatePolicies, RFC 5280 section 4.2.1.4.
pub const CERTIFICATE_POLICIES: Oid = Oid::new_unwrap("2.5.29.32");
/// id-ce-authorityKeyIdentifier, RFC 5280 section 4.2.1.1.
pub const AUTHORITY_KEY_IDENTIFIER: Oid = Oid::new_unwrap("2.5.29.35");
/// id-ce-extKeyUsage, RFC 5280 section 4.2.1.12.
pub const EXT_KEY_USAGE: Oid = Oid::new_unwrap("2.5.29.37");
/// id-ce-issuerAltName, RFC 5280 section 4.2.1.7 (also a CRL extension, section 5.2.2).
pub const ISSUER_ALT_NAME: Oid = Oid::new_unwrap("2.5.29.18");
/// id-ce-invalidityDate, RFC 5280 section 5.3.2 (CRL entry extension).
pub const INVALIDITY_DATE: Oid = Oid::new_unwrap("2.5.29.24");
/// id-ce-deltaCRLIndicator, RFC 5280 section 5.2.4.
pub const DELTA_CRL_INDICATOR: Oid = Oid::new_unwrap("2.5.29.27");
/// id-ce-issuingDistributionPoint, RFC 5280 section 5.2.5.
pub const ISSUING_DISTRIBUTION_POINT: Oid = Oid::new_unwrap("2.5.29.28");
/// id-ce-certificateIssuer, RFC 5280 section 5.3.3 (indirect CRL entry extension).
pub const CERTIFICATE_ISSUER: Oid = Oid::new_unwrap("2.5.29.29");
/// id-ce-cRLDistributionPoints, RFC 5280 section 4.2.1.13.
pub const CRL_DISTRIBUTION_POINTS: Oid = Oid::new_unwrap("2.5.29.31");
/// id-ce-policyMappings, RFC 5280 section 4.2.1.5.
pub const POLICY_MAPPINGS: Oid = Oid::new_unwrap("2.5.29.33");
/// id-ce-policyConstraints, RFC 5280 section 4.2.1.11.
pub const POLICY_CONSTRAINTS: Oid = Oid::new_unwrap("2.5.29.36");
/// id-ce-freshestCRL, RFC 5280 section 4.2.1.15 / 5.2.6.
pub const FRESHEST_CRL: Oid = Oid::new_unwrap("2.5.29.46");
/// id-ce-inhibitAnyPolicy, RFC 5280 section 4.2.1.14.
pub const INHIBIT_ANY_POLICY: Oid = Oid::new_unwrap("2.5.29.54");
/// id-pe-authorityInfoAccess, RFC 5280 section 4.2.2.1.
pub const AUTHORITY_INFO_ACCESS: Oid = Oid::new_unwrap("1.3.6.1.5.5.7.1.1");
/// id-ad-ocsp, RFC 5280 section 4.2.2.1 (an OCSP responder in authorityInfoAccess).
pub const AD_OCSP: Oid = Oid::new_unwrap("1.3.6.1.5.5.7.48.1");
/// id-pkix-ocsp-basic, RFC 6960 section 4.2.1 (the one response type we read).
pub const OCSP_BASIC: Oid = Oid::new_unwrap("1.3.6.1.5.5.7.48.1.1");
/// id-kp-OCSPSigning, RFC 6960 section 4.2.2.2 (a responder the CA delegated to).
pub const KP_OCSP_SIGNING: Oid = Oid::new_unwrap("1.3.6.1.5.5.7.3.9");
/// id-pe-subjectInfoAccess, RFC 5280 section 4.2.2.2.
pub const SUBJECT_INFO_ACCESS: Oid = Oid::new_unwrap("1.3.6.1.5.5.7.1.11");
/// id-on-SmtpUTF8Mailbox, RFC 9598 section 3 (internationalised address as an otherName).
pub const ON_SMTP_UTF8_MAILBOX: Oid = Oid::new_unwrap("1.3.6.1.5.5.7.8.9");
/// anyExtendedKeyUsage, RFC 5280 section 4.2.1.12.
pub const ANY_EXTENDED_KEY_USAGE: Oid = Oid::new_unwrap("2.5.29.37.0");
/// id-kp-emailProtection, RFC 5280 section 4.2.1.12.
pub const KP_EMAIL_PROTECTION: Oid = Oid::new_unwrap("1.3.6.1.5.5.7.3.4");
/// id-kp-serverAuth, RFC 5280 section 4.2.1.12 (for the STARTTLS server certificate).
pub const KP_SERVER_AUTH: Oid = Oid::new_unwrap("1.3.6.1.5.5.7.3.1");
/// id-kp-clientAuth, RFC 5280 section 4.2.1.12 (for MTA client certificates).
pub const KP_CLIENT_AUTH: Oid = Oid::new_unwrap("1.3.6.1.5.5.7.3.2");

// ---- Names (RFC 5280 appendix A.1, RFC 4519) ---------------------------------------------
/// id-at-commonName.
pub const AT_COMMON_NAME: Oid = Oid::new_unwrap("2.5.4.3");
/// id-at-organizationName.
pub const AT_ORGANIZATION: Oid = Oid::new_unwrap("2.5.4.10");
/// emailAddress (PKCS #9), legacy e-mail in the subject; RFC 8550 section 3 says to prefer the SAN.
pub const AT_EMAIL_ADDRESS: Oid = Oid::new_unwrap("1.2.840.113549.1.9.1");

// ---- PKCS #9 / PKCS #10 ------------------------------------------------------------------
/// extensionRequest, RFC 2985 section 5.4.2 (extensions asked for in a CSR).
pub const EXTENSION_REQUEST: Oid = Oid::new_unwrap("1.2.840.113549.1.9.14");
/// friendlyName, RFC 2985 section 5.5.1 (PKCS #12 bag attribute).
pub const FRIENDLY_NAME: Oid = Oid::new_unwrap("1.2.840.113549.1.9.20");
/// localKeyID, RFC 2985 section 5.5.2 (PKCS #12 bag attribute).
pub const LOCAL_KEY_ID: Oid = Oid::new_unwrap("1.2.840.113549.1.9.21");

// ---- Password-based cryptography (RFC 8018) ------------------------------------------------
/// id-PBKDF2, RFC 8018 appendix A.2.
pub const PBKDF2: Oid = Oid::new_unwrap("1.2.840.113549.1.5.12");
/// id-PBES2, RFC 8018 appendix A.4.
pub const PBES2: Oid = Oid::new_unwrap("1.2.840.113549.1.5.13");

// ---- PKCS #12 (RFC 7292) and the CMS content types it uses (RFC 5652) ----------------------
/// id-data, RFC 5652 section 4.
pub const CMS_DATA: Oid = Oid::new_unwrap("1.2.840.113549.1.7.1");
/// id-encryptedData, RFC 5652 section 8.
pub const CMS_ENCRYPTED_DATA: Oid = Oid::new_unwrap("1.2.840.113549.1.7.6");
/// pbeWithSHAAnd3-KeyTripleDES-CBC, RFC 7292 appendix C (legacy: read, never written).
pub const PBE_SHA1_3DES: Oid = Oid::new_unwrap("1.2.840.113549.1.12.1.3");
/// pbeWithSHAAnd128BitRC2-CBC, RFC 7292 appendix C (legacy: read, never written).
pub const PBE_SHA1_RC2_128: Oid = Oid::new_unwrap("1.2.840.113549.1.12.1.5");
/// pbewithSHAAnd40BitRC2-CBC, RFC 7292 appendix C (legacy: read, never written).
pub const PBE_SHA1_RC2_40: Oid = Oid::new_unwrap("1.2.840.113549.1.12.1.6");
/// keyBag, RFC 7292 section 4.2.1.
pub const KEY_BAG: Oid = Oid::new_unwrap("1.2.840.113549.1.12.10.1.1");
/// pkcs8ShroudedKeyBag, RFC 7292 section 4.2.2.
pub const PKCS8_SHROUDED_KEY_BAG: Oid = Oid::new_unwrap("1.2.840.113549.1.12.10.1.2");
/// certBag, RFC 7292 section 4.2.3.
pub const CERT_BAG: Oid = Oid::new_unwrap("1.2.840.113549.1.12.10.1.3");
/// safeContentsBag, RFC 7292 section 4.2.6.
pub const SAFE_CONTENTS_BAG: Oid = Oid::new_unwrap("1.2.840.113549.1.12.10.1.6");
/// x509Certificate (the certBag type holding a DER certificate), RFC 7292 section 4.2.3.
pub const X509_CERTIFICATE: Oid = Oid::new_unwrap("1.2.840.113549.1.9.22.1");

// ---- CMS SignedData (RFC 5652) and S/MIME attributes (RFC 8551) ----------------------------
/// id-signedData, RFC 5652 section 5.1.
pub const CMS_SIGNED_DATA: Oid = Oid::new_unwrap("1.2.840.113549.1.7.2");
/// id-contentType, RFC 5652 section 11.1 (signed attribute naming the eContentType).
pub const AA_CONTENT_TYPE: Oid = Oid::new_unwrap("1.2.840.113549.1.9.3");
/// id-messageDigest, RFC 5652 section 11.2 (signed attribute holding the content digest).
pub const AA_MESSAGE_DIGEST: Oid = Oid::new_unwrap("1.2.840.113549.1.9.4");
/// id-signingTime, RFC 5652 section 11.3.
pub const AA_SIGNING_TIME: Oid = Oid::new_unwrap("1.2.840.113549.1.9.5");
/// id-countersignature, RFC 5652 section 11.4 (an unsigned attribute only).
pub const AA_COUNTERSIGNATURE: Oid = Oid::new_unwrap("1.2.840.113549.1.9.6");
/// smimeCapabilities, RFC 8551 section 2.5.2.
pub const AA_SMIME_CAPABILITIES: Oid = Oid::new_unwrap("1.2.840.113549.1.9.15");
/// id-aa-encrypKeyPref (SMIMEEncryptionKeyPreference), RFC 8551 section 2.5.3.
pub const AA_ENCRYPT_KEY_PREF: Oid = Oid::new_unwrap("1.2.840.113549.1.9.16.2.11");

// ---- CMS enveloping (RFC 5652, RFC 5083) -------------------------------------------------
/// id-envelopedData, RFC 5652 section 6.1.
pub const CMS_ENVELOPED_DATA: Oid = Oid::new_unwrap("1.2.840.113549.1.7.3");
/// id-ct-authEnvelopedData, RFC 5083 section 1.1.
pub const CMS_AUTH_ENVELOPED_DATA: Oid = Oid::new_unwrap("1.2.840.113549.1.9.16.1.23");
/// id-aes192-GCM, RFC 5084 section 3.2 (read, never written).
pub const AES192_GCM: Oid = Oid::new_unwrap("2.16.840.1.101.3.4.1.26");
/// id-aes128-wrap, RFC 3565 section 2.3.2 (RFC 3394 key wrap).
pub const AES128_WRAP: Oid = Oid::new_unwrap("2.16.840.1.101.3.4.1.5");
/// id-aes192-wrap, RFC 3565 section 2.3.2 (read, never written).
pub const AES192_WRAP: Oid = Oid::new_unwrap("2.16.840.1.101.3.4.1.25");
/// id-aes256-wrap, RFC 3565 section 2.3.2.
pub const AES256_WRAP: Oid = Oid::new_unwrap("2.16.840.1.101.3.4.1.45");

// ---- Key transport and key agreement (RFC 3560, RFC 4055, RFC 5753, RFC 8418) -----------
/// id-RSAES-OAEP, RFC 8017 appendix A.2.1 / RFC 4055 section 4.1 (in CMS: RFC 3560 section 2.2).
pub const RSAES_OAEP: Oid = Oid::new_unwrap("1.2.840.113549.1.1.7");
/// id-pSpecified, RFC 8017 appendix A.2.1 (the OAEP label source; only the empty label is used).
pub const P_SPECIFIED: Oid = Oid::new_unwrap("1.2.840.113549.1.1.9");
/// dhSinglePass-stdDH-sha1kdf-scheme, RFC 5753 section 7.1.4 (OpenSSL's default; read only).
pub const ECDH_STD_SHA1KDF: Oid = Oid::new_unwrap("1.3.133.16.840.63.0.2");
/// dhSinglePass-cofactorDH-sha1kdf-scheme, RFC 5753 section 7.1.4 (read only).
pub const ECDH_COFACTOR_SHA1KDF: Oid = Oid::new_unwrap("1.3.133.16.840.63.0.3");
/// dhSinglePass-stdDH-sha224kdf-scheme, RFC 5753 section 7.1.4 (read only).
pub const ECDH_STD_SHA224KDF: Oid = Oid::new_unwrap("1.3.132.1.11.0");
/// dhSinglePass-stdDH-sha256kdf-scheme, RFC 5753 section 7.1.4 (what we write for P-256).
pub const ECDH_STD_SHA256KDF: Oid = Oid::new_unwrap("1.3.132.1.11.1");
/// dhSinglePass-stdDH-sha384kdf-scheme, RFC 5753 section 7.1.4 (what we write for P-384).
pub const ECDH_STD_SHA384KDF: Oid = Oid::new_unwrap("1.3.132.1.11.2");
/// dhSinglePass-stdDH-sha512kdf-scheme, RFC 5753 section 7.1.4.
pub const ECDH_STD_SHA512KDF: Oid = Oid::new_unwrap("1.3.132.1.11.3");
/// dhSinglePass-cofactorDH-sha224kdf-scheme, RFC 5753 section 7.1.4 (read only).
pub const ECDH_COFACTOR_SHA224KDF: Oid = Oid::new_unwrap("1.3.132.1.14.0");
/// dhSinglePass-cofactorDH-sha256kdf-scheme, RFC 5753 section 7.1.4 (read only).
pub const ECDH_COFACTOR_SHA256KDF: Oid = Oid::new_unwrap("1.3.132.1.14.1");
/// dhSinglePass-cofactorDH-sha384kdf-scheme, RFC 5753 section 7.1.4 (read only).
pub const ECDH_COFACTOR_SHA384KDF: Oid = Oid::new_unwrap("1.3.132.1.14.2");
/// dhSinglePass-cofactorDH-sha512kdf-scheme, RFC 5753 section 7.1.4 (read only).
pub const ECDH_COFACTOR_SHA512KDF: Oid = Oid::new_unwrap("1.3.132.1.14.3");
/// id-sha224, RFC 5754 section 2.1 (only as the hash of an ECDH KDF we read).
pub const SHA224: Oid = Oid::new_unwrap("2.16.840.1.101.3.4.2.4");
