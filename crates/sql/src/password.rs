//! Passwords from the operating system's random number generator.

use secrecy::SecretString;
use secrecy::zeroize::Zeroize;

/// Length and complexity of generated passwords.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasswordPolicy {
    /// Exactly this many characters; 15..=99.
    pub min_length: usize,
    /// At least one lower-case letter, upper-case letter, digit and symbol
    /// (from [`PASSWORD_SYMBOLS`]); without it, letters and digits only.
    pub complexity: bool,
}

impl Default for PasswordPolicy {
    fn default() -> Self {
        PasswordPolicy {
            min_length: 24,
            complexity: true,
        }
    }
}

/// The symbols passwords may contain: none of them needs quoting in a
/// shell word (no quotes, `$`, `!`, `\`, `~`, spaces, globs), yet `@ % : +`
/// must be escaped in URIs, so our DSN code is exercised by every password.
pub const PASSWORD_SYMBOLS: &str = "-_.:+=@%^";

const LOWER: &str = "abcdefghijklmnopqrstuvwxyz";
const UPPER: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZ";
const DIGITS: &str = "0123456789";

/// The allowed lengths.
pub const PASSWORD_LENGTHS: std::ops::RangeInclusive<usize> = 15..=99;

/// Why no password could be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PasswordError {
    #[error("password length {length} is outside 15..=99")]
    Length { length: usize },
    #[error("the operating system's random number generator failed: {0}")]
    Random(String),
}

/// A fresh password: uniformly random over the alphabet (rejection
/// sampling, no modulo bias); with `complexity`, uniformly random among the
/// passwords that contain every class.
pub fn generate_password(policy: &PasswordPolicy) -> Result<SecretString, PasswordError> {
    if !PASSWORD_LENGTHS.contains(&policy.min_length) {
        return Err(PasswordError::Length {
            length: policy.min_length,
        });
    }
    let mut alphabet = format!("{LOWER}{UPPER}{DIGITS}");
    if policy.complexity {
        alphabet.push_str(PASSWORD_SYMBOLS);
    }
    let alphabet = alphabet.as_bytes();
    // Missing a class is rare (< 1 in 10^5 at 15 characters), so a few rounds suffice.
    for _ in 0..1000 {
        let mut password = random_string(alphabet, policy.min_length)?;
        if !policy.complexity || has_every_class(&password) {
            return Ok(SecretString::from(password));
        }
        password.zeroize();
    }
    Err(PasswordError::Random(
        "no password with every character class after 1000 tries".to_owned(),
    ))
}

fn has_every_class(password: &str) -> bool {
    [LOWER, UPPER, DIGITS, PASSWORD_SYMBOLS]
        .iter()
        .all(|class| password.chars().any(|c| class.contains(c)))
}

fn random_string(alphabet: &[u8], length: usize) -> Result<String, PasswordError> {
    // Bytes at or above the largest multiple of the alphabet size are
    // skipped, so every character is equally likely.
    let limit = 256 - 256 % alphabet.len();
    let mut out = String::with_capacity(length);
    let mut buffer = [0u8; 64];
    while out.len() < length {
        getrandom::fill(&mut buffer).map_err(|err| PasswordError::Random(err.to_string()))?;
        for &byte in &buffer {
            if usize::from(byte) < limit && out.len() < length {
                out.push(char::from(alphabet[usize::from(byte) % alphabet.len()]));
            }
        }
    }
    buffer.zeroize();
    Ok(out)
}

/// A random password nobody is told, for logins that must not be usable yet.
pub(crate) fn unknown_password() -> Result<String, PasswordError> {
    random_string(format!("{LOWER}{UPPER}{DIGITS}").as_bytes(), 40)
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;
    use std::collections::HashSet;

    #[test]
    fn length_and_classes() {
        for length in [15, 16, 24, 99] {
            let policy = PasswordPolicy {
                min_length: length,
                complexity: true,
            };
            for _ in 0..200 {
                let password = generate_password(&policy).unwrap();
                let password = password.expose_secret();
                assert_eq!(password.len(), length);
                assert!(has_every_class(password), "{password}");
                assert!(
                    password
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || PASSWORD_SYMBOLS.contains(c))
                );
            }
        }
    }

    #[test]
    fn without_complexity_letters_and_digits_only() {
        let policy = PasswordPolicy {
            min_length: 40,
            complexity: false,
        };
        let password = generate_password(&policy).unwrap();
        assert!(
            password
                .expose_secret()
                .chars()
                .all(|c| c.is_ascii_alphanumeric())
        );
    }

    #[test]
    fn lengths_outside_the_range_are_refused() {
        for length in [0, 14, 100] {
            let policy = PasswordPolicy {
                min_length: length,
                complexity: true,
            };
            assert_eq!(
                generate_password(&policy).unwrap_err(),
                PasswordError::Length { length }
            );
        }
    }

    #[test]
    fn passwords_differ_and_use_the_whole_alphabet() {
        let policy = PasswordPolicy::default();
        let passwords: Vec<String> = (0..500)
            .map(|_| {
                generate_password(&policy)
                    .unwrap()
                    .expose_secret()
                    .to_owned()
            })
            .collect();
        let distinct: HashSet<_> = passwords.iter().collect();
        assert_eq!(distinct.len(), passwords.len());
        let used: HashSet<char> = passwords.iter().flat_map(|p| p.chars()).collect();
        // 12,000 draws over 71 characters: every one shows up.
        assert_eq!(used.len(), 26 + 26 + 10 + PASSWORD_SYMBOLS.len());
    }

    #[test]
    fn symbols_need_no_shell_quoting() {
        for c in PASSWORD_SYMBOLS.chars() {
            assert!(!"'\"`$!\\~ \t\n*?[]{}()<>|&;#".contains(c), "{c}");
        }
    }
}
