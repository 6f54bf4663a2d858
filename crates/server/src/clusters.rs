//! Registered Kubernetes clusters: each is a kubeconfig kept in a Secret of
//! the server's own namespace (labelled as a registration), loaded at start,
//! with one set of watch caches per cluster started on registration and
//! stopped on unregistration. The kubeconfig never leaves the Secret again.
//!
//! Registering makes the server connect where the kubeconfig says, so its
//! URL is checked first ([`crate::cluster_url`]), what the remote end
//! answered is never passed back (failures are fixed descriptions), and
//! there are at most `--max-cluster-registrations` registrations.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use base64::Engine as _;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig, KubeconfigError};
use kube::{Api, Client};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::{Auth, AuthConfig};
use crate::cluster_url::RegistrationPolicy;
use crate::error::ApiError;
use crate::resources::Stores;

/// The name that always means the cluster the server runs against.
pub const LOCAL_CLUSTER: &str = "local";
/// Marks a Secret as a cluster registration (value `true`).
pub const LABEL_REGISTRATION: &str = "dbaas.io/kubernetes-cluster-registration";
/// The registered cluster's name, on its Secret.
pub const LABEL_CLUSTER_NAME: &str = "dbaas.io/kubernetes-cluster-name";
const KUBECONFIG_KEY: &str = "kubeconfig";
/// How long registration waits for the cluster to answer.
const REACH_TIMEOUT: Duration = Duration::from_secs(10);
/// How often a registered cluster's reachability is checked.
const HEALTH_INTERVAL: Duration = Duration::from_secs(15);

/// A registered cluster as the API shows it (never its kubeconfig).
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct KubernetesCluster {
    pub name: String,
    /// The API server URL of the kubeconfig's current context.
    pub server: String,
    /// The last check of the API server (every 15 s) answered.
    pub reachable: bool,
    /// Every watch cache of the cluster has its first full list.
    pub synced: bool,
    /// Why the last check failed, when it did: a fixed description (never
    /// the remote answer). Only for callers who may manage registrations
    /// (`patch kubernetesclusters`); null for the others.
    pub last_error: Option<String>,
}

/// `POST /v1/kubernetesclusters`.
#[derive(Deserialize, Debug, Clone, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RegisterCluster {
    /// A DNS label; `local` is reserved for the server's own cluster.
    pub name: String,
    /// The kubeconfig, base64-encoded. Credentials must be inline
    /// (`*-data`, `token`); file paths, `exec` and `auth-provider` are refused.
    pub kubeconfig: String,
}

/// `PATCH /v1/kubernetesclusters/{name}`: rename.
#[derive(Deserialize, Debug, Clone, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RenameCluster {
    pub name: String,
}

#[derive(Default)]
struct Health {
    reachable: AtomicBool,
    last_error: Mutex<Option<String>>,
}

/// One registered cluster: its watch caches, and its authorization (the
/// registered credentials ask that cluster's SubjectAccessReview and
/// impersonate callers there).
pub struct RemoteCluster {
    pub secret_name: String,
    pub server: String,
    pub stores: Stores,
    pub auth: Auth,
    /// The registered identity.
    pub client: Client,
    health: Arc<Health>,
    tasks: Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

impl RemoteCluster {
    /// `server` is the URL as the kubeconfig gave it; `config` has passed
    /// the registration policy.
    fn start(
        secret_name: String,
        server: String,
        config: kube::Config,
        auth: &AuthConfig,
    ) -> Result<Arc<Self>, ApiError> {
        let client = build_client(&config)?;
        let cluster = Self {
            secret_name,
            server,
            stores: Stores::default(),
            auth: Auth::remote(client.clone(), config, auth),
            client: client.clone(),
            health: Arc::new(Health::default()),
            tasks: Mutex::new(Vec::new()),
        };
        let mut tasks = cluster.stores.start_watches(&client);
        let health = cluster.health.clone();
        tasks.push(tokio::spawn(async move {
            loop {
                let answer = tokio::time::timeout(REACH_TIMEOUT, client.apiserver_version()).await;
                let error = match answer {
                    Ok(Ok(_)) => None,
                    Ok(Err(err)) => Some(describe_failure(&err).to_owned()),
                    Err(_) => Some(format!("it did not answer within {REACH_TIMEOUT:?}")),
                };
                health.reachable.store(error.is_none(), Ordering::Release);
                *health.last_error.lock().unwrap_or_else(|p| p.into_inner()) = error;
                tokio::time::sleep(HEALTH_INTERVAL).await;
            }
        }));
        *cluster.tasks.lock().unwrap_or_else(|p| p.into_inner()) = tasks;
        Ok(Arc::new(cluster))
    }

