//! API token secrets: made from the OS's randomness, stored only as a SHA-256, compared in
//! constant time.
//!
//! A secret has 256 random bits, so a fast unsalted hash is enough: nothing is guessable to
//! brute-force, and a constant lookup key lets the API find a token by its hash.

use rand::Rng as _;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// What every secret starts with, so a leaked one is recognizable (secret scanners, logs).
pub(crate) const PREFIX: &str = "sp_";

/// Random bytes in a secret.
const BYTES: usize = 32;

/// A new secret: `sp_` and 64 lowercase hex digits (32 random bytes).
pub(crate) fn generate() -> String {
    let mut bytes = [0u8; BYTES];
    // The thread RNG is a ChaCha CSPRNG seeded (and periodically reseeded) from the OS; unlike
    // the OS source read directly it cannot fail here, so token creation has no error path.
    rand::rng().fill_bytes(&mut bytes);
    format!("{PREFIX}{}", hex(&bytes))
}

/// The stored form of a secret: the lowercase hex SHA-256 of its text.
pub(crate) fn hash(secret: &str) -> String {
    hex(&Sha256::digest(secret.as_bytes()))
}

/// Whether two strings are equal, in time that depends only on their lengths (a hash's
/// length is public), so a timing attacker learns nothing of where they differ.
pub(crate) fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        // Writing to a String cannot fail.
        let _ = write!(s, "{b:02x}");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_prefixed_hex_and_differ_each_time() {
        let a = generate();
        let b = generate();
        assert_eq!(a.len(), PREFIX.len() + 2 * BYTES);
        let digits = a.strip_prefix(PREFIX).unwrap();
        assert!(
            digits
                .chars()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()),
            "{a}"
        );
        assert_ne!(a, b);
    }

    #[test]
    fn hash_is_the_hex_sha256_of_the_text() {
        // FIPS 180-2 test vector.
        assert_eq!(
            hash("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        let s = generate();
        assert_eq!(hash(&s), hash(&s.clone()));
        assert_ne!(hash(&s), hash(&generate()));
        assert_eq!(hash(&s).len(), 64);
    }

    #[test]
    fn same_compares_whole_strings() {
        assert!(same("", ""));
        assert!(same("abc", "abc"));
        assert!(!same("abc", "abd"));
        assert!(!same("abc", "xbc"));
        // A prefix is not equal, whichever side is longer.
        assert!(!same("abc", "abcd"));
        assert!(!same("abcd", "abc"));
        assert!(!same("", "a"));
    }
}
