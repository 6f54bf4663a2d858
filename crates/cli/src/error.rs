//! Errors of `dbaasctl` and the exit code each one maps to.

use std::path::PathBuf;
use std::time::Duration;

/// Exit code for success.
pub const EXIT_OK: u8 = 0;
/// Exit code for any error without a more specific code.
pub const EXIT_ERROR: u8 = 1;
/// Exit code for a usage error; clap exits with it on its own.
pub const EXIT_USAGE: u8 = 2;
/// Exit code when the named object does not exist.
pub const EXIT_NOT_FOUND: u8 = 3;
/// Exit code when `--wait` ran out of time.
pub const EXIT_TIMEOUT: u8 = 4;
/// Exit code when an object changed between reading and writing it back.
pub const EXIT_CONFLICT: u8 = 5;

#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("reading kubeconfig {path}: {source}")]
    Kubeconfig {
        path: PathBuf,
        #[source]
        source: Box<kube::config::KubeconfigError>,
    },
    #[error("talking to the REST API at {server}: {detail}")]
    Server { server: String, detail: String },
    #[error("connecting to Kubernetes: {0}")]
    Connect(#[source] Box<kube::Error>),
    #[error("{kind} {name:?} not found in namespace {namespace:?}")]
    NotFound {
        kind: &'static str,
        name: String,
        namespace: String,
    },
    #[error("{action} {kind} {name:?} in namespace {namespace:?}: {source}")]
    Api {
        action: &'static str,
        kind: &'static str,
        name: String,
        namespace: String,
        #[source]
        source: Box<kube::Error>,
    },
    #[error("timed out after {}s waiting for {what}", timeout.as_secs())]
    Timeout { timeout: Duration, what: String },
    #[error("watching for {what}: {detail}")]
    Watch { what: String, detail: String },
    #[error("{what} was deleted while waiting for it")]
    DeletedWhileWaiting { what: String },
    #[error("cluster {name:?} has no {field} yet (is it Ready? see `dbaasctl cluster get {name}`)")]
    NotReported { name: String, field: &'static str },
    #[error("Secret {secret:?} has no key {key:?}")]
    MissingSecretKey { secret: String, key: String },
    #[error("writing output: {0}")]
    Output(String),
    #[error("asking the API server about {service_account}: {source}")]
    Review {
        service_account: String,
        #[source]
        source: Box<kube::Error>,
    },
    #[error("{report}\nthe operator cannot run without: {required}")]
    PermissionsMissing { report: String, required: String },
    #[error("{what}: {source}")]
    Install {
        what: String,
        #[source]
        source: Box<kube::Error>,
    },
    #[error("backup {name:?} failed: {message}")]
    BackupFailed { name: String, message: String },
    /// Arguments clap accepts one by one but that do not fit together.
    #[error("{0}")]
    Usage(String),
    #[error("{kind} {name:?} {phase}: {message}")]
    OpsEnded {
        kind: &'static str,
        name: String,
        phase: dbaas_api::ops::OpsPhase,
        message: String,
    },
    #[error(
        "DatabaseCluster {name:?} was changed by someone else since it was read (resourceVersion {read_version}); nothing was written: run the edit again"
    )]
    EditConflict { name: String, read_version: String },
    #[error("running the editor {editor:?}: {detail}")]
    Editor { editor: String, detail: String },
    #[error("the edited DatabaseCluster is not valid: {detail}\n(your edit is kept in {kept})")]
    InvalidEdit { detail: String, kept: String },
    #[error("rendering the manifests: {0}")]
    Manifest(String),
    #[error(
        "DatabaseEngine {engine:?} does not install its operator through OLM: run `dbaasctl engines install` first"
    )]
    NotInstalledThroughOlm { engine: String },
}

impl CliError {
    /// The documented exit code (see `dbaasctl --help`).
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::NotFound { .. } => EXIT_NOT_FOUND,
            Self::Timeout { .. } => EXIT_TIMEOUT,
            Self::Usage(_) => EXIT_USAGE,
            Self::EditConflict { .. } => EXIT_CONFLICT,
            _ => EXIT_ERROR,
        }
    }

    /// Wraps an API error, turning a 404 into [`CliError::NotFound`] so it
    /// gets its own exit code.
    pub fn from_api(
        action: &'static str,
        kind: &'static str,
        name: &str,
        namespace: &str,
        source: kube::Error,
    ) -> Self {
        match &source {
            kube::Error::Api(status) if status.is_not_found() => Self::NotFound {
                kind,
                name: name.to_string(),
                namespace: namespace.to_string(),
            },
            _ => Self::Api {
                action,
                kind,
                name: name.to_string(),
                namespace: namespace.to_string(),
                source: Box::new(source),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::core::Status;

    fn api_error(code: u16, reason: &str) -> kube::Error {
        kube::Error::Api(Box::new(Status::failure("boom", reason).with_code(code)))
    }

    #[test]
    fn not_found_gets_its_own_exit_code() {
        let err = CliError::from_api(
            "getting",
            "DatabaseCluster",
            "pg",
            "ns",
            api_error(404, "NotFound"),
        );
        assert!(matches!(err, CliError::NotFound { .. }), "{err:?}");
        assert_eq!(err.exit_code(), EXIT_NOT_FOUND);
        assert_eq!(
            err.to_string(),
            r#"DatabaseCluster "pg" not found in namespace "ns""#
        );
    }

    #[test]
    fn other_api_errors_are_plain_errors() {
        for (code, reason) in [(409, "AlreadyExists"), (422, "Invalid"), (403, "Forbidden")] {
            let err = CliError::from_api(
                "creating",
                "DatabaseCluster",
                "pg",
                "ns",
                api_error(code, reason),
            );
            assert_eq!(err.exit_code(), EXIT_ERROR, "{code}");
        }
    }

    #[test]
    fn timeout_exit_code() {
        let err = CliError::Timeout {
            timeout: Duration::from_secs(5),
            what: "x".into(),
        };
        assert_eq!(err.exit_code(), EXIT_TIMEOUT);
        assert_ne!(EXIT_USAGE, EXIT_OK);
    }
}