    /// Stops its watches (requests still holding it see stale caches).
    pub fn stop(&self) {
        self.stores.close();
        for task in self
            .tasks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .drain(..)
        {
            task.abort();
        }
    }

    pub fn is_synced(&self) -> bool {
        self.stores.sync_state().iter().all(|(_, synced)| *synced)
    }

    /// The registration as the API shows it; `last_error` only when
    /// `with_error` (the caller may manage registrations).
    pub fn summary(&self, name: &str, with_error: bool) -> KubernetesCluster {
        KubernetesCluster {
            name: name.to_owned(),
            server: self.server.clone(),
            reachable: self.health.reachable.load(Ordering::Acquire),
            synced: self.is_synced(),
            last_error: if with_error {
                self.health
                    .last_error
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .clone()
            } else {
                None
            },
        }
    }
}

impl Drop for RemoteCluster {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A client for a registered cluster's (checked) connection settings. A
/// failure is answered with a fixed message: kube's errors can carry the
/// proxy URL (with its credentials) and other settings of the server's.
fn build_client(config: &kube::Config) -> Result<Client, ApiError> {
    Client::try_from(config.clone()).map_err(|err| {
        tracing::debug!(
            cause = client_build_failure(&err),
            "cannot build a client for a registered cluster"
        );
        invalid_kubeconfig(
            "cannot build a client from the kubeconfig; check its certificate-authority-data, \
             client-certificate-data, client-key-data and token"
                .into(),
        )
    })
}

/// What went wrong building a client, for the log: never a URL (a proxy's
/// may hold credentials) nor a credential.
pub(crate) fn client_build_failure(err: &kube::Error) -> String {
    match err {
        kube::Error::ProxyProtocolUnsupported { .. }
        | kube::Error::ProxyProtocolDisabled { .. } => {
            "a proxy is set whose protocol is not supported".to_owned()
        }
        // Certificate and key parsing: the messages name the problem only.
        kube::Error::RustlsTls(tls) => format!("TLS settings: {tls}"),
        kube::Error::Auth(_) => "the credentials are not usable".to_owned(),
        _ => "an unexpected error".to_owned(),
    }
}

fn invalid_kubeconfig(message: String) -> ApiError {
    ApiError::Upstream {
        code: 400,
        reason: "InvalidKubeconfig".into(),
        message,
    }
}

/// The registered clusters, by name.
pub struct ClusterRegistry {
    /// The server's own namespace: where registrations are stored.
    pub namespace: String,
    /// The server's own identity on the management cluster.
    admin: Client,
    auth: AuthConfig,
    policy: RegistrationPolicy,
    clusters: RwLock<BTreeMap<String, Arc<RemoteCluster>>>,
    loaded: AtomicBool,
    /// Registrations, renames and removals one at a time.
    changes: tokio::sync::Mutex<()>,
}

impl ClusterRegistry {
    pub fn new(
        admin: Client,
        namespace: String,
        auth: AuthConfig,
        policy: RegistrationPolicy,
    ) -> Self {
        Self {
            namespace,
            admin,
            auth,
            policy,
            clusters: RwLock::new(BTreeMap::new()),
            loaded: AtomicBool::new(false),
            changes: tokio::sync::Mutex::new(()),
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<String, Arc<RemoteCluster>>> {
        self.clusters.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, BTreeMap<String, Arc<RemoteCluster>>> {
        self.clusters.write().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether the stored registrations have been loaded.
    pub fn is_loaded(&self) -> bool {
        self.loaded.load(Ordering::Acquire)
    }

    pub fn get(&self, name: &str) -> Option<Arc<RemoteCluster>> {
        self.read().get(name).cloned()
    }

    /// Every registered cluster, ordered by name.
    pub fn all(&self) -> Vec<(String, Arc<RemoteCluster>)> {
        self.read()
            .iter()
            .map(|(name, cluster)| (name.clone(), cluster.clone()))
            .collect()
    }

    fn secrets(&self) -> Api<Secret> {
        Api::namespaced(self.admin.clone(), &self.namespace)
    }

    /// Loads the registrations stored in Secrets, retrying until the
    /// management cluster answers. A stored kubeconfig that no longer
    /// parses, or that the registration policy now refuses, is skipped
    /// with a warning.
    pub async fn load(&self) {
        let params = ListParams::default().labels(&format!("{LABEL_REGISTRATION}=true"));
        let secrets = loop {
            match self.secrets().list(&params).await {
                Ok(list) => break list.items,
                // Not allowed to read them: retrying will not help, and the
                // server still serves its own cluster.
                Err(kube::Error::Api(status)) if status.code == 403 => {
                    tracing::error!(namespace = %self.namespace, message = %status.message, "may not list cluster registrations (Secrets); serving no registered clusters");
                    break Vec::new();
                }
                Err(err) => {
                    tracing::warn!(%err, namespace = %self.namespace, "cannot list cluster registrations; retrying");
                    tokio::time::sleep(Duration::from_secs(2)).await;
                }
            }
        };
        let _changes = self.changes.lock().await;
        for secret in secrets {
            let secret_name = secret.metadata.name.clone().unwrap_or_default();
            let Some(name) = secret
                .metadata
                .labels
                .as_ref()
                .and_then(|l| l.get(LABEL_CLUSTER_NAME))
                .cloned()
            else {
                tracing::warn!(secret = %secret_name, "cluster registration without a name label; skipped");
                continue;
            };
            let kubeconfig = secret
                .data
                .as_ref()
                .and_then(|d| d.get(KUBECONFIG_KEY))
                .map(|b| String::from_utf8_lossy(&b.0).into_owned())
                .unwrap_or_default();
            let started = match self.checked_config(&kubeconfig).await {
                Ok((server, config)) => {
                    RemoteCluster::start(secret_name.clone(), server, config, &self.auth)
                }
                Err(err) => Err(err),
            };
            match started {
                Ok(cluster) => {
                    self.write().insert(name, cluster);
                }
                Err(err) => {
                    tracing::warn!(secret = %secret_name, %err, "stored cluster registration is not usable; skipped");
                }
            }
        }
        self.loaded.store(true, Ordering::Release);
    }

    /// The kubeconfig's connection settings once the registration policy
    /// allows them (pinned to the checked address), and its API server URL
    /// as given.
    async fn checked_config(&self, yaml: &str) -> Result<(String, kube::Config), ApiError> {
        let mut config = config_from_yaml(yaml).await?;
        let server = config
            .cluster_url
            .to_string()
            .trim_end_matches('/')
            .to_owned();
        self.policy.check(&mut config).await?;
        Ok((server, config))
    }

    /// Checks the kubeconfig (decodes, parses, has a current context,
    /// inline credentials only, the registration policy allows its URL,
    /// the API server answers), stores it, and starts the cluster's
    /// watches.
    pub async fn register(
        &self,
        request: RegisterCluster,
        with_error: bool,
    ) -> Result<KubernetesCluster, ApiError> {
        check_cluster_name(&request.name)?;
        // Before connecting anywhere.
        self.check_room()?;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(request.kubeconfig.trim())
            .map_err(|e| invalid_kubeconfig(format!("kubeconfig is not base64: {e}")))?;
        let yaml = String::from_utf8(bytes)
            .map_err(|_| invalid_kubeconfig("kubeconfig is not UTF-8 text".into()))?;
        let (server, config) = self.checked_config(&yaml).await?;
        let client = build_client(&config)?;
        // Fixed descriptions only: what answered there is not passed back.
        match tokio::time::timeout(REACH_TIMEOUT, client.apiserver_version()).await {
            Ok(Ok(_)) => {}
            Ok(Err(err)) => {
                return Err(unreachable(format!(
                    "the API server {server}: {}",
                    describe_failure(&err)
                )));
            }
            Err(_) => {
                return Err(unreachable(format!(
                    "the API server {server} did not answer within {REACH_TIMEOUT:?}"
                )));
            }
        }
        let _changes = self.changes.lock().await;
        self.check_free(&request.name)?;
        self.check_room()?;
        let secret: Secret = serde_json::from_value(serde_json::json!({
            "metadata": {
                "generateName": "dbaas-kubernetes-cluster-",
                "namespace": self.namespace,
                "labels": { LABEL_REGISTRATION: "true", LABEL_CLUSTER_NAME: request.name },
            },
            "type": "Opaque",
        }))
        .map_err(|e| ApiError::Internal(e.to_string()))?;
        let secret = Secret {
            data: Some(BTreeMap::from([(
                KUBECONFIG_KEY.to_owned(),
                ByteString(yaml.into_bytes()),
            )])),
            ..secret
        };
        let created = self
            .secrets()
            .create(&PostParams::default(), &secret)
            .await
            .map_err(|e| ApiError::Kube(format!("storing the registration: {e}")))?;
        let secret_name = created.metadata.name.unwrap_or_default();
        let cluster = match RemoteCluster::start(secret_name.clone(), server, config, &self.auth) {
            Ok(cluster) => cluster,
            Err(err) => {
                let _ = self
                    .secrets()
                    .delete(&secret_name, &DeleteParams::default())
                    .await;
                return Err(err);
            }
        };
        let summary = cluster.summary(&request.name, with_error);
        self.write().insert(request.name, cluster);
        Ok(summary)
    }

    /// Refuses a registration beyond `--max-cluster-registrations`.
    fn check_room(&self) -> Result<(), ApiError> {
        let max = self.policy.max_registrations;
        if self.read().len() >= max {
            return Err(ApiError::Upstream {
                code: 409,
                reason: "TooManyRegistrations".into(),
                message: format!(
                    "{max} Kubernetes clusters are registered, the most this server allows (--max-cluster-registrations); unregister one first"
                ),
            });
        }
        Ok(())
    }

    fn check_free(&self, name: &str) -> Result<(), ApiError> {
        if self.read().contains_key(name) {
            return Err(ApiError::Upstream {
                code: 409,
                reason: "AlreadyExists".into(),
                message: format!("a Kubernetes cluster named {name:?} is already registered"),
            });
        }
        Ok(())
    }

    /// Renames a registration (its Secret's name label).
    pub async fn rename(
        &self,
        name: &str,
        new_name: &str,
        with_error: bool,
    ) -> Result<KubernetesCluster, ApiError> {
        check_cluster_name(new_name)?;
        let _changes = self.changes.lock().await;
        let cluster = self.get(name).ok_or_else(|| not_registered(name))?;
        if name == new_name {
            return Ok(cluster.summary(new_name, with_error));
        }
        self.check_free(new_name)?;
        let patch =
            serde_json::json!({ "metadata": { "labels": { LABEL_CLUSTER_NAME: new_name } } });
        self.secrets()
            .patch(
                &cluster.secret_name,
                &PatchParams::default(),
                &Patch::Merge(&patch),
            )
            .await
            .map_err(|e| ApiError::Kube(format!("renaming the registration: {e}")))?;
        let mut clusters = self.write();
        clusters.remove(name);
        clusters.insert(new_name.to_owned(), cluster.clone());
        Ok(cluster.summary(new_name, with_error))
    }

    /// Forgets a cluster: deletes its Secret and stops its watches.
    pub async fn unregister(&self, name: &str) -> Result<(), ApiError> {
        let _changes = self.changes.lock().await;
        let cluster = self.get(name).ok_or_else(|| not_registered(name))?;
        match self
            .secrets()
            .delete(&cluster.secret_name, &DeleteParams::default())
            .await
        {
            Ok(_) => {}
            Err(kube::Error::Api(status)) if status.code == 404 => {}
            Err(err) => return Err(ApiError::Kube(format!("deleting the registration: {err}"))),
        }
        self.write().remove(name);
        cluster.stop();
        Ok(())
    }
}

pub fn not_registered(name: &str) -> ApiError {
    ApiError::NotFound(format!(
        "no Kubernetes cluster named {name:?} is registered"
    ))
}

/// A fixed description of why a registered API server could not be asked
/// for its version: never its answer (status, message or body), which is
/// whatever sits at a URL of the caller's choosing.
fn describe_failure(err: &kube::Error) -> &'static str {
    match err {
        kube::Error::Api(_) => {
            "it answered with an error (are the kubeconfig's credentials valid there?)"
        }
        kube::Error::HyperError(_) | kube::Error::Service(_) => {
            "it could not be connected to, or TLS with it failed (does certificate-authority-data match its serving certificate?)"
        }
        kube::Error::SerdeError(_) | kube::Error::FromUtf8(_) => {
            "it did not answer as a Kubernetes API server"
        }
        _ => "it could not be asked for its version",
    }
}

fn unreachable(message: String) -> ApiError {
    ApiError::Upstream {
        code: 422,
        reason: "ClusterUnreachable".into(),
        message,
    }
}

fn check_cluster_name(name: &str) -> Result<(), ApiError> {
    crate::names::check("name", name)?;
    if name == LOCAL_CLUSTER {
        return Err(ApiError::InvalidName(format!(
            "{LOCAL_CLUSTER:?} is reserved for the server's own cluster"
        )));
    }
    Ok(())
}

/// The connection settings of a kubeconfig's current context. Only inline
/// credentials: a file path would name a file of the server's, and `exec`
/// or `auth-provider` would run a program of the caller's choosing there.
async fn config_from_yaml(yaml: &str) -> Result<kube::Config, ApiError> {
    let kubeconfig = Kubeconfig::from_yaml(yaml)
        .map_err(|e| invalid_kubeconfig(format!("kubeconfig is not valid: {e}")))?;
    let current = kubeconfig
        .current_context
        .clone()
        .filter(|c| !c.is_empty())
        .ok_or_else(|| invalid_kubeconfig("kubeconfig has no current-context".into()))?;
    if !kubeconfig.contexts.iter().any(|c| c.name == current) {
        return Err(invalid_kubeconfig(format!(
            "kubeconfig's current-context {current:?} is not one of its contexts"
        )));
    }
    for named in &kubeconfig.clusters {
        let Some(cluster) = &named.cluster else {
            continue;
        };
        if cluster.certificate_authority.is_some() {
            return Err(invalid_kubeconfig(format!(
                "cluster {:?}: certificate-authority names a file; use certificate-authority-data",
                named.name
            )));
        }
        // The server would connect to it, and it to anything.
        if cluster.proxy_url.as_deref().is_some_and(|p| !p.is_empty()) {
            return Err(invalid_kubeconfig(format!(
                "cluster {:?}: proxy-url is not accepted",
                named.name
            )));
        }
    }
    for named in &kubeconfig.auth_infos {
        let Some(user) = &named.auth_info else {
            continue;
        };
        let refused = [
            (
                user.client_certificate.is_some(),
                "client-certificate names a file; use client-certificate-data",
            ),
            (
                user.client_key.is_some(),
                "client-key names a file; use client-key-data",
            ),
            (
                user.token_file.is_some(),
                "tokenFile names a file; use token",
            ),
            (
                user.exec.is_some(),
                "exec credential plugins are not accepted",
            ),
            (
                user.auth_provider.is_some(),
                "auth-provider plugins are not accepted",
            ),
        ];
        if let Some((_, why)) = refused.iter().find(|(present, _)| *present) {
            return Err(invalid_kubeconfig(format!("user {:?}: {why}", named.name)));
        }
    }
    let mut config =
        kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
            .await
            .map_err(|e| match e {
                // From the server's own HTTPS_PROXY / https_proxy environment,
                // not from the kubeconfig (its proxy-url is refused above).
                KubeconfigError::ParseProxyUrl(_) => ApiError::Internal(
                    "the server's HTTPS_PROXY environment variable is not a valid URL".into(),
                ),
                e => invalid_kubeconfig(format!("kubeconfig is not usable: {e}")),
            })?;
    // kube fills this in from HTTPS_PROXY / https_proxy even though the
    // kubeconfig names none: a registered cluster is dialled directly at
    // the address the registration policy checked and pinned, never
    // through a proxy (which would also decide where the name leads).
    config.proxy_url = None;
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    const INLINE: &str = r#"
apiVersion: v1
kind: Config
clusters:
- name: c
  cluster: {server: "https://127.0.0.1:6443", insecure-skip-tls-verify: true}
users:
- name: u
  user: {token: abc}
contexts:
- name: x
  context: {cluster: c, user: u}
current-context: x
"#;

    #[tokio::test]
    async fn inline_kubeconfig_is_accepted() {
        let config = config_from_yaml(INLINE).await.unwrap();
        assert_eq!(config.cluster_url.to_string(), "https://127.0.0.1:6443/");
    }

    #[tokio::test]
    async fn kubeconfig_mistakes_are_named() {
        let no_context = INLINE.replace("current-context: x", "");
        let err = config_from_yaml(&no_context).await.unwrap_err();
        assert_eq!(err.reason(), "InvalidKubeconfig");
        assert!(err.to_string().contains("current-context"), "{err}");

        let exec = INLINE.replace(
            "user: {token: abc}",
            "user: {exec: {apiVersion: client.authentication.k8s.io/v1, command: /bin/sh}}",
        );
        let err = config_from_yaml(&exec).await.unwrap_err();
        assert!(err.to_string().contains("exec"), "{err}");

        let file = INLINE.replace("user: {token: abc}", "user: {client-key: /etc/shadow}");
        let err = config_from_yaml(&file).await.unwrap_err();
        assert!(err.to_string().contains("client-key"), "{err}");

        let err = config_from_yaml("::: not yaml").await.unwrap_err();
        assert_eq!(err.status().as_u16(), 400);
    }

    const PROXY: &str = "http://proxyuser:hunter2@proxy.example:3128";

    /// kube reads HTTPS_PROXY into `proxy_url`: the registered cluster is
    /// still dialled directly. The environment is changed in a child
    /// process (this one's is shared by every test thread).
    #[test]
    fn the_proxy_environment_is_not_used_for_registered_clusters() {
        let exe = std::env::current_exe().unwrap();
        let output = std::process::Command::new(exe)
            .args([
                "clusters::tests::with_proxy_environment",
                "--exact",
                "--ignored",
                "--test-threads=1",
            ])
            .env("HTTPS_PROXY", PROXY)
            .env("https_proxy", PROXY)
            .env_remove("NO_PROXY")
            .env_remove("no_proxy")
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "{stdout}\n{stderr}");
        assert!(stdout.contains("1 passed"), "{stdout}\n{stderr}");
    }

    /// Run by the test above, with HTTPS_PROXY set.
    #[tokio::test]
    #[ignore = "run by the_proxy_environment_is_not_used_for_registered_clusters"]
    async fn with_proxy_environment() {
        if std::env::var("HTTPS_PROXY").ok().as_deref() != Some(PROXY) {
            return;
        }
        // kube itself takes the proxy from the environment...
        let kubeconfig = Kubeconfig::from_yaml(INLINE).unwrap();
        let plain = kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
            .await
            .unwrap();
        assert!(plain.proxy_url.is_some());
        // ...a registration's settings do not.
        let config = config_from_yaml(INLINE).await.unwrap();
        assert_eq!(config.proxy_url, None);
        assert!(build_client(&config).is_ok());
    }

    #[tokio::test]
    async fn client_build_errors_name_no_proxy_url() {
        let mut config = config_from_yaml(INLINE).await.unwrap();
        for proxy in [
            "ftp://proxyuser:hunter2@proxy.example:21",
            "socks5://proxyuser:hunter2@proxy.example:1080",
            PROXY,
        ] {
            config.proxy_url = Some(proxy.parse().unwrap());
            // Builds (a proxy feature is on) or fails with a fixed message.
            if let Err(err) = build_client(&config) {
                assert_eq!(err.reason(), "InvalidKubeconfig");
                let message = err.to_string();
                for secret in ["hunter2", "proxyuser", "proxy.example", "proxy"] {
                    assert!(!message.contains(secret), "{message}");
                }
            }
        }
        config.proxy_url = Some("ftp://proxyuser:hunter2@proxy.example:21".parse().unwrap());
        let Err(err) = build_client(&config) else {
            panic!("an ftp:// proxy is not supported");
        };
        assert!(err.to_string().contains("cannot build a client"), "{err}");
        let Err(kube_err) = Client::try_from(config.clone()) else {
            panic!("an ftp:// proxy is not supported");
        };
        assert!(!client_build_failure(&kube_err).contains("hunter2"));
    }
}
