//! What an app is given: the claim Secret's keys, DSNs, URIs and templates.

use std::collections::BTreeMap;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use secrecy::{ExposeSecret, SecretString};

use crate::{Engine, TlsMode};

/// A claim's connection as the app sees it (the public host and port, the
/// login currently published).
#[derive(Debug, Clone)]
pub struct Connection {
    pub engine: Engine,
    pub host: String,
    pub port: u16,
    pub database: String,
    pub username: String,
    pub password: SecretString,
    pub tls: TlsMode,
    /// The CA the server's certificate is verified against, when the
    /// server has one (PEM): given to the app as `ca.crt`.
    pub trusted_ca: Option<std::sync::Arc<str>>,
}

/// RFC 3986 unreserved characters stay; everything else is %-encoded.
const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

fn encode(text: &str) -> String {
    utf8_percent_encode(text, COMPONENT).to_string()
}

/// The host part of a URI: IPv6 addresses in brackets.
fn uri_host(host: &str) -> String {
    if host.contains(':') {
        format!("[{host}]")
    } else {
        encode(host)
    }
}

/// The keys every claim Secret has.
pub const DEFAULT_KEYS: [&str; 7] = [
    "username", "password", "host", "port", "database", "sslmode", "uri",
];

/// The key of the server's CA in a claim Secret, when it has one.
pub const CA_KEY: &str = "ca.crt";

/// The claim Secret's data:
///
/// | key | value |
/// |---|---|
/// | `username`, `password`, `host`, `port`, `database` | as is |
/// | `sslmode` | libpq's vocabulary for every engine: `disable`, `prefer`, `require`, `verify-ca`, `verify-full` |
/// | `uri` | `postgresql://user:password@host:port/database?sslmode=..`, or `mysql://user:password@host:port/database?ssl-mode=REQUIRED` (MySQL's `ssl-mode` names); user, password and database %-encoded |
/// | `ca.crt` | only when the server names a CA: its PEM certificates, for the app's `sslrootcert` (or its driver's CA file) |
/// | `dsn_key` | PostgreSQL: a libpq key=value string (`host='..' port=5432 ...`, values quoted and escaped); MySQL/MariaDB: the URI |
///
/// A `dsn_key` that is empty or one of the other keys is left out (the
/// other key wins).
pub fn secret_data(conn: &Connection, dsn_key: &str) -> BTreeMap<String, String> {
    let mut data = BTreeMap::new();
    data.insert("username".to_owned(), conn.username.clone());
    data.insert(
        "password".to_owned(),
        conn.password.expose_secret().to_owned(),
    );
    data.insert("host".to_owned(), conn.host.clone());
    data.insert("port".to_owned(), conn.port.to_string());
    data.insert("database".to_owned(), conn.database.clone());
    data.insert("sslmode".to_owned(), conn.tls.as_libpq().to_owned());
    data.insert("uri".to_owned(), uri(conn));
    if let Some(ca) = &conn.trusted_ca {
        data.insert(CA_KEY.to_owned(), ca.to_string());
    }
    if !dsn_key.is_empty() && !DEFAULT_KEYS.contains(&dsn_key) && dsn_key != CA_KEY {
        let dsn = match conn.engine {
            Engine::Postgres => libpq_dsn(conn),
            Engine::MySql | Engine::MariaDb => uri(conn),
        };
        data.insert(dsn_key.to_owned(), dsn);
    }
    data
}

/// The connection URI (see [`secret_data`]).
pub fn uri(conn: &Connection) -> String {
    let (scheme, tls_key, tls_value) = match conn.engine {
        Engine::Postgres => ("postgresql", "sslmode", conn.tls.as_libpq()),
        Engine::MySql | Engine::MariaDb => ("mysql", "ssl-mode", conn.tls.as_mysql()),
    };
    format!(
        "{scheme}://{}:{}@{}:{}/{}?{tls_key}={tls_value}",
        encode(&conn.username),
        encode(conn.password.expose_secret()),
        uri_host(&conn.host),
        conn.port,
        encode(&conn.database),
    )
}

/// A libpq keyword/value connection string, every value that is not plain
/// quoted with `'` and `\` escaped by a backslash.
pub fn libpq_dsn(conn: &Connection) -> String {
    let port = conn.port.to_string();
    [
        ("host", conn.host.as_str()),
        ("port", port.as_str()),
        ("dbname", conn.database.as_str()),
        ("user", conn.username.as_str()),
        ("password", conn.password.expose_secret()),
        ("sslmode", conn.tls.as_libpq()),
    ]
    .iter()
    .map(|(key, value)| format!("{key}={}", libpq_value(value)))
    .collect::<Vec<_>>()
    .join(" ")
}

fn libpq_value(value: &str) -> String {
    let plain = !value.is_empty()
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '/' | ':'));
    if plain {
        return value.to_owned();
    }
    let mut out = String::with_capacity(value.len() + 2);
    out.push('\'');
    for c in value.chars() {
        if c == '\'' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('\'');
    out
}

