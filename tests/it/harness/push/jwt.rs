//! JWT signatures checked with OpenSSL, apart from jwt-simple (which the server signs with), so
//! that the receivers judge the server's tokens as an independent push service would.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use openssl::bn::{BigNum, BigNumContext};
use openssl::ec::{EcGroup, EcKey, EcPoint};
use openssl::ecdsa::EcdsaSig;
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Public};
use openssl::sign::Verifier;
use serde_json::{Map, Value};

/// A JWT's header or claims.
pub(super) type Object = Map<String, Value>;

/// A token's parts, decoded but not yet checked.
struct Parts<'a> {
    header: Object,
    claims: Object,
    signing_input: &'a str,
    signature: Vec<u8>,
}

fn split(token: &str) -> Result<Parts<'_>, String> {
    let (signing_input, signature) = token
        .rsplit_once('.')
        .ok_or("the JWT has no signature part")?;
    let (header, claims) = signing_input
        .split_once('.')
        .filter(|(_, c)| !c.contains('.'))
        .ok_or("the JWT does not have three parts")?;
    let json = |part: &str, what: &str| -> Result<Object, String> {
        let bytes = URL_SAFE_NO_PAD
            .decode(part)
            .map_err(|e| format!("the JWT {what} is not base64url without padding: {e}"))?;
        serde_json::from_slice(&bytes)
            .map_err(|e| format!("the JWT {what} is not a JSON object: {e}"))
    };
    Ok(Parts {
        header: json(header, "header")?,
        claims: json(claims, "claims")?,
        signing_input,
        signature: URL_SAFE_NO_PAD
            .decode(signature)
            .map_err(|e| format!("the JWT signature is not base64url without padding: {e}"))?,
    })
}

fn check_header(header: &Object, alg: &str) -> Result<(), String> {
    if header.get("alg").and_then(Value::as_str) != Some(alg) {
        return Err(format!(
            "the JWT header's alg is {:?}, not {alg}",
            header.get("alg")
        ));
    }
    match header.get("typ") {
        None => Ok(()),
        Some(Value::String(t)) if t.eq_ignore_ascii_case("JWT") => Ok(()),
        Some(other) => Err(format!("the JWT header's typ is {other}, not JWT")),
    }
}

/// Checks an ES256 token against a P-256 public key (uncompressed point); returns its claims.
pub(super) fn verify_es256(token: &str, public_key: &[u8]) -> Result<Object, String> {
    let parts = split(token)?;
    check_header(&parts.header, "ES256")?;
    let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).map_err(|e| e.to_string())?;
    let mut ctx = BigNumContext::new().map_err(|e| e.to_string())?;
    let point = EcPoint::from_bytes(&group, public_key, &mut ctx)
        .map_err(|e| format!("k is not a P-256 point: {e}"))?;
    let key = EcKey::from_public_key(&group, &point).map_err(|e| e.to_string())?;
    // JWS (RFC 7518 §3.4): R and S as 32 bytes each, not DER.
    if parts.signature.len() != 64 {
        return Err(format!(
            "the ES256 signature is {} bytes, not 64 (R || S)",
            parts.signature.len()
        ));
    }
    let r = BigNum::from_slice(&parts.signature[..32]).map_err(|e| e.to_string())?;
    let s = BigNum::from_slice(&parts.signature[32..]).map_err(|e| e.to_string())?;
    let signature = EcdsaSig::from_private_components(r, s).map_err(|e| e.to_string())?;
    let digest = openssl::sha::sha256(parts.signing_input.as_bytes());
    match signature.verify(&digest, &key) {
        Ok(true) => Ok(parts.claims),
        Ok(false) => Err("the JWT's ES256 signature does not verify with k".into()),
        Err(e) => Err(format!(
            "the JWT's ES256 signature could not be checked: {e}"
        )),
    }
}

/// Checks an RS256 token against an RSA public key; returns its header and claims.
pub(super) fn verify_rs256(
    token: &str,
    public_key: &PKey<Public>,
) -> Result<(Object, Object), String> {
    let parts = split(token)?;
    check_header(&parts.header, "RS256")?;
    let mut verifier =
        Verifier::new(MessageDigest::sha256(), public_key).map_err(|e| e.to_string())?;
    match verifier.verify_oneshot(&parts.signature, parts.signing_input.as_bytes()) {
        Ok(true) => Ok((parts.header, parts.claims)),
        Ok(false) => Err(
            "the assertion's RS256 signature does not verify with the service account's key".into(),
        ),
        Err(e) => Err(format!(
            "the assertion's RS256 signature could not be checked: {e}"
        )),
    }
}

/// A claim that must be a whole number (a NumericDate).
pub(super) fn number(claims: &Object, name: &str) -> Result<u64, String> {
    claims.get(name).and_then(Value::as_u64).ok_or_else(|| {
        format!(
            "the JWT's {name} is {:?}, not a whole number",
            claims.get(name)
        )
    })
}

/// A claim that must be a string.
pub(super) fn string<'a>(claims: &'a Object, name: &str) -> Result<&'a str, String> {
    claims
        .get(name)
        .and_then(Value::as_str)
        .ok_or_else(|| format!("the JWT's {name} is {:?}, not a string", claims.get(name)))
}
