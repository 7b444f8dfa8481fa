//! JWT keys and signature checks: an HMAC secret, a PEM public key, or a JWKS document; each
//! key accepts only the algorithms of its own family that the allow-list names (no `none`, no
//! HMAC with a public key), so a token cannot pick a weaker check than the key was made for.
//!
//! This module checks that a token is genuine and its registered claims (`exp`, `nbf`,
//! `aud`, `iss`, `typ`) hold; what the token grants is read by `auth.rs`. It knows nothing
//! of requests, the hub or a protocol, so the typed `Config` can hold a [`Verifier`].

use std::fmt;

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{decode, decode_header, Algorithm, DecodingKey, Validation};
use serde_json::Value;

/// The allow-list used when none is configured.
pub const DEFAULT_ALGORITHMS: &str =
    "HS256,HS384,HS512,RS256,RS384,RS512,PS256,PS384,PS512,ES256,ES384,EdDSA";

/// Where a key comes from: the setting's value, or the file it names.
#[derive(Clone)]
pub enum KeyMaterial {
    /// An HMAC shared secret (HS256/384/512).
    Secret(Vec<u8>),
    /// A PEM public key (RSA, EC or Ed25519) or certificate.
    Pem(Vec<u8>),
    /// A JSON Web Key Set document (`{"keys": [...]}`).
    Jwks(String),
}

/// Parses a comma list of JWS algorithm names. `none` is refused, always.
pub fn parse_algorithms(list: &str) -> Result<Vec<Algorithm>, String> {
    let mut out = Vec::new();
    for name in list.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        if name.eq_ignore_ascii_case("none") {
            return Err("\"none\" is never accepted: unsigned tokens prove nothing".into());
        }
        let alg: Algorithm = name.parse().map_err(|_| {
            format!("unknown algorithm {name:?}: use names such as HS256, RS256, ES256, EdDSA")
        })?;
        if !out.contains(&alg) {
            out.push(alg);
        }
    }
    if out.is_empty() {
        return Err("the list is empty".into());
    }
    Ok(out)
}

/// One key and the algorithms it verifies.
struct Key {
    kid: Option<String>,
    key: DecodingKey,
    algorithms: Vec<Algorithm>,
}

/// Verifies tokens against one key or one key set.
pub struct Verifier {
    keys: Vec<Key>,
}