/// Why a Secret template cannot be rendered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error("unknown placeholder {{{{{name}}}}}; known: {known}", known = PLACEHOLDERS.join(", "))]
    UnknownPlaceholder { name: String },
    #[error("a placeholder opened at byte {at} is not closed with }}}}")]
    Unclosed { at: usize },
}

/// What templates may use, each as `{{name}}` (spaces inside the braces allowed).
pub const PLACEHOLDERS: [&str; 10] = [
    "host",
    "port",
    "database",
    "username",
    "password",
    "sslmode",
    "password_urlencoded",
    "username_urlencoded",
    "database_urlencoded",
    "host_urlencoded",
];

/// Renders an extra Secret format, e.g. JDBC:
/// `jdbc:postgresql://{{host}}:{{port}}/{{database}}?user={{username_urlencoded}}&password={{password_urlencoded}}`.
/// Placeholders are listed in [`PLACEHOLDERS`]; `sslmode` is libpq's value.
/// Values are inserted as they are (use the `_urlencoded` forms inside URLs).
pub fn render_template(template: &str, conn: &Connection) -> Result<String, TemplateError> {
    let mut out = String::with_capacity(template.len() + 64);
    let mut rest = template;
    while let Some(open) = rest.find("{{") {
        out.push_str(&rest[..open]);
        let after = &rest[open + 2..];
        let close = after.find("}}").ok_or(TemplateError::Unclosed {
            at: template.len() - rest.len() + open,
        })?;
        let name = after[..close].trim();
        let value = match name {
            "host" => conn.host.clone(),
            "port" => conn.port.to_string(),
            "database" => conn.database.clone(),
            "username" => conn.username.clone(),
            "password" => conn.password.expose_secret().to_owned(),
            "sslmode" => conn.tls.as_libpq().to_owned(),
            "password_urlencoded" => encode(conn.password.expose_secret()),
            "username_urlencoded" => encode(&conn.username),
            "database_urlencoded" => encode(&conn.database),
            "host_urlencoded" => uri_host(&conn.host),
            other => {
                return Err(TemplateError::UnknownPlaceholder {
                    name: other.to_owned(),
                });
            }
        };
        out.push_str(&value);
        rest = &after[close + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use percent_encoding::percent_decode_str;

    const HOSTILE: &str = "p@ss:w/o?r#d%20&x=y 'q' \"dq\" \\back\\ +plus; é名";

    fn conn(engine: Engine, password: &str) -> Connection {
        Connection {
            engine,
            host: "db.example.internal".into(),
            port: 5432,
            database: "orders".into(),
            username: "orders_a".into(),
            password: SecretString::from(password),
            tls: TlsMode::Require,
            trusted_ca: None,
        }
    }

    /// A libpq keyword/value parser, following libpq's conninfo_parse.
    fn parse_libpq(dsn: &str) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        let mut chars = dsn.chars().peekable();
        loop {
            while chars.peek().is_some_and(|c| c.is_whitespace()) {
                chars.next();
            }
            if chars.peek().is_none() {
                return out;
            }
            let key: String = chars.by_ref().take_while(|&c| c != '=').collect();
            let mut value = String::new();
            if chars.peek() == Some(&'\'') {
                chars.next();
                while let Some(c) = chars.next() {
                    match c {
                        '\\' => value.push(chars.next().unwrap()),
                        '\'' => break,
                        c => value.push(c),
                    }
                }
            } else {
                while let Some(&c) = chars.peek() {
                    if c.is_whitespace() {
                        break;
                    }
                    chars.next();
                    if c == '\\' {
                        value.push(chars.next().unwrap());
                    } else {
                        value.push(c);
                    }
                }
            }
            out.insert(key.trim().to_owned(), value);
        }
    }

    fn split_uri(uri: &str) -> (String, String, String, String, String, String) {
        let (scheme, rest) = uri.split_once("://").unwrap();
        let (userinfo, rest) = rest.rsplit_once('@').unwrap();
        let (user, password) = userinfo.split_once(':').unwrap();
        let (hostport, rest) = rest.split_once('/').unwrap();
        let (database, query) = rest.split_once('?').unwrap();
        let decode = |s: &str| percent_decode_str(s).decode_utf8().unwrap().into_owned();
        assert!(!user.contains(['@', ':', '/']) && !password.contains(['@', ':', '/', '?', '#']));
        (
            scheme.to_owned(),
            decode(user),
            decode(password),
            hostport.to_owned(),
            decode(database),
            query.to_owned(),
        )
    }

    #[test]
    fn default_keys_and_the_dsn() {
        let data = secret_data(&conn(Engine::Postgres, "pw"), "DATABASE_URL");
        let keys: Vec<_> = data.keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            [
                "DATABASE_URL",
                "database",
                "host",
                "password",
                "port",
                "sslmode",
                "uri",
                "username"
            ]
        );
        assert_eq!(data["sslmode"], "require");
        assert_eq!(data["port"], "5432");
        assert_eq!(
            data["DATABASE_URL"],
            "host=db.example.internal port=5432 dbname=orders user=orders_a password=pw sslmode=require"
        );
        assert_eq!(
            data["uri"],
            "postgresql://orders_a:pw@db.example.internal:5432/orders?sslmode=require"
        );
    }

    #[test]
    fn a_dsn_key_never_replaces_a_default_key() {
        let data = secret_data(&conn(Engine::Postgres, "pw"), "password");
        assert_eq!(data["password"], "pw");
        assert_eq!(data.len(), 7);
        assert_eq!(secret_data(&conn(Engine::Postgres, "pw"), "").len(), 7);
    }

    #[test]
    fn a_servers_ca_is_given_as_ca_crt_and_never_replaced() {
        let with_ca = Connection {
            trusted_ca: Some("-----BEGIN CERTIFICATE-----\n...".into()),
            ..conn(Engine::Postgres, "pw")
        };
        let data = secret_data(&with_ca, CA_KEY);
        assert_eq!(data.len(), 8);
        assert_eq!(data[CA_KEY], "-----BEGIN CERTIFICATE-----\n...");
        assert!(!secret_data(&conn(Engine::Postgres, "pw"), "dsn").contains_key(CA_KEY));
    }

    #[test]
    fn hostile_password_survives_the_libpq_dsn() {
        for password in [HOSTILE, "", "'", "\\", "a b", "x'='y", "=", "\\'"] {
            let data = secret_data(&conn(Engine::Postgres, password), "dsn");
            let parsed = parse_libpq(&data["dsn"]);
            assert_eq!(parsed["password"], password, "{}", data["dsn"]);
            assert_eq!(parsed["user"], "orders_a");
            assert_eq!(parsed["dbname"], "orders");
            assert_eq!(parsed["sslmode"], "require");
            assert_eq!(parsed.len(), 6, "{}", data["dsn"]);
        }
    }

    #[test]
    fn hostile_password_survives_the_uris() {
        for engine in [Engine::Postgres, Engine::MySql, Engine::MariaDb] {
            for password in [HOSTILE, "", "@", ":", "%", "/", "?#"] {
                let data = secret_data(&conn(engine, password), "dsn");
                let (scheme, user, decoded, hostport, database, query) = split_uri(&data["uri"]);
                assert_eq!(decoded, password);
                assert_eq!(user, "orders_a");
                assert_eq!(hostport, "db.example.internal:5432");
                assert_eq!(database, "orders");
                if engine == Engine::Postgres {
                    assert_eq!(
                        (scheme.as_str(), query.as_str()),
                        ("postgresql", "sslmode=require")
                    );
                } else {
                    assert_eq!(
                        (scheme.as_str(), query.as_str()),
                        ("mysql", "ssl-mode=REQUIRED")
                    );
                    assert_eq!(data["dsn"], data["uri"]);
                }
            }
        }
    }

    #[test]
    fn ipv6_hosts_are_bracketed() {
        let mut c = conn(Engine::Postgres, "pw");
        c.host = "fd00::1".into();
        assert!(uri(&c).contains("@[fd00::1]:5432/"), "{}", uri(&c));
        assert!(libpq_dsn(&c).starts_with("host=fd00::1 "));
    }

    #[test]
    fn templates() {
        let c = conn(Engine::Postgres, HOSTILE);
        let jdbc = render_template(
            "jdbc:postgresql://{{host}}:{{ port }}/{{database}}?user={{username_urlencoded}}&password={{password_urlencoded}}&sslmode={{sslmode}}",
            &c,
        )
        .unwrap();
        let password = jdbc
            .split("password=")
            .nth(1)
            .unwrap()
            .split('&')
            .next()
            .unwrap();
        assert_eq!(percent_decode_str(password).decode_utf8().unwrap(), HOSTILE);
        assert!(
            jdbc.starts_with("jdbc:postgresql://db.example.internal:5432/orders?user=orders_a&")
        );
        assert!(jdbc.ends_with("&sslmode=require"));
        assert_eq!(
            render_template("no placeholders", &c).unwrap(),
            "no placeholders"
        );
        assert_eq!(render_template("{{password}}", &c).unwrap(), HOSTILE);
        assert_eq!(
            render_template("{{nope}}", &c),
            Err(TemplateError::UnknownPlaceholder {
                name: "nope".into()
            })
        );
        assert_eq!(
            render_template("a {{host", &c),
            Err(TemplateError::Unclosed { at: 2 })
        );
        // A value that looks like a placeholder is not expanded again.
        let tricky = conn(Engine::Postgres, "{{host}}");
        assert_eq!(
            render_template("{{password}}", &tricky).unwrap(),
            "{{host}}"
        );
    }
}
