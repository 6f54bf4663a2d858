//! What can go wrong talking to a server, with a bounded reason for
//! conditions and metric labels.

/// Why a database operation failed. Messages never contain a password.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SqlError {
    /// No connection (refused, timed out, dropped mid-way, server shutting
    /// down). One message for all of them: a DatabaseServer's author picks
    /// the address, and telling "refused" from "timed out" in its status
    /// would make the operator a port scanner. `detail` is for the log.
    #[error("cannot reach {host}:{port}")]
    Unreachable {
        host: String,
        port: u16,
        detail: String,
    },
    /// TLS could not be set up (the server has none, or its certificate is not trusted).
    #[error("TLS with {host}:{port} failed: {detail}")]
    Tls {
        host: String,
        port: u16,
        detail: String,
    },
    /// The server refused the login. `admin` tells the admin's login from a claim's.
    #[error("{user} cannot log in: {detail}")]
    AuthFailed {
        user: String,
        admin: bool,
        detail: String,
    },
    /// The admin is logged in but may not do this.
    #[error("the admin user lacks a privilege: {detail}")]
    PermissionDenied { detail: String },
    /// The object exists and is not this claim's. `owner` says who holds it
    /// as far as this claim may know: a claim of its own namespace by name,
    /// any other only as "a claim in another namespace".
    #[error("{object} already exists and belongs to {owner}, not to this claim")]
    OwnedByOther { object: String, owner: String },
    /// The object should exist by now (e.g. a login before its password is set).
    #[error("{object} does not exist")]
    NotFound { object: String },
    /// The request itself is wrong (a name, a procedure name, a login of another claim).
    #[error("invalid request: {detail}")]
    Invalid { detail: String },
    /// A stored procedure failed or returned something unusable.
    #[error("stored procedure {procedure}: {detail}")]
    Procedure { procedure: String, detail: String },
    /// Any other error the server reported (SQLSTATE or MySQL error number).
    #[error("server error {code}: {message}")]
    Server { code: String, message: String },
}

impl SqlError {
    /// A bounded CamelCase reason for conditions and metric labels.
    pub fn reason(&self) -> &'static str {
        match self {
            SqlError::Unreachable { .. } => "ServerUnreachable",
            SqlError::Tls { .. } => "TlsFailed",
            SqlError::AuthFailed { admin: true, .. } => "AdminAuthFailed",
            SqlError::AuthFailed { admin: false, .. } => "LoginFailed",
            SqlError::PermissionDenied { .. } => "AdminPermissionDenied",
            SqlError::OwnedByOther { .. } => "OwnedByAnotherClaim",
            SqlError::NotFound { .. } => "ObjectMissing",
            SqlError::Invalid { .. } => "InvalidRequest",
            SqlError::Procedure { .. } => "StoredProcedureFailed",
            SqlError::Server { .. } => "ServerError",
        }
    }

    /// Whether trying again later may succeed without anyone changing
    /// anything (the server is down, busy, or a transaction lost a race).
    pub fn is_transient(&self) -> bool {
        match self {
            SqlError::Unreachable { .. } => true,
            SqlError::Server { code, .. } => transient_code(code),
            _ => false,
        }
    }

    /// A concurrent creation of the same object: look again.
    pub(crate) fn is_conflict(&self) -> bool {
        matches!(self, SqlError::Server { code, .. } if CONFLICT_CODES.contains(&code.as_str()))
    }

    /// Replaces `secret` wherever it appears in the message (servers may
    /// quote a statement back, e.g. near a syntax error).
    pub(crate) fn redact(self, secret: &str) -> SqlError {
        if secret.is_empty() {
            return self;
        }
        let clean = |text: String| text.replace(secret, "[redacted]");
        match self {
            SqlError::Unreachable { host, port, detail } => SqlError::Unreachable {
                host,
                port,
                detail: clean(detail),
            },
            SqlError::Tls { host, port, detail } => SqlError::Tls {
                host,
                port,
                detail: clean(detail),
            },
            SqlError::AuthFailed {
                user,
                admin,
                detail,
            } => SqlError::AuthFailed {
                user,
                admin,
                detail: clean(detail),
            },
            SqlError::PermissionDenied { detail } => SqlError::PermissionDenied {
                detail: clean(detail),
            },
            SqlError::Invalid { detail } => SqlError::Invalid {
                detail: clean(detail),
            },
            SqlError::Procedure { procedure, detail } => SqlError::Procedure {
                procedure,
                detail: clean(detail),
            },
            SqlError::Server { code, message } => SqlError::Server {
                code,
                message: clean(message),
            },
            other @ (SqlError::OwnedByOther { .. } | SqlError::NotFound { .. }) => other,
        }
    }
}

