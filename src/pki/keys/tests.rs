use super::*;

#[test]
fn sign_and_verify_every_key_type() {
    for alg in [
        KeyAlgorithm::Rsa2048,
        KeyAlgorithm::P256,
        KeyAlgorithm::P384,
    ] {
        let k = PrivateKey::generate(alg).unwrap();
        let sa = k.default_signature();
        let s = k.sign(sa, b"hello").unwrap();
        let spki = k.spki();
        verify_signature(&spki, &sa.to_algorithm_identifier(), b"hello", &s).unwrap();
        assert_eq!(
            verify_signature(&spki, &sa.to_algorithm_identifier(), b"hellO", &s),
            Err(SignatureError::Invalid)
        );
        // Round trip through PKCS #8.
        let again = PrivateKey::from_pkcs8_der(k.pkcs8_der()).unwrap();
        assert_eq!(again.algorithm(), alg);
        assert_eq!(again.public_key_der(), k.public_key_der());
    }
}

#[test]
fn pss_round_trip() {
    let k = PrivateKey::generate(KeyAlgorithm::Rsa2048).unwrap();
    let sa = SignatureAlgorithm::RsaPss(HashAlgorithm::Sha384);
    let s = k.sign(sa, b"x").unwrap();
    let id = sa.to_algorithm_identifier();
    assert_eq!(
        SignatureAlgorithm::from_algorithm_identifier(&id).unwrap(),
        sa
    );
    verify_signature(&k.spki(), &id, b"x", &s).unwrap();
}

#[test]
fn key_transport_and_agreement_round_trip() {
    let rsa = PrivateKey::generate(KeyAlgorithm::Rsa2048).unwrap();
    let secret = [7u8; 32];
    let ct = rsa_encrypt_pkcs1(&rsa.spki(), &secret).unwrap();
    assert_eq!(*rsa.rsa_decrypt_pkcs1(&ct).unwrap(), secret);
    assert!(rsa.rsa_decrypt_oaep(HashAlgorithm::Sha256, &ct).is_err());
    for h in [
        HashAlgorithm::Sha1,
        HashAlgorithm::Sha256,
        HashAlgorithm::Sha512,
    ] {
        let ct = rsa_encrypt_oaep(&rsa.spki(), h, &secret).unwrap();
        assert_eq!(*rsa.rsa_decrypt_oaep(h, &ct).unwrap(), secret);
    }

    for alg in [KeyAlgorithm::P256, KeyAlgorithm::P384] {
        let ec = PrivateKey::generate(alg).unwrap();
        let eph = ecdh_ephemeral(&ec.spki()).unwrap();
        assert_eq!(eph.curve, alg);
        assert_eq!(*ec.ecdh(&eph.public_point).unwrap(), *eph.shared_secret);
        assert!(ec.ecdh(&[0x04; 65]).is_err());
        assert!(ec.rsa_decrypt_pkcs1(&ct).is_err());
        assert!(rsa_encrypt_pkcs1(&ec.spki(), &secret).is_err());
    }
    assert!(rsa.ecdh(&[0x04; 65]).is_err());
    assert!(ecdh_ephemeral(&rsa.spki()).is_err());
}

#[test]
fn ecdsa_with_rsa_key_is_refused() {
    let k = PrivateKey::generate(KeyAlgorithm::Rsa2048).unwrap();
    assert!(matches!(
        k.sign(SignatureAlgorithm::Ecdsa(HashAlgorithm::Sha256), b"x"),
        Err(KeyError::AlgorithmMismatch { .. })
    ));
}
