//! HTTPS: the serving certificate and key come from two PEM files (a
//! Kubernetes `kubernetes.io/tls` Secret mounted as `tls.crt`/`tls.key`, a
//! cert-manager Certificate's Secret, ...) and are read again every
//! [`TlsFiles::reload_interval`]: when either file's contents changed and
//! the pair is valid, new connections get the new certificate; connections
//! already open keep theirs. A pair that does not load (half-written,
//! mismatched) is logged and the previous certificate stays in use.
//!
//! Neither the key nor its contents are ever logged; only paths and the
//! reason a pair did not load.

use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

/// Where the serving certificate and key are, and how often to look again.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsFiles {
    /// PEM: the certificate, then any intermediates.
    pub cert: PathBuf,
    /// PEM: the private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
    /// How often both files are read again.
    pub reload_interval: Duration,
}

/// The default of `--tls-reload-seconds`.
pub const DEFAULT_RELOAD_INTERVAL: Duration = Duration::from_secs(5);

impl TlsFiles {
    pub fn new(cert: impl Into<PathBuf>, key: impl Into<PathBuf>) -> Self {
        Self {
            cert: cert.into(),
            key: key.into(),
            reload_interval: DEFAULT_RELOAD_INTERVAL,
        }
    }
}

/// Why a certificate and key did not load.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("reading {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} holds no PEM certificate")]
    NoCertificate { path: PathBuf },
    #[error("{path} holds no PEM private key")]
    NoKey { path: PathBuf },
    #[error("the key in {key} does not fit the certificate in {cert}: {reason}")]
    Mismatch {
        cert: PathBuf,
        key: PathBuf,
        reason: String,
    },
}

/// The file contents last loaded, to notice a change.
#[derive(PartialEq, Eq)]
struct Loaded {
    cert: Vec<u8>,
    key: Vec<u8>,
}

/// The certificate new connections get; swapped when the files change.
pub struct ReloadingCert {
    files: TlsFiles,
    provider: Arc<CryptoProvider>,
    current: RwLock<(Arc<Loaded>, Arc<CertifiedKey>)>,
}

impl std::fmt::Debug for ReloadingCert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReloadingCert")
            .field("files", &self.files)
            .finish_non_exhaustive()
    }
}

fn read(path: &PathBuf) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.clone(),
        source,
    })
}

fn load(
    files: &TlsFiles,
    provider: &CryptoProvider,
) -> Result<(Loaded, Arc<CertifiedKey>), TlsError> {
    let loaded = Loaded {
        cert: read(&files.cert)?,
        key: read(&files.key)?,
    };
    let key = parse(files, &loaded, provider)?;
    Ok((loaded, key))
}

fn parse(
    files: &TlsFiles,
    loaded: &Loaded,
    provider: &CryptoProvider,
) -> Result<Arc<CertifiedKey>, TlsError> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&loaded.cert)
        .filter_map(Result::ok)
        .collect();
    if chain.is_empty() {
        return Err(TlsError::NoCertificate {
            path: files.cert.clone(),
        });
    }
    let key = PrivateKeyDer::from_pem_slice(&loaded.key).map_err(|_| TlsError::NoKey {
        path: files.key.clone(),
    })?;
    let certified =
        CertifiedKey::from_der(chain, key, provider).map_err(|e| TlsError::Mismatch {
            cert: files.cert.clone(),
            key: files.key.clone(),
            reason: e.to_string(),
        })?;
    Ok(Arc::new(certified))
}

impl ReloadingCert {
    /// Loads the pair once; an error here stops the server from starting.
    pub fn load(files: TlsFiles) -> Result<Arc<Self>, TlsError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let (loaded, key) = load(&files, &provider)?;
        Ok(Arc::new(Self {
            files,
            provider,
            current: RwLock::new((Arc::new(loaded), key)),
        }))
    }

    /// Reads both files again; swaps the certificate when they changed and
    /// load. Whether the certificate was swapped.
    pub fn reload(&self) -> Result<bool, TlsError> {
        let loaded = Loaded {
            cert: read(&self.files.cert)?,
            key: read(&self.files.key)?,
        };
        {
            let current = self.current.read().unwrap_or_else(|p| p.into_inner());
            if *current.0 == loaded {
                return Ok(false);
            }
        }
        let key = parse(&self.files, &loaded, &self.provider)?;
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = (Arc::new(loaded), key);
        Ok(true)
    }

    /// The rustls configuration of the listener: HTTP/1.1, this resolver.
    pub fn server_config(self: &Arc<Self>) -> Result<rustls::ServerConfig, rustls::Error> {
        let mut config = rustls::ServerConfig::builder_with_provider(self.provider.clone())
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_cert_resolver(self.clone());
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(config)
    }

    /// Polls the files until dropped (run it as a task).
    pub async fn watch(self: Arc<Self>) {
        let mut tick =
            tokio::time::interval(self.files.reload_interval.max(Duration::from_millis(10)));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            tick.tick().await;
            match self.reload() {
                Ok(true) => tracing::info!(
                    cert = %self.files.cert.display(),
                    "serving certificate reloaded"
                ),
                Ok(false) => {}
                Err(err) => tracing::warn!(
                    %err,
                    "serving certificate not reloaded; the previous one stays in use"
                ),
            }
        }
    }
}

impl ResolvesServerCert for ReloadingCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(
            self.current
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .1
                .clone(),
        )
    }
}
