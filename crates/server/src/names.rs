//! Object and namespace names: RFC 1123 DNS labels, checked before anything
//! reaches the API server so a bad name is a clear 400.

use crate::error::ApiError;

pub use dbaas_api::common::{DNS_LABEL_PATTERN, is_dns_label};

/// `what` (e.g. "namespace") must be a DNS label.
pub fn check(what: &str, name: &str) -> Result<(), ApiError> {
    if is_dns_label(name) {
        Ok(())
    } else {
        Err(ApiError::InvalidName(format!(
            "{what} {name:?} is not a valid name: use at most 63 lowercase letters, digits and '-', starting and ending with a letter or digit"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dns_labels() {
        for good in ["a", "my-db", "0abc", &"a".repeat(63)] {
            assert!(is_dns_label(good), "{good}");
        }
        for bad in ["", "-a", "a-", "My", "a_b", "a.b", &"a".repeat(64), "ä"] {
            assert!(!is_dns_label(bad), "{bad}");
        }
    }
}