impl fmt::Debug for Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print key material.
        f.debug_struct("Verifier")
            .field("keys", &self.keys.len())
            .field(
                "algorithms",
                &self
                    .keys
                    .iter()
                    .flat_map(|k| k.algorithms.iter())
                    .collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl Verifier {
    /// Builds a verifier; `allowed` is the algorithm allow-list. Fails when the key does not
    /// parse or none of the allowed algorithms fits it.
    pub fn new(material: KeyMaterial, allowed: &[Algorithm]) -> Result<Verifier, String> {
        let fitting = |key: &DecodingKey, only: Option<Algorithm>| -> Vec<Algorithm> {
            key.family()
                .algorithms()
                .iter()
                .copied()
                .filter(|a| allowed.contains(a) && only.is_none_or(|o| o == *a))
                .collect()
        };
        // A lone key (a secret or a PEM key): no `kid`, every allowed algorithm of its family.
        let single = |key: DecodingKey| Key {
            kid: None,
            algorithms: fitting(&key, None),
            key,
        };
        let mut keys = Vec::new();
        match material {
            KeyMaterial::Secret(secret) => {
                if secret.is_empty() {
                    return Err("the secret is empty".into());
                }
                keys.push(single(DecodingKey::from_secret(&secret)));
            }
            KeyMaterial::Pem(pem) => {
                let key = DecodingKey::from_rsa_pem(&pem)
                    .or_else(|_| DecodingKey::from_ec_pem(&pem))
                    .or_else(|_| DecodingKey::from_ed_pem(&pem))
                    .map_err(|e| format!("not a PEM public key (RSA, EC or Ed25519): {e}"))?;
                keys.push(single(key));
            }
            KeyMaterial::Jwks(text) => {
                let set: JwkSet =
                    serde_json::from_str(&text).map_err(|e| format!("not a JWKS document: {e}"))?;
                for jwk in &set.keys {
                    let Ok(key) = DecodingKey::from_jwk(jwk) else {
                        continue;
                    };
                    let only = jwk
                        .common
                        .key_algorithm
                        .and_then(|a| a.to_string().parse::<Algorithm>().ok());
                    let algorithms = fitting(&key, only);
                    keys.push(Key {
                        kid: jwk.common.key_id.clone(),
                        key,
                        algorithms,
                    });
                }
                if keys.is_empty() {
                    return Err("the JWKS document holds no usable key".into());
                }
            }
        }
        keys.retain(|k| !k.algorithms.is_empty());
        if keys.is_empty() {
            return Err(
                "none of the allowed algorithms (jwt_algorithms) fits this key type".into(),
            );
        }
        Ok(Verifier { keys })
    }

    /// Checks the signature and the registered claims; returns the claims.
    /// Every error is the reason the token is invalid (a 401 at the edge).
    pub fn claims(&self, token: &str, rules: &ClaimRules<'_>) -> Result<Value, String> {
        let header = decode_header(token).map_err(|_| String::from("malformed token"))?;
        if rules.access_token {
            let typ = header.typ.as_deref().unwrap_or("").to_ascii_lowercase();
            if typ != "at+jwt" && typ != "application/at+jwt" {
                return Err(String::from(
                    "the token's typ must be at+jwt (RFC 9068 access token)",
                ));
            }
        }
        let mut validation = Validation::new(header.alg);
        validation.leeway = 0;
        validation.validate_nbf = true;
        validation.required_spec_claims.clear();
        if rules.access_token {
            validation.required_spec_claims.insert("exp".into());
        }
        validation.validate_aud = false;
        if let Some(aud) = rules.audience {
            validation.set_audience(&[aud]);
            validation.validate_aud = true;
            validation.required_spec_claims.insert("aud".into());
        }
        if let Some(iss) = rules.issuer {
            validation.set_issuer(&[iss]);
            validation.required_spec_claims.insert("iss".into());
        }
        let mut last = String::from("no key accepts this token's algorithm");
        for key in &self.keys {
            if !key.algorithms.contains(&header.alg) {
                continue;
            }
            if let (Some(want), Some(have)) = (&header.kid, &key.kid) {
                if want != have {
                    continue;
                }
            }
            match decode::<Value>(token, &key.key, &validation) {
                Ok(data) => return Ok(data.claims),
                Err(e) => {
                    last = match e.kind() {
                        ErrorKind::ExpiredSignature => String::from("the token has expired"),
                        ErrorKind::ImmatureSignature => {
                            String::from("the token is not valid yet (nbf)")
                        }
                        ErrorKind::InvalidAudience => {
                            String::from("the token's audience (aud) is not this hub")
                        }
                        ErrorKind::InvalidIssuer => {
                            String::from("the token's issuer (iss) is not trusted")
                        }
                        ErrorKind::MissingRequiredClaim(c) => {
                            format!("the token lacks the {c} claim")
                        }
                        _ => String::from("invalid token signature or claims"),
                    }
                }
            }
        }
        Err(last)
    }
}

/// What a token's registered claims must satisfy besides its signature.
#[derive(Debug, Clone, Copy, Default)]
pub struct ClaimRules<'a> {
    /// An RFC 9068 access token (Mercure dialect 1): `typ` must be `at+jwt` and `exp` is
    /// required.
    pub access_token: bool,
    /// The `iss` the token must carry.
    pub issuer: Option<&'a str>,
    /// A value the token's `aud` must contain.
    pub audience: Option<&'a str>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn algorithms_list() {
        assert!(parse_algorithms("HS256, RS256,EdDSA").is_ok());
        assert!(parse_algorithms("none").unwrap_err().contains("never"));
        assert!(parse_algorithms("HS256,None").is_err());
        assert!(parse_algorithms("XX1").is_err());
        assert!(parse_algorithms("").is_err());
    }
}