/// PostgreSQL: duplicate_object, unique_violation (two sessions creating the
/// same role), duplicate_database. MySQL: duplicate key (1062), database
/// exists (1007), CREATE USER failed (1396).
const CONFLICT_CODES: &[&str] = &["42710", "23505", "42P04", "1062", "1007", "1396"];

fn transient_code(code: &str) -> bool {
    // PostgreSQL classes: 08 connection exception, 40 transaction rollback
    // (deadlock, serialization), 53 insufficient resources, 57P0x shutting
    // down; 55P03 lock not available, 55006 object in use.
    if code.len() == 5 && code.chars().all(|c| c.is_ascii_alphanumeric()) {
        return code.starts_with("08")
            || code.starts_with("40")
            || code.starts_with("53")
            || code.starts_with("57P")
            || code == "55P03"
            || code == "55006";
    }
    // MySQL: 1040 too many connections, 1053 shutdown in progress, 1205 lock
    // wait timeout, 1213 deadlock, 1317 interrupted, 1927 connection killed,
    // 2002/2003/2006/2013 connection lost.
    matches!(
        code,
        "1040" | "1053" | "1205" | "1213" | "1317" | "1927" | "2002" | "2003" | "2006" | "2013"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_are_bounded_camel_case() {
        let errors = [
            SqlError::Unreachable {
                host: "h".into(),
                port: 1,
                detail: "d".into(),
            },
            SqlError::AuthFailed {
                user: "u".into(),
                admin: true,
                detail: "d".into(),
            },
            SqlError::AuthFailed {
                user: "u".into(),
                admin: false,
                detail: "d".into(),
            },
            SqlError::OwnedByOther {
                object: "o".into(),
                owner: "ns/x".into(),
            },
            SqlError::Server {
                code: "XX000".into(),
                message: "m".into(),
            },
        ];
        let reasons: Vec<_> = errors.iter().map(SqlError::reason).collect();
        assert_eq!(
            reasons,
            [
                "ServerUnreachable",
                "AdminAuthFailed",
                "LoginFailed",
                "OwnedByAnotherClaim",
                "ServerError"
            ]
        );
        for reason in reasons {
            assert!(reason.chars().all(|c| c.is_ascii_alphanumeric()));
            assert!(reason.starts_with(|c: char| c.is_ascii_uppercase()));
        }
    }

    #[test]
    fn transient_errors() {
        let server = |code: &str| SqlError::Server {
            code: code.into(),
            message: String::new(),
        };
        for code in [
            "40P01", "40001", "08006", "57P01", "55P03", "53300", "1213", "1205",
        ] {
            assert!(server(code).is_transient(), "{code}");
        }
        for code in ["42601", "42501", "XX000", "1064", "1045"] {
            assert!(!server(code).is_transient(), "{code}");
        }
        assert!(
            !SqlError::OwnedByOther {
                object: "o".into(),
                owner: "unknown".into()
            }
            .is_transient()
        );
    }

    #[test]
    fn redact_removes_the_secret_everywhere() {
        let err = SqlError::Server {
            code: "1064".into(),
            message: "syntax error near 'hunter2' IDENTIFIED BY 'hunter2'".into(),
        }
        .redact("hunter2");
        assert!(!err.to_string().contains("hunter2"), "{err}");
        assert!(err.to_string().contains("[redacted]"));
    }
}
