//! Quoting for the places SQL takes no bind parameters (DDL: names,
//! comments, passwords). One function per engine and kind; each is
//! property-tested here and round-tripped through the real servers in the
//! integration tests.
//!
//! Names are also restricted by [`crate::ClaimNames`] long before they get
//! here; quoting is the second line of defence, not the only one.

/// A PostgreSQL identifier: `"..."` with `"` doubled. Keeps case and any
/// character except NUL (which PostgreSQL cannot store; the server rejects
/// the statement). PostgreSQL truncates identifiers beyond 63 bytes, so
/// callers check lengths first.
pub fn pg_ident(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 2);
    out.push('"');
    for c in name.chars() {
        if c == '"' {
            out.push('"');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// A PostgreSQL string literal that means the same whatever
/// `standard_conforming_strings` is: `'...'` with `'` doubled, or, when the
/// text holds a backslash, an escape string `E'...'` with `\` doubled too
/// (as libpq's `PQescapeLiteral` does).
pub fn pg_literal(text: &str) -> String {
    let has_backslash = text.contains('\\');
    let mut out = String::with_capacity(text.len() + 3);
    if has_backslash {
        out.push('E');
    }
    out.push('\'');
    for c in text.chars() {
        match c {
            '\'' => out.push_str("''"),
            '\\' => out.push_str("\\\\"),
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

/// A MySQL/MariaDB identifier: `` `...` `` with `` ` `` doubled (valid
/// whatever the `sql_mode`, `ANSI_QUOTES` included).
pub fn mysql_ident(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 2);
    out.push('`');
    for c in name.chars() {
        if c == '`' {
            out.push('`');
        }
        out.push(c);
    }
    out.push('`');
    out
}

/// A MySQL/MariaDB string literal: `'...'` with backslash escapes for
/// `\ ' " NUL \n \r ^Z` (what `mysql_real_escape_string` does for utf8mb4).
/// Backslash escapes must be on: our sessions clear `NO_BACKSLASH_ESCAPES`
/// from their `sql_mode`, and use utf8mb4, where no multi-byte character
/// hides a quote.
pub fn mysql_literal(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('\'');
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '"' => out.push_str("\\\""),
            '\0' => out.push_str("\\0"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\u{1a}' => out.push_str("\\Z"),
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

/// A MySQL database name as a `GRANT ... ON <db>.*` pattern: there `_` and
/// `%` are wildcards (so `` `a_b`.* `` would also cover a database `axb`),
/// hence escaped with a backslash, unless the server takes them literally
/// (MySQL 8 with `partial_revokes` on).
pub(crate) fn mysql_grant_database(name: &str, wildcards_literal: bool) -> String {
    if wildcards_literal {
        return mysql_ident(name);
    }
    let mut escaped = String::with_capacity(name.len() + 4);
    for c in name.chars() {
        if matches!(c, '_' | '%' | '\\') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    mysql_ident(&escaped)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Reads one quoted token the way the server's lexer does and returns
    /// (its value, the rest of the input).
    fn lex_pg_ident(sql: &str) -> Option<(String, &str)> {
        let mut chars = sql.strip_prefix('"')?.char_indices().peekable();
        let mut value = String::new();
        while let Some((i, c)) = chars.next() {
            if c == '"' {
                if chars.peek().map(|&(_, c)| c) == Some('"') {
                    chars.next();
                    value.push('"');
                } else {
                    return Some((value, &sql[i + 2..]));
                }
            } else {
                value.push(c);
            }
        }
        None
    }

    fn lex_pg_literal(sql: &str) -> Option<(String, &str)> {
        let (escape, body) = match sql.strip_prefix("E'") {
            Some(body) => (true, body),
            None => (false, sql.strip_prefix('\'')?),
        };
        let offset = sql.len() - body.len();
        let mut chars = body.char_indices().peekable();
        let mut value = String::new();
        while let Some((i, c)) = chars.next() {
            match c {
                '\'' if chars.peek().map(|&(_, c)| c) == Some('\'') => {
                    chars.next();
                    value.push('\'');
                }
                '\'' => return Some((value, &sql[offset + i + 1..])),
                '\\' if escape => {
                    let (_, next) = chars.next()?;
                    value.push(next);
                }
                c => value.push(c),
            }
        }
        None
    }

    fn lex_mysql_ident(sql: &str) -> Option<(String, &str)> {
        let mut chars = sql.strip_prefix('`')?.char_indices().peekable();
        let mut value = String::new();
        while let Some((i, c)) = chars.next() {
            if c == '`' {
                if chars.peek().map(|&(_, c)| c) == Some('`') {
                    chars.next();
                    value.push('`');
                } else {
                    return Some((value, &sql[i + 2..]));
                }
            } else {
                value.push(c);
            }
        }
        None
    }

    fn lex_mysql_literal(sql: &str) -> Option<(String, &str)> {
        let mut chars = sql.strip_prefix('\'')?.char_indices().peekable();
        let mut value = String::new();
        while let Some((i, c)) = chars.next() {
            match c {
                '\'' if chars.peek().map(|&(_, c)| c) == Some('\'') => {
                    chars.next();
                    value.push('\'');
                }
                '\'' => return Some((value, &sql[i + 2..])),
                '\\' => {
                    let (_, next) = chars.next()?;
                    value.push(match next {
                        '0' => '\0',
                        'n' => '\n',
                        'r' => '\r',
                        'Z' => '\u{1a}',
                        't' => '\t',
                        'b' => '\u{8}',
                        other => other,
                    });
                }
                c => value.push(c),
            }
        }
        None
    }

    /// Strings rich in the characters that matter to the lexers.
    fn hostile() -> impl Strategy<Value = String> {
        let nasty = prop::sample::select(vec![
            '\'', '"', '`', '\\', '\0', '\n', '\r', '\u{1a}', ';', '-', '/', '*', '$', 'E', ' ',
            'é', '名', '🦀', '\u{a0}', '\u{2028}',
        ]);
        prop::collection::vec(prop_oneof![nasty, any::<char>()], 0..40)
            .prop_map(|chars| chars.into_iter().collect())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn pg_ident_is_one_token_with_the_same_value(name in hostile(), tail in "[ ;a-z]{0,5}") {
            let sql = format!("{}{tail}", pg_ident(&name));
            prop_assert_eq!(lex_pg_ident(&sql), Some((name, tail.as_str())));
        }

        #[test]
        fn pg_literal_is_one_token_with_the_same_value(text in hostile(), tail in "[ ;a-z]{0,5}") {
            let sql = format!("{}{tail}", pg_literal(&text));
            prop_assert_eq!(lex_pg_literal(&sql), Some((text.clone(), tail.as_str())));
            // Read as a standard string ('' only, no backslash escapes), it
            // is either the same value or an E'' string: never a shorter token.
            if !text.contains('\\') {
                prop_assert!(!pg_literal(&text).starts_with('E'));
            }
        }

        #[test]
        fn mysql_ident_is_one_token_with_the_same_value(name in hostile(), tail in "[ ;a-z]{0,5}") {
            let sql = format!("{}{tail}", mysql_ident(&name));
            prop_assert_eq!(lex_mysql_ident(&sql), Some((name, tail.as_str())));
        }

        #[test]
        fn mysql_literal_is_one_token_with_the_same_value(text in hostile(), tail in "[ ;a-z]{0,5}") {
            let quoted = mysql_literal(&text);
            let sql = format!("{quoted}{tail}");
            prop_assert_eq!(lex_mysql_literal(&sql), Some((text, tail.as_str())));
            // No raw quote survives inside: ANSI_QUOTES or not, '"' cannot end it.
            let inner = &quoted[1..quoted.len() - 1];
            prop_assert!(!inner.replace("\\\\", "").replace("\\'", "").contains('\''));
        }
    }

    #[test]
    fn examples() {
        assert_eq!(pg_ident("a\"b"), "\"a\"\"b\"");
        assert_eq!(pg_literal("it's"), "'it''s'");
        assert_eq!(pg_literal("a\\'b"), "E'a\\\\''b'");
        assert_eq!(mysql_ident("a`b"), "`a``b`");
        assert_eq!(
            mysql_literal("it's \\ \"x\"\n"),
            "'it\\'s \\\\ \\\"x\\\"\\n'"
        );
    }

    #[test]
    fn grant_patterns_escape_wildcards() {
        assert_eq!(mysql_grant_database("app_db", false), "`app\\_db`");
        assert_eq!(mysql_grant_database("a%b", false), "`a\\%b`");
        assert_eq!(mysql_grant_database("app_db", true), "`app_db`");
    }
}
