//! What every reconcile shares: the client, the watch caches, and a small
//! cache of which engine operators' CRDs are installed.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use dbaas_api::cluster::EngineObjectRef;
use dbaas_api::{DatabaseClusterTemplate, DatabaseEngine, EngineType};
use dbaas_engines::EngineProvider;
use k8s_openapi::api::apps::v1::Deployment;
use kube::api::ListParams;
use kube::core::GroupVersionKind;

use crate::cluster::unchanged::AppliedRecord;
use crate::engine::allowlist::OlmAllowlist;
use crate::events::EventPublisher;
use crate::metrics::ApplyResult;
use crate::tolerant::Synced;
use kube::runtime::reflector::Store;
use kube::{Api, Client, Resource};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use serde::de::DeserializeOwned;

/// How long a "CRD absent" answer is trusted: short, so a freshly installed
/// engine operator is noticed quickly. "Present" answers and the list of
/// operator Deployments are trusted for the detection interval.
const ABSENT_TTL: Duration = Duration::from_secs(5);

/// How long after our status write a cached copy older than it is still
/// taken for one the watch has yet to replace.
const STALE_READ_LIMIT: Duration = Duration::from_secs(30);

/// What this process remembers of one cluster between reconciles.
#[derive(Debug, Default)]
struct ClusterMemory {
    /// The engine reference last written to the cluster's status. A
    /// reconcile may be triggered by an engine-object event before the
    /// watch delivers our own status write; without this, such a stale read
    /// would move the recorded apply past the engine's status write.
    engine_ref: Option<EngineObjectRef>,
    /// What was last applied: lets a reconcile skip an apply that would
    /// change nothing.
    applied: Option<AppliedRecord>,
    /// The engine version last applied.
    applied_version: Option<String>,
    /// The resourceVersion our last status write returned, and when: a
    /// cached copy older than that is not judged (its successor is on its
    /// way). Forgotten once a copy at least as new is seen.
    status_written: Option<(u64, Instant)>,
}

/// Shared state of the controllers.
pub struct Context {
    pub client: Client,
    /// DatabaseEngines (the SRE's version policy), from a watch.
    pub engines: Store<DatabaseEngine>,
    /// DatabaseClusterTemplates, from a watch.
    pub templates: Store<DatabaseClusterTemplate>,
    /// When the DatabaseEngine and template caches have their first lists.
    pub caches_synced: [Synced; 2],
    crds: Mutex<HashMap<EngineType, (bool, Instant)>>,
    operator_images: Mutex<Option<(HashMap<EngineType, String>, Instant)>>,
    /// How often engine operators are looked for.
    pub detection_interval: Duration,
    /// Publishes Kubernetes Events on our objects.
    pub recorder: EventPublisher,
    /// What this process remembers of each cluster, by UID: one record, so
    /// that 10,000 clusters cost one key each.
    clusters: Mutex<HashMap<String, ClusterMemory>>,
    /// Engine applies sent and skipped.
    pub engine_applies: Family<ApplyResult, Counter>,
    /// What DatabaseEngines may install through OLM (the SRE's allowlist).
    pub olm_allowlist: Arc<OlmAllowlist>,
    /// The namespace these controllers watch (`None`: all): where engine
    /// operators are looked for when Deployments may not be listed
    /// everywhere (a namespaced install).
    watch_namespace: Option<String>,
}

impl Context {
    pub fn new(
        client: Client,
        engines: Store<DatabaseEngine>,
        templates: Store<DatabaseClusterTemplate>,
        caches_synced: [Synced; 2],
        detection_interval: Duration,
    ) -> Self {
        let recorder = EventPublisher::new(client.clone());
        Self {
            recorder,
            caches_synced,
            detection_interval,
            templates,
            client,
            engines,
            crds: Mutex::new(HashMap::new()),
            operator_images: Mutex::new(None),
            clusters: Mutex::new(HashMap::new()),
            engine_applies: Family::default(),
            olm_allowlist: Arc::new(OlmAllowlist::default()),
            watch_namespace: None,
        }
    }

    /// Looks for engine operators in `namespace` when it may not look
    /// everywhere.
    #[must_use]
    pub fn with_watch_namespace(mut self, namespace: Option<String>) -> Self {
        self.watch_namespace = namespace;
        self
    }

