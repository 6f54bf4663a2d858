//! Many DatabaseClusters at once: creating them, and following them (and the
//! CNPG Clusters the operator makes for them) through watches.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use dbaas_api::DatabaseCluster;
use dbaas_api::cluster::ClusterPhase;
use futures::{StreamExt, TryStreamExt};
use kube::api::{PostParams, ResourceExt};
use kube::core::{ApiResource, DynamicObject, GroupVersionKind, PartialObjectMeta};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client};
use serde_json::json;

/// The CloudNativePG `Cluster` resource (postgresql.cnpg.io/v1).
pub fn cnpg_resource() -> ApiResource {
    ApiResource::from_gvk(&GroupVersionKind::gvk(
        "postgresql.cnpg.io",
        "v1",
        "Cluster",
    ))
}

/// Runs `make(i)` for `0..count`, `concurrency` at once.
pub async fn create_all<F, Fut>(count: usize, concurrency: usize, make: F) -> anyhow::Result<()>
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    futures::stream::iter(0..count)
        .map(make)
        .buffer_unordered(concurrency.max(1))
        .try_for_each(|()| async { Ok(()) })
        .await
}

/// A PostgreSQL DatabaseCluster as a user writes it.
pub fn database_cluster(i: usize) -> anyhow::Result<DatabaseCluster> {
    Ok(serde_json::from_value(json!({
        "apiVersion": "dbaas.io/v1",
        "kind": "DatabaseCluster",
        "metadata": {"name": format!("db-{i:05}")},
        "spec": {
            "engine": {"type": "postgresql", "version": "16.4"},
            "clusterSize": 3,
            "storage": {"size": "10Gi"},
            "resources": {"requests": {"cpu": "1", "memory": "2Gi"}},
        },
    }))?)
}

/// Creates `count` DatabaseClusters in `namespace`.
pub async fn create_database_clusters(
    client: &Client,
    namespace: &str,
    count: usize,
    concurrency: usize,
) -> anyhow::Result<()> {
    let api: Api<DatabaseCluster> = Api::namespaced(client.clone(), namespace);
    create_all(count, concurrency, |i| {
        let api = api.clone();
        async move {
            api.create(&PostParams::default(), &database_cluster(i)?)
                .await?;
            Ok(())
        }
    })
    .await
}

/// How far the clusters of one namespace are, as the watches last saw them.
#[derive(Clone, Copy, Debug, Default)]
pub struct Progress {
    pub clusters: usize,
    /// status.observedGeneration == metadata.generation.
    pub synced: usize,
    /// Synced and phase Ready.
    pub ready: usize,
    /// CNPG Clusters in the namespace.
    pub engine_objects: usize,
}

#[derive(Default)]
struct Seen {
    clusters: HashMap<String, (bool, bool)>,
    engine_objects: HashSet<String>,
}

/// Watches the DatabaseClusters and CNPG Clusters of one namespace (one
/// list, then watch events; no polling of the API server).
pub struct Tracker {
    seen: Arc<Mutex<Seen>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for Tracker {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

impl Tracker {
    pub fn start(client: &Client, namespace: &str) -> Self {
        let seen = Arc::new(Mutex::new(Seen::default()));
        let clusters: Api<DatabaseCluster> = Api::namespaced(client.clone(), namespace);
        // Metadata only: whether each exists is all that counts here.
        let engines: Api<PartialObjectMeta<DynamicObject>> =
            Api::namespaced_with(client.clone(), namespace, &cnpg_resource());
        let cluster_seen = seen.clone();
        let cluster_task = tokio::spawn(
            watcher(clusters, watcher::Config::default())
                .default_backoff()
                .touched_objects()
                .for_each(move |event| {
                    match event {
                        Ok(cluster) => {
                            let synced = cluster.metadata.generation.is_some()
                                && cluster.status.as_ref().and_then(|s| s.observed_generation)
                                    == cluster.metadata.generation;
                            let ready = synced
                                && cluster.status.as_ref().and_then(|s| s.phase)
                                    == Some(ClusterPhase::Ready);
                            if let Ok(mut seen) = cluster_seen.lock() {
                                seen.clusters.insert(cluster.name_any(), (synced, ready));
                            }
                        }
                        Err(err) => eprintln!("bench: DatabaseCluster watch: {err}"),
                    }
                    futures::future::ready(())
                }),
        );
        let engine_seen = seen.clone();
        let engine_task = tokio::spawn(
            watcher(engines, watcher::Config::default())
                .default_backoff()
                .touched_objects()
                .for_each(move |event| {
                    match event {
                        Ok(object) => {
                            if let Ok(mut seen) = engine_seen.lock() {
                                seen.engine_objects.insert(object.name_any());
                            }
                        }
                        Err(err) => eprintln!("bench: CNPG Cluster watch: {err}"),
                    }
                    futures::future::ready(())
                }),
        );
        Self {
            seen,
            tasks: vec![cluster_task, engine_task],
        }
    }

    /// A few clusters whose status is not synced yet, for error messages.
    pub fn unsynced_sample(&self) -> Vec<String> {
        let mut names: Vec<String> = match self.seen.lock() {
            Ok(seen) => seen
                .clusters
                .iter()
                .filter(|(_, (synced, _))| !synced)
                .map(|(name, _)| name.clone())
                .collect(),
            Err(_) => Vec::new(),
        };
        names.sort();
        names.truncate(20);
        names
    }

    pub fn progress(&self) -> Progress {
        match self.seen.lock() {
            Ok(seen) => Progress {
                clusters: seen.clusters.len(),
                synced: seen.clusters.values().filter(|(synced, _)| *synced).count(),
                ready: seen.clusters.values().filter(|(_, ready)| *ready).count(),
                engine_objects: seen.engine_objects.len(),
            },
            Err(_) => Progress::default(),
        }
    }

    /// Waits until `done` holds, checking the watch state every 50 ms;
    /// returns when it first held. `alive` is asked on every check (e.g.
    /// whether the operator still runs).
    pub async fn wait_until(
        &self,
        what: &str,
        timeout: Duration,
        mut alive: impl FnMut() -> anyhow::Result<()>,
        done: impl Fn(&Progress) -> bool,
    ) -> anyhow::Result<Instant> {
        let deadline = Instant::now() + timeout;
        let mut last_report = Instant::now();
        loop {
            let progress = self.progress();
            if done(&progress) {
                return Ok(Instant::now());
            }
            alive()?;
            anyhow::ensure!(
                Instant::now() < deadline,
                "{what}: not reached within {timeout:?}; last seen {progress:?}; not synced: {:?}",
                self.unsynced_sample()
            );
            if last_report.elapsed() > Duration::from_secs(10) {
                eprintln!("  waiting for {what}: {progress:?}");
                last_report = Instant::now();
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}
