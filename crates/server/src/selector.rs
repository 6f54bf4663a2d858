//! Kubernetes label selector syntax (`a=b,c!=d,e,!f,g in (x,y),h notin (z)`)
//! parsed into kube's [`Selector`], which does the matching.

use std::collections::BTreeSet;

use kube::core::{Expression, Selector};

/// Why a selector string is not valid.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SelectorError {
    #[error("labelSelector {selector:?}: {detail}")]
    Invalid { selector: String, detail: String },
}

/// Parses a label selector; the empty string selects everything.
pub fn parse(selector: &str) -> Result<Selector, SelectorError> {
    let invalid = |detail: String| SelectorError::Invalid {
        selector: selector.to_owned(),
        detail,
    };
    let mut expressions = Vec::new();
    for requirement in split_top_level(selector).map_err(&invalid)? {
        let requirement = requirement.trim();
        if requirement.is_empty() {
            if selector.trim().is_empty() {
                continue;
            }
            return Err(invalid("empty requirement".into()));
        }
        expressions.push(parse_requirement(requirement).map_err(&invalid)?);
    }
    Ok(Selector::from_iter(expressions))
}

/// Splits at commas outside parentheses.
fn split_top_level(selector: &str) -> Result<Vec<&str>, String> {
    let mut parts = Vec::new();
    let mut depth = 0usize;
    let mut start = 0;
    for (i, c) in selector.char_indices() {
        match c {
            '(' => {
                depth += 1;
                if depth > 1 {
                    return Err("nested parentheses".into());
                }
            }
            ')' => depth = depth.checked_sub(1).ok_or("unbalanced ')'")?,
            ',' if depth == 0 => {
                parts.push(&selector[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    if depth != 0 {
        return Err("unbalanced '('".into());
    }
    parts.push(&selector[start..]);
    Ok(parts)
}

fn parse_requirement(requirement: &str) -> Result<Expression, String> {
    if let Some(key) = requirement.strip_prefix('!') {
        let key = key.trim();
        check_key(key)?;
        return Ok(Expression::DoesNotExist(key.to_owned()));
    }
    if let Some((key, value)) = requirement.split_once("!=") {
        let (key, value) = (key.trim(), value.trim());
        check_key(key)?;
        check_value(value)?;
        return Ok(Expression::NotEqual(key.to_owned(), value.to_owned()));
    }
    if let Some((key, value)) = requirement
        .split_once("==")
        .or_else(|| requirement.split_once('='))
    {
        let (key, value) = (key.trim(), value.trim());
        check_key(key)?;
        check_value(value)?;
        return Ok(Expression::Equal(key.to_owned(), value.to_owned()));
    }
    if let Some(open) = requirement.find('(') {
        let head = requirement[..open].trim();
        let (key, operator) = head.rsplit_once(char::is_whitespace).ok_or_else(|| {
            format!("{requirement:?}: expected `key in (...)` or `key notin (...)`")
        })?;
        let key = key.trim();
        check_key(key)?;
        let list = requirement[open + 1..]
            .strip_suffix(')')
            .ok_or_else(|| format!("{requirement:?}: text after ')'"))?;
        let values = list
            .split(',')
            .map(|v| {
                let v = v.trim();
                check_value(v).map(|()| v.to_owned())
            })
            .collect::<Result<BTreeSet<String>, String>>()?;
        return match operator {
            "in" => Ok(Expression::In(key.to_owned(), values)),
            "notin" => Ok(Expression::NotIn(key.to_owned(), values)),
            other => Err(format!("unknown operator {other:?}: use in or notin")),
        };
    }
    check_key(requirement)?;
    Ok(Expression::Exists(requirement.to_owned()))
}

/// A label key: an optional DNS-subdomain prefix and `/`, then a name of at
/// most 63 characters.
fn check_key(key: &str) -> Result<(), String> {
    let (prefix, name) = match key.rsplit_once('/') {
        Some((prefix, name)) => (Some(prefix), name),
        None => (None, key),
    };
    if let Some(prefix) = prefix {
        let ok = !prefix.is_empty()
            && prefix.len() <= 253
            && prefix.split('.').all(crate::names::is_dns_label);
        if !ok {
            return Err(format!(
                "label key {key:?}: the prefix must be a DNS subdomain"
            ));
        }
    }
    if name.is_empty() || !is_label_value(name) {
        return Err(format!(
            "label key {key:?}: the name must be 1-63 characters of [A-Za-z0-9-_.], starting and ending alphanumeric"
        ));
    }
    Ok(())
}

fn check_value(value: &str) -> Result<(), String> {
    if is_label_value(value) {
        Ok(())
    } else {
        Err(format!(
            "label value {value:?}: at most 63 characters of [A-Za-z0-9-_.], starting and ending alphanumeric"
        ))
    }
}

fn is_label_value(value: &str) -> bool {
    if value.is_empty() {
        return true;
    }
    let bytes = value.as_bytes();
    value.len() <= 63
        && bytes[0].is_ascii_alphanumeric()
        && bytes[bytes.len() - 1].is_ascii_alphanumeric()
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use kube::core::SelectorExt;

    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn parses_every_operator() {
        let selector = parse("a=b, c!=d,e,!f,g in (x, y),h notin (z),i==j").unwrap();
        assert_eq!(
            selector.to_string(),
            "a=b,c!=d,e,!f,g in (x,y),h notin (z),i=j"
        );
        let matching = labels(&[("a", "b"), ("c", "x"), ("e", ""), ("g", "y"), ("i", "j")]);
        assert!(selector.matches(&matching));
        let wrong_value = labels(&[("a", "b"), ("c", "d"), ("e", ""), ("g", "y"), ("i", "j")]);
        assert!(!selector.matches(&wrong_value));
        let has_f = labels(&[("a", "b"), ("e", ""), ("f", "1"), ("g", "x"), ("i", "j")]);
        assert!(!selector.matches(&has_f));
    }

    #[test]
    fn empty_selects_everything_and_prefixed_keys_work() {
        assert!(parse("").unwrap().matches(&labels(&[])));
        let selector = parse("dbaas.io/engine=postgresql").unwrap();
        assert!(selector.matches(&labels(&[("dbaas.io/engine", "postgresql")])));
    }

    #[test]
    fn rejects_malformed_selectors() {
        for bad in [
            "a=b,",
            "=b",
            "a in (b",
            "a in b)",
            "a=b c",
            "a between (b)",
            "Bad_Prefix.io/x=y",
            "a=-b",
            &format!("a={}", "x".repeat(64)),
        ] {
            assert!(parse(bad).is_err(), "{bad:?} should be refused");
        }
    }
}