    /// Installs through OLM only what `allowlist` holds.
    #[must_use]
    pub fn with_olm_allowlist(mut self, allowlist: OlmAllowlist) -> Self {
        self.olm_allowlist = Arc::new(allowlist);
        self
    }

    /// Counts engine applies into `family` (the one `/metrics` serves).
    #[must_use]
    pub fn with_apply_counter(mut self, family: Family<ApplyResult, Counter>) -> Self {
        self.engine_applies = family;
        self
    }

    /// What this process last applied for a cluster.
    pub fn applied_record(&self, uid: &str) -> Option<AppliedRecord> {
        self.recall(uid, |memory| memory.applied.clone())
    }

    /// The engine version this process last applied for a cluster.
    pub fn applied_version(&self, uid: &str) -> Option<String> {
        self.recall(uid, |memory| memory.applied_version.clone())
    }

    /// Remembers the engine version applied for a cluster.
    pub fn record_applied_version(&self, uid: &str, version: &str) {
        self.remember(uid, |memory| {
            if memory.applied_version.as_deref() != Some(version) {
                memory.applied_version = Some(version.to_owned());
            }
        });
    }

    /// Remembers a successful apply for a cluster.
    pub fn record_applied(&self, uid: &str, record: AppliedRecord) {
        self.remember(uid, |memory| memory.applied = Some(record));
    }

    /// The engine reference this process last recorded for a cluster.
    pub fn recorded_engine_ref(&self, uid: &str) -> Option<EngineObjectRef> {
        self.recall(uid, |memory| memory.engine_ref.clone())
    }

    /// Remembers the engine reference written for a cluster.
    pub fn record_engine_ref(&self, uid: &str, engine_ref: &EngineObjectRef) {
        self.remember(uid, |memory| {
            if memory.engine_ref.as_ref() != Some(engine_ref) {
                memory.engine_ref = Some(engine_ref.clone());
            }
        });
    }

    /// Remembers the resourceVersion the API server gave a cluster for our
    /// status write.
    pub fn record_status_written(&self, uid: &str, resource_version: Option<&str>) {
        let Some(written) = resource_version.and_then(|rv| rv.parse().ok()) else {
            return;
        };
        self.remember(uid, |memory| {
            memory.status_written = Some((written, Instant::now()));
        });
    }

    /// Whether `cluster` is an older copy than the one our last status write
    /// made: the watch has not delivered that write yet, and will (so a
    /// reconcile of the newer copy follows). resourceVersions are compared
    /// as numbers, as Kubernetes allows since 1.35 (KEP-5504); one that does
    /// not parse is never called stale. A write older than
    /// [`STALE_READ_LIMIT`] is forgotten, so versions that went backwards
    /// (an etcd restore) or a dead watch cannot hold a cluster forever.
    pub fn is_stale(&self, uid: &str, resource_version: Option<&str>) -> bool {
        let Some(seen) = resource_version.and_then(|rv| rv.parse::<u64>().ok()) else {
            return false;
        };
        let mut stale = false;
        if let Ok(mut clusters) = self.clusters.lock()
            && let Some(memory) = clusters.get_mut(uid)
            && let Some((written, at)) = memory.status_written
        {
            stale = older_than_our_write(seen, written, at.elapsed());
            if !stale {
                memory.status_written = None;
            }
        }
        stale
    }

    /// Forgets a deleted cluster.
    pub fn forget_cluster(&self, uid: &str) {
        if let Ok(mut clusters) = self.clusters.lock() {
            clusters.remove(uid);
        }
    }

    fn recall<T>(&self, uid: &str, read: impl FnOnce(&ClusterMemory) -> Option<T>) -> Option<T> {
        self.clusters
            .lock()
            .ok()
            .and_then(|clusters| clusters.get(uid).and_then(read))
    }

    fn remember(&self, uid: &str, write: impl FnOnce(&mut ClusterMemory)) {
        if let Ok(mut clusters) = self.clusters.lock() {
            match clusters.get_mut(uid) {
                Some(memory) => write(memory),
                None => write(clusters.entry(uid.to_owned()).or_default()),
            }
        }
    }

    /// Waits until the engine and template caches have their first lists.
    pub async fn caches_synced(&self) {
        for synced in &self.caches_synced {
            synced.wait().await;
        }
    }

