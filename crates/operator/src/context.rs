//! What every reconcile shares: the client, the watch caches, and a small
//! cache of which engine operators' CRDs are installed.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use dbaas_api::{DatabaseEngine, EngineType};
use dbaas_engines::EngineProvider;
use kube::core::GroupVersionKind;
use kube::runtime::reflector::Store;
use kube::{Api, Client, Resource};
use serde::de::DeserializeOwned;

/// How long a "CRD present" answer is trusted.
const PRESENT_TTL: Duration = Duration::from_secs(60);
/// How long a "CRD absent" answer is trusted: short, so a freshly installed
/// engine operator is noticed quickly.
const ABSENT_TTL: Duration = Duration::from_secs(5);

/// Shared state of the controllers.
pub struct Context {
    pub client: Client,
    /// DatabaseEngines (the SRE's version policy), from a watch.
    pub engines: Store<DatabaseEngine>,
    crds: Mutex<HashMap<EngineType, (bool, Instant)>>,
}

impl Context {
    pub fn new(client: Client, engines: Store<DatabaseEngine>) -> Self {
        Self {
            client,
            engines,
            crds: Mutex::new(HashMap::new()),
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
            let ttl = if *present { PRESENT_TTL } else { ABSENT_TTL };
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
}
