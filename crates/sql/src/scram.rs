//! SCRAM-SHA-256 password verifiers (RFC 5802/7677, as PostgreSQL stores
//! them), computed here so `ALTER ROLE .. PASSWORD` carries the verifier and
//! never the password: statement logs and `pg_stat_activity` cannot leak it.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ring::{digest, hmac, pbkdf2};
use std::num::NonZeroU32;

/// PostgreSQL's default (`scram_iterations`).
const ITERATIONS: u32 = 4096;

/// The verifier for `password`, or `None` when PostgreSQL would first
/// normalise it (SASLprep changes only non-ASCII and control characters):
/// then the server must hash it itself.
pub(crate) fn verifier(password: &str) -> Option<String> {
    if !password.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        return None;
    }
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).ok()?;
    Some(verifier_with_salt(password, &salt, ITERATIONS))
}

fn verifier_with_salt(password: &str, salt: &[u8], iterations: u32) -> String {
    let rounds = NonZeroU32::new(iterations).unwrap_or(NonZeroU32::MIN);
    let mut salted = [0u8; 32];
    pbkdf2::derive(
        pbkdf2::PBKDF2_HMAC_SHA256,
        rounds,
        salt,
        password.as_bytes(),
        &mut salted,
    );
    let key = hmac::Key::new(hmac::HMAC_SHA256, &salted);
    let client_key = hmac::sign(&key, b"Client Key");
    let stored_key = digest::digest(&digest::SHA256, client_key.as_ref());
    let server_key = hmac::sign(&key, b"Server Key");
    format!(
        "SCRAM-SHA-256${iterations}:{}${}:{}",
        STANDARD.encode(salt),
        STANDARD.encode(stored_key.as_ref()),
        STANDARD.encode(server_key.as_ref())
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_an_independent_implementation() {
        // Python: hashlib.pbkdf2_hmac / hmac / sha256 with the same inputs.
        let salt: Vec<u8> = (0..16).collect();
        assert_eq!(
            verifier_with_salt("Tr0ub4dor&3-:+=@%^", &salt, 4096),
            "SCRAM-SHA-256$4096:AAECAwQFBgcICQoLDA0ODw==$yczMglHmWgzSxicn6R6HY7tx5a/DXABUtRqIxONKxt4=:DcKljeukJB0OA7BmcUsUFKiYQdX/UTg/xpb4eVG1FS0="
        );
    }

    #[test]
    fn fresh_salt_each_time_and_only_plain_ascii() {
        let a = verifier("same password").unwrap();
        let b = verifier("same password").unwrap();
        assert_ne!(a, b);
        assert!(a.starts_with("SCRAM-SHA-256$4096:"));
        assert_eq!(verifier("pässword"), None);
        assert_eq!(verifier("tab\there"), None);
    }
}