    /// A namespaced API handle.
    pub fn api<K>(&self, namespace: &str) -> Api<K>
    where
        K: Resource<Scope = kube::core::NamespaceResourceScope, DynamicType = ()>
            + DeserializeOwned,
    {
        Api::namespaced(self.client.clone(), namespace)
    }

    /// Whether the engine operator's CRD is served by the API server, asking
    /// discovery at most once per TTL.
    pub async fn engine_crd_installed(
        &self,
        provider: &dyn EngineProvider,
    ) -> Result<bool, kube::Error> {
        let engine = provider.engine();
        let resource = provider.resource();
        let gvk = &GroupVersionKind::gvk(&resource.group, &resource.version, &resource.kind);
        if let Ok(cache) = self.crds.lock()
            && let Some((present, checked)) = cache.get(&engine)
        {
            let ttl = if *present {
                self.detection_interval
            } else {
                ABSENT_TTL.min(self.detection_interval)
            };
            if checked.elapsed() < ttl {
                return Ok(*present);
            }
        }
        let present = match kube::discovery::oneshot::pinned_kind(&self.client, gvk).await {
            Ok(_) => true,
            // A missing API group answers a plain-text 404, not a Status.
            Err(kube::Error::Api(status)) if status.code == 404 => false,
            Err(kube::Error::Discovery(_)) => false,
            Err(err) => return Err(err),
        };
        if let Ok(mut cache) = self.crds.lock() {
            cache.insert(engine, (present, Instant::now()));
        }
        Ok(present)
    }

    /// The image of the engine operator's Deployment, from one list of all
    /// Deployments (the watched namespace's, when that is all it may list)
    /// shared by every engine and refreshed at most once per
    /// detection interval. None when not found or not allowed to look.
    pub async fn operator_image(&self, engine: EngineType) -> Option<String> {
        if let Ok(cache) = self.operator_images.lock()
            && let Some((images, listed)) = cache.as_ref()
            && listed.elapsed() < self.detection_interval
        {
            return images.get(&engine).cloned();
        }
        // Every namespace where allowed (engine operators usually run in
        // their own); a namespaced install may list only its own namespace.
        let everywhere: Api<Deployment> = Api::all(self.client.clone());
        let listed = match (
            everywhere.list(&ListParams::default()).await,
            &self.watch_namespace,
        ) {
            (Err(kube::Error::Api(status)), Some(namespace)) if status.code == 403 => {
                Api::<Deployment>::namespaced(self.client.clone(), namespace)
                    .list(&ListParams::default())
                    .await
            }
            (listed, _) => listed,
        };
        let images = match listed {
            Ok(list) => find_operator_images(&list.items),
            Err(err) => {
                tracing::debug!("cannot list Deployments to detect engine operators: {err}");
                HashMap::new()
            }
        };
        let found = images.get(&engine).cloned();
        if let Ok(mut cache) = self.operator_images.lock() {
            *cache = Some((images, Instant::now()));
        }
        found
    }
}

/// Whether a copy at resourceVersion `seen` predates our status write at
/// `written`, made `age` ago, and may still be replaced by the watch.
fn older_than_our_write(seen: u64, written: u64, age: Duration) -> bool {
    seen < written && age < STALE_READ_LIMIT
}

/// The first container image of each engine operator among `deployments`.
fn find_operator_images(deployments: &[Deployment]) -> HashMap<EngineType, String> {
    let mut found = HashMap::new();
    let images = deployments
        .iter()
        .filter_map(|d| d.spec.as_ref())
        .filter_map(|s| s.template.spec.as_ref())
        .flat_map(|pod| pod.containers.iter())
        .filter_map(|c| c.image.as_deref());
    for image in images {
        for engine in EngineType::ALL {
            if crate::engine::status::is_operator_image(engine, image) {
                found.entry(engine).or_insert_with(|| image.to_owned());
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_recent_write_makes_an_older_copy_stale() {
        let now = Duration::ZERO;
        assert!(older_than_our_write(99, 100, now));
        // Our own write, or anyone's later one: judged.
        assert!(!older_than_our_write(100, 100, now));
        assert!(!older_than_our_write(101, 100, now));
        // Versions that went backwards, or a watch that died, hold a
        // cluster for STALE_READ_LIMIT at most.
        assert!(!older_than_our_write(99, 100, STALE_READ_LIMIT));
    }
}
