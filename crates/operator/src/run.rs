//! Wires the controllers to the API server and runs them until shutdown.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use dbaas_api::claim::LABEL_CLAIM;
use dbaas_api::common::{LABEL_MANAGED_BY, MANAGED_BY_VALUE};
use dbaas_api::{
    BackupScheduleTemplate, BackupStorage, DatabaseBackup, DatabaseClaim, DatabaseCluster,
    DatabaseClusterTemplate, DatabaseEngine, DatabaseServer, EngineType, MonitoringConfig,
    OpsRequest,
};
use dbaas_engines::provider_for;
use futures::{FutureExt, StreamExt};
use k8s_openapi::api::core::v1::Secret;
use kube::runtime::controller::Action;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::{WatchStreamExt, predicates, watcher};
use kube::{Api, Client, ResourceExt};
use tracing::{debug, info, warn};

use crate::claim::{ClaimContext, ClaimsConfig};
use crate::context::Context;
use crate::engine::allowlist::OlmAllowlist;
use crate::metrics::{ErrorReason, KindLabel, Metrics, PhaseLabel};
use crate::server::ServerContext;
use crate::tolerant::Synced;
use crate::{backup, claim, cluster, engine, ops, server, tolerant, trigger};

/// How long in-flight reconciles may run on after the shutdown signal
/// (kubelet's default grace period is 30 s; the Lease is released after).
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// How the operator runs.
#[derive(Clone, Debug)]
pub struct OperatorConfig {
    /// Watch only these namespaces, each with its own set of watches (and
    /// so Roles there suffice); all namespaces when empty.
    pub namespaces: Vec<String>,
    /// Reconciles running at once (0: unbounded).
    pub concurrency: u16,
    /// How often engine operators are looked for (their CRDs and
    /// Deployments change without touching our objects).
    pub detection_interval: Duration,
    /// How DatabaseClaims are served (passwords, rotation, dialling).
    pub claims: ClaimsConfig,
    /// How often DatabaseServers are probed.
    pub server_check_interval: Duration,
    /// Where the controllers count what they do.
    pub metrics: Arc<Metrics>,
    /// What DatabaseEngines may install through OLM (packages, catalogs,
    /// install modes); the default holds the engine operators from
    /// OperatorHub's catalog in their own namespace.
    pub olm_allowlist: OlmAllowlist,
}

impl Default for OperatorConfig {
    fn default() -> Self {
        Self {
            namespaces: Vec::new(),
            concurrency: 16,
            detection_interval: Duration::from_secs(30),
            claims: ClaimsConfig::default(),
            server_check_interval: Duration::from_secs(60),
            metrics: Arc::new(Metrics::default()),
            olm_allowlist: OlmAllowlist::default(),
        }
    }
}

fn api<K>(client: &Client, namespace: Option<&str>) -> Api<K>
where
    K: kube::Resource<Scope = kube::core::NamespaceResourceScope, DynamicType = ()>
        + serde::de::DeserializeOwned,
{
    match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    }
}

/// Wraps a reconcile function so each run is counted, timed and, when it
/// fails, counted by reason under `controller`.
fn instrumented<K, C, E, Fut>(
    metrics: Arc<Metrics>,
    controller: &'static str,
    reconcile: impl Fn(Arc<K>, Arc<C>) -> Fut + Send + Sync + 'static,
) -> impl FnMut(Arc<K>, Arc<C>) -> futures::future::BoxFuture<'static, Result<Action, E>>
where
    Fut: std::future::Future<Output = Result<Action, E>> + Send + 'static,
    E: ErrorReason + Send + 'static,
{
    move |object, ctx| {
        let metrics = metrics.clone();
        let reconcile = reconcile(object, ctx);
        Box::pin(async move { metrics.controllers.instrument(controller, reconcile).await })
    }
}

/// Marks the operator's caches synced once every watched namespace's are.
#[derive(Clone)]
struct ScopesSynced {
    metrics: Arc<Metrics>,
    pending: Arc<AtomicUsize>,
}

impl ScopesSynced {
    fn new(metrics: Arc<Metrics>, scopes: usize) -> Self {
        Self {
            metrics,
            pending: Arc::new(AtomicUsize::new(scopes)),
        }
    }

    fn one_synced(&self) {
        if self.pending.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.metrics.caches_synced.store(true, Ordering::Release);
        }
    }
}

/// Adds the object gauges of one scope's watch caches at each scrape, and
/// counts the scope synced once their first lists are in.
fn count_on_scrape(
    metrics: &Arc<Metrics>,
    clusters: Store<DatabaseCluster>,
    ctx: Arc<Context>,
    clusters_synced: Synced,
    scopes_synced: ScopesSynced,
) {
    let synced = {
        let ctx = ctx.clone();
        async move {
            clusters_synced.wait().await;
            ctx.caches_synced().await;
            scopes_synced.one_synced();
        }
    };
    tokio::spawn(synced);
    let (engines, templates) = (ctx.engines.clone(), ctx.templates.clone());
    metrics.on_scrape(move |metrics| {
        let count = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
        let all = clusters.state();
        for (kind, n) in [
            ("DatabaseCluster", all.len()),
            ("DatabaseEngine", engines.state().len()),
            ("DatabaseClusterTemplate", templates.state().len()),
        ] {
            metrics
                .objects
                .get_or_create(&KindLabel { kind })
                .inc_by(count(n));
        }
        let mut phases = std::collections::BTreeMap::<String, usize>::new();
        for cluster in &all {
            let phase = cluster
                .status
                .as_ref()
                .and_then(|s| s.phase)
                .map_or_else(|| "Unknown".to_owned(), |p| format!("{p:?}"));
            *phases.entry(phase).or_default() += 1;
        }
        for (phase, n) in phases {
            metrics
                .cluster_phases
                .get_or_create(&PhaseLabel { phase })
                .inc_by(count(n));
        }
    });
}

/// Runs every controller until `shutdown` resolves: one set per watched
/// namespace (kube-runtime's watches take one namespace or all), or one
/// set over all namespaces.
pub async fn run(
    client: Client,
    config: OperatorConfig,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) {
    // One shutdown signal for every controller.
    let shutdown = shutdown.shared();
    let scopes: Vec<Option<String>> = if config.namespaces.is_empty() {
        vec![None]
    } else {
        config.namespaces.iter().cloned().map(Some).collect()
    };
    let synced = ScopesSynced::new(config.metrics.clone(), scopes.len());
    futures::future::join_all(scopes.into_iter().map(|scope| {
        run_in(
            client.clone(),
            &config,
            scope,
            shutdown.clone(),
            synced.clone(),
        )
    }))
    .await;
    info!("dbaas-operator controllers stopped");
}

/// Runs every controller over `scope` (one namespace, or all when `None`).
async fn run_in(
    client: Client,
    config: &OperatorConfig,
    scope: Option<String>,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + Clone + 'static,
    scopes_synced: ScopesSynced,
) {
    let ns = scope.as_deref();
    // Watch caches shared by reconciles. Every watch of our own kinds is
    // tolerant: one stored object that does not parse is left out, not
    // allowed to stop the watch.
    let (engine_store, engines_synced, engine_cache) =
        tolerant::cache::<DatabaseEngine>(&client, ns);
    let (template_store, templates_synced, template_cache) =
        tolerant::cache::<DatabaseClusterTemplate>(&client, ns);
    let ctx = Arc::new(
        Context::new(
            client.clone(),
            engine_store,
            template_store,
            [engines_synced, templates_synced],
            config.detection_interval,
        )
        .with_apply_counter(config.metrics.engine_applies.clone())
        .with_olm_allowlist(config.olm_allowlist.clone())
        .with_watch_namespace(scope.clone()),
    );
    let ctx_for_engines = ctx.clone();
    let ctx_for_ops = ctx.clone();

    let (controller, clusters_synced) =
        tolerant::controller_synced::<DatabaseCluster>(&client, ns, watcher::Config::default());
    count_on_scrape(
        &config.metrics,
        controller.store(),
        ctx.clone(),
        clusters_synced,
        scopes_synced,
    );
    let cluster_store = controller.store();
    let clusters_for_templates = controller.store();
    // A created or changed template re-judges every cluster that selects it.
    let clusters_of_template =
        move |template: DatabaseClusterTemplate| -> Vec<ObjectRef<DatabaseCluster>> {
            clusters_for_templates
                .state()
                .iter()
                .filter(|c| c.namespace() == template.namespace())
                .filter(|c| {
                    cluster::template::selected(c)
                        .is_some_and(|t| Some(t.name) == template.metadata.name)
                })
                .map(|c| ObjectRef::from_obj(c.as_ref()))
                .collect()
        };
    // A changed DatabaseEngine (allowed versions, default) re-judges every
    // cluster of that engine in its namespace.
    let clusters_of_engine = move |engine: DatabaseEngine| -> Vec<ObjectRef<DatabaseCluster>> {
        cluster_store
            .state()
            .iter()
            .filter(|c| {
                c.namespace() == engine.namespace() && c.spec.engine.type_ == engine.spec.type_
            })
            .map(|c| ObjectRef::from_obj(c.as_ref()))
            .collect()
    };
    // Every engine object we made triggers its DatabaseCluster. Each engine's
    // watch backs off and reports its errors on its own: kube-runtime backs
    // off the controller's combined trigger stream on any error, so one
    // engine whose CRDs are not installed (the normal case) would otherwise
    // stall every reconcile.
    let (monitoring_configs, monitoring_config_trigger) =
        trigger::stored::<MonitoringConfig>(&client, ns);
    let clusters_for_monitoring = controller.store();
    let clusters_for_secrets = controller.store();
    let (backup_storages, backup_storage_trigger) = trigger::stored::<BackupStorage>(&client, ns);
    let clusters_for_storages = controller.store();
    // BackupScheduleTemplates: one changed re-judges the clusters selecting
    // it; its store tells which clusters use a storage through a template.
    let (schedule_templates, schedule_template_writer) =
        kube::runtime::reflector::store::<BackupScheduleTemplate>();
    let schedule_template_trigger = kube::runtime::reflector(
        schedule_template_writer,
        tolerant::watch(
            tolerant::api::<BackupScheduleTemplate>(&client, ns),
            watcher::Config::default(),
            None,
        ),
    )
    .touched_objects();
    let clusters_for_schedule_templates = controller.store();
    let mut controller = controller;
    let resources = EngineType::ALL
        .into_iter()
        .filter_map(provider_for)
        .flat_map(|p| std::iter::once(p.resource()).chain(p.extra_resources()));
    for resource in resources {
        controller = controller.owns_stream_with(trigger::ours(&client, ns, &resource), resource);
    }
    let controller = controller
        .with_config(kube::runtime::controller::Config::default().concurrency(config.concurrency))
        // Only the SRE's policy (the spec) matters to clusters: the engine
        // controller's status writes must not re-judge every cluster of the
        // engine (at 10,000 clusters each one queued 10,000 reconciles).
        .watches_stream(
            tolerant::changes::<DatabaseEngine>(&client, ns, watcher::Config::default())
                .predicate_filter(predicates::generation, Default::default()),
            clusters_of_engine,
        )
        .watches_stream(
            tolerant::changes::<DatabaseClusterTemplate>(&client, ns, watcher::Config::default()),
            clusters_of_template,
        )
        // A changed MonitoringConfig, or the Secret it names, re-judges the
        // clusters that use it.
        .watches_stream(monitoring_config_trigger, move |config| {
            cluster::monitoring::clusters_of_config(&clusters_for_monitoring, &config)
        })
        .watches_stream(schedule_template_trigger, {
            let clusters = clusters_for_schedule_templates.clone();
            move |template| cluster::template::clusters_of_schedule_template(&clusters, &template)
        })
        // So does a changed BackupStorage its backup spec (or its
        // BackupScheduleTemplate) names.
        .watches_stream(backup_storage_trigger, {
            let clusters = clusters_for_storages.clone();
            let templates = schedule_templates.clone();
            move |storage| {
                let mut found = backup::storage::clusters_of_storage(&clusters, &storage);
                found.extend(
                    cluster::template::clusters_of_storage_via_schedule_template(
                        &clusters, &templates, &storage,
                    ),
                );
                found
            }
        })
        .watches_stream(
            cluster::monitoring::secret_trigger(&client, ns),
            move |secret| {
                let mut clusters = cluster::monitoring::clusters_of_secret(
                    &clusters_for_secrets,
                    &monitoring_configs,
                    &secret,
                );
                clusters.extend(backup::storage::clusters_of_secret(
                    &clusters_for_storages,
                    &backup_storages,
                    &secret,
                ));
                clusters.extend(backup::storage::clusters_of_copy(&secret));
                for storage in backup::storage::storages_of_secret(&backup_storages, &secret) {
                    clusters.extend(
                        cluster::template::clusters_of_storage_via_schedule_template(
                            &clusters_for_storages,
                            &schedule_templates,
                            &storage,
                        ),
                    );
                }
                clusters
            },
        )
        .graceful_shutdown_on(shutdown.clone())
        // Boxed: the reconcile future holds whole engine objects.
        .run(
            instrumented(config.metrics.clone(), "cluster", cluster::reconcile),
            cluster::error_policy,
            ctx,
        )
        .for_each(|result| {
            match result {
                Ok((object, _)) => debug!(cluster = %object, "reconciled"),
                Err(err) => debug!("controller: {err}"),
            }
            futures::future::ready(())
        });

    let engine_controller = engine::watch_olm(
        tolerant::controller::<DatabaseEngine>(&client, ns, watcher::Config::default()),
        &client,
        ns,
    )
    .graceful_shutdown_on(shutdown.clone())
    .run(
        instrumented(config.metrics.clone(), "engine", engine::reconcile),
        engine::error_policy,
        ctx_for_engines,
    )
    .for_each(|result| {
        if let Err(err) = result {
            debug!("engine controller: {err}");
        }
        futures::future::ready(())
    });

    let backups = backup_controller(&client, config, ns, shutdown.clone());
    let backup_storages = backup_storage_controller(&client, config, ns, shutdown.clone());
    let claims = claim_controllers(&client, config, ns, shutdown.clone());
    let ops = ops_controller(&client, config, ns, ctx_for_ops, shutdown.clone());

    info!(
        namespace = ns.unwrap_or("<all>"),
        "dbaas-operator controllers started"
    );
    // kube-runtime's graceful shutdown waits for every runner, and a runner
    // still waiting for its first list when the signal comes waits forever
    // (the signal stops the watch that would fill its store). In-flight
    // reconciles get SHUTDOWN_GRACE to finish; then they are dropped, which
    // every reconcile survives (each step is idempotent, as after a kill).
    let overdue = async {
        shutdown.clone().await;
        tokio::time::sleep(SHUTDOWN_GRACE).await;
    };
    tokio::select! {
        _ = futures::future::join(
            futures::future::join5(controller, engine_controller, claims, ops, backups),
            backup_storages,
        ) => {},
        () = engine_cache => {},
        () = template_cache => {},
        () = overdue => warn!(
            namespace = ns.unwrap_or("<all>"),
            "controllers did not stop within {SHUTDOWN_GRACE:?} of the shutdown signal; stopping them"
        ),
    }
}

/// The OpsRequest controller: one operation at a time per cluster; a changed
/// DatabaseCluster (its status is the evidence) wakes its operations.
fn ops_controller(
    client: &Client,
    config: &OperatorConfig,
    ns: Option<&str>,
    ctx: Arc<Context>,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + Clone + 'static,
) -> impl std::future::Future<Output = ()> {
    let controller = tolerant::controller::<OpsRequest>(client, ns, watcher::Config::default());
    let ops_of_cluster_store = controller.store();
    let ops_of_cluster = move |cluster: DatabaseCluster| -> Vec<ObjectRef<OpsRequest>> {
        ops_of_cluster_store
            .state()
            .iter()
            .filter(|o| o.namespace() == cluster.namespace())
            .filter(|o| Some(&o.spec.cluster_ref.name) == cluster.metadata.name.as_ref())
            .filter(|o| !ops::queue::phase_of(o).is_terminal())
            .map(|o| ObjectRef::from_obj(o.as_ref()))
            .collect()
    };
    let ops_ctx = Arc::new(ops::OpsContext {
        cluster_locks: Default::default(),
        cluster: ctx,
        ops: controller.store(),
        recorder: crate::events::EventPublisher::new(client.clone()),
    });
    let forget_deleted = ops::forget_deleted(client.clone(), ns.map(str::to_owned));
    let controller = controller
        .with_config(kube::runtime::controller::Config::default().concurrency(config.concurrency))
        .watches_stream(
            tolerant::changes::<DatabaseCluster>(client, ns, watcher::Config::default()),
            ops_of_cluster,
        )
        .graceful_shutdown_on(shutdown)
        .run(
            instrumented(config.metrics.clone(), "ops", ops::reconcile),
            ops::error_policy,
            ops_ctx,
        )
        .for_each(|result| {
            match result {
                Ok((object, _)) => debug!(op = %object, "reconciled"),
                Err(err) => debug!("ops controller: {err}"),
            }
            futures::future::ready(())
        });
    async move {
        tokio::select! {
            () = controller => {},
            () = forget_deleted => {},
        }
    }
}

/// The DatabaseBackup controller; each engine's backup resource we made
/// wakes its DatabaseBackup, and each one an engine's schedule took is
/// mirrored and wakes its mirror.
fn backup_controller(
    client: &Client,
    config: &OperatorConfig,
    ns: Option<&str>,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + Clone + 'static,
) -> impl std::future::Future<Output = ()> {
    let mut controller =
        tolerant::controller::<DatabaseBackup>(client, ns, watcher::Config::default());
    for resource in backup::engine_backup_resources() {
        controller = controller.owns_stream_with(trigger::ours(client, ns, &resource), resource);
    }
    // The backups the engines' own schedules take get their mirrors, which
    // their changes wake.
    let mirrors = controller.store();
    for (provider, resource, selector) in backup::scheduled::mirror_sources() {
        let stream = backup::scheduled::scheduled_backups(
            client,
            ns,
            provider,
            &resource,
            selector,
            mirrors.clone(),
        );
        controller =
            controller.watches_stream_with(stream, backup::scheduled::mirror_ref, resource);
    }
    let ctx = Arc::new(backup::BackupContext {
        client: client.clone(),
    });
    controller
        .with_config(kube::runtime::controller::Config::default().concurrency(config.concurrency))
        .graceful_shutdown_on(shutdown)
        .run(
            instrumented(config.metrics.clone(), "backup", backup::reconcile),
            backup::error_policy,
            ctx,
        )
        .for_each(|result| {
            match result {
                Ok((object, _)) => debug!(backup = %object, "reconciled"),
                Err(err) => debug!("backup controller: {err}"),
            }
            futures::future::ready(())
        })
}

/// The BackupStorage status controller; a changed Secret wakes the storages
/// that take their credentials from it.
fn backup_storage_controller(
    client: &Client,
    config: &OperatorConfig,
    ns: Option<&str>,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + Clone + 'static,
) -> impl std::future::Future<Output = ()> {
    let controller = tolerant::controller::<BackupStorage>(client, ns, watcher::Config::default());
    let storages = controller.store();
    let ctx = Arc::new(backup::storage_status::StorageStatusContext {
        client: client.clone(),
    });
    controller
        .with_config(kube::runtime::controller::Config::default().concurrency(config.concurrency))
        .watches_stream(
            cluster::monitoring::secret_trigger(client, ns),
            move |secret| backup::storage_status::storages_of_secret(&storages, &secret),
        )
        .graceful_shutdown_on(shutdown)
        .run(
            instrumented(
                config.metrics.clone(),
                "backup_storage",
                backup::storage_status::reconcile,
            ),
            backup::storage_status::error_policy,
            ctx,
        )
        .for_each(|result| {
            match result {
                Ok((object, _)) => debug!(backup_storage = %object, "reconciled"),
                Err(err) => debug!("backup storage controller: {err}"),
            }
            futures::future::ready(())
        })
}

/// The DatabaseServer and DatabaseClaim controllers.
fn claim_controllers(
    client: &Client,
    config: &OperatorConfig,
    ns: Option<&str>,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + Clone + 'static,
) -> impl std::future::Future<Output = ()> {
    let secrets: Api<Secret> = api(client, ns);

    let server_controller =
        tolerant::controller::<DatabaseServer>(client, ns, watcher::Config::default());
    let server_store = server_controller.store();
    // A cluster behind a server changed (became ready, moved): probe again.
    let servers_of_cluster = move |cluster: DatabaseCluster| -> Vec<ObjectRef<DatabaseServer>> {
        server_store
            .state()
            .iter()
            .filter(|s| s.namespace() == cluster.namespace())
            .filter(|s| {
                s.spec.cluster_ref.as_ref().map(|r| &r.name) == cluster.metadata.name.as_ref()
            })
            .map(|s| ObjectRef::from_obj(s.as_ref()))
            .collect()
    };
    let server_ctx = Arc::new(ServerContext {
        client: client.clone(),
        connect_to: config.claims.connect_to.clone(),
        check_interval: config.server_check_interval,
    });
    let server_controller = server_controller
        .with_config(kube::runtime::controller::Config::default().concurrency(config.concurrency))
        .watches_stream(
            tolerant::changes::<DatabaseCluster>(client, ns, watcher::Config::default()),
            servers_of_cluster,
        )
        .graceful_shutdown_on(shutdown.clone())
        .run(
            instrumented(config.metrics.clone(), "server", server::reconcile),
            server::error_policy,
            server_ctx,
        )
        .for_each(|result| {
            if let Err(err) = result {
                debug!("server controller: {err}");
            }
            futures::future::ready(())
        });

    // Claims read servers from their own cache.
    let (server_cache, servers_synced, server_cache_feed) =
        tolerant::cache::<DatabaseServer>(client, ns);
    let claim_ctx = Arc::new(ClaimContext::new(
        client.clone(),
        server_cache.clone(),
        config.claims.clone(),
        config.metrics.claims.clone(),
    ));
    let claim_controller =
        tolerant::controller::<DatabaseClaim>(client, ns, watcher::Config::default());
    let claim_store = claim_controller.store();
    {
        let (claims, servers) = (claim_controller.store(), server_cache.clone());
        config.metrics.on_scrape(move |metrics| {
            for (kind, n) in [
                ("DatabaseClaim", claims.state().len()),
                ("DatabaseServer", servers.state().len()),
            ] {
                metrics
                    .objects
                    .get_or_create(&KindLabel { kind })
                    .inc_by(i64::try_from(n).unwrap_or(i64::MAX));
            }
        });
    }
    // A server appeared, changed or recovered: claims bound to it, and
    // claims still looking for one, try again.
    let claims_of_server = move |server: DatabaseServer| -> Vec<ObjectRef<DatabaseClaim>> {
        claim_store
            .state()
            .iter()
            .filter(|c| c.namespace() == server.namespace())
            .filter(
                |c| match c.status.as_ref().and_then(|s| s.server.as_ref()) {
                    Some(bound) => Some(bound) == server.metadata.name.as_ref(),
                    None => true,
                },
            )
            .map(|c| ObjectRef::from_obj(c.as_ref()))
            .collect()
    };
    // A cluster made for a claim changed (it became ready): the claim goes on.
    let claim_of_cluster = |cluster: DatabaseCluster| -> Option<ObjectRef<DatabaseClaim>> {
        let claim = cluster.labels().get(LABEL_CLAIM)?;
        Some(ObjectRef::new(claim).within(&cluster.namespace()?))
    };
    let ours = format!("{LABEL_MANAGED_BY}={MANAGED_BY_VALUE},{LABEL_CLAIM}");
    let claim_controller = claim_controller
        .with_config(kube::runtime::controller::Config::default().concurrency(config.concurrency))
        // The Secrets we write: one deleted or edited is put back at once.
        .owns(secrets, watcher::Config::default().labels(&ours))
        .watches_stream(
            tolerant::changes::<DatabaseServer>(client, ns, watcher::Config::default()),
            claims_of_server,
        )
        .watches_stream(
            tolerant::changes::<DatabaseCluster>(
                client,
                ns,
                watcher::Config::default().labels(&ours),
            ),
            claim_of_cluster,
        )
        .graceful_shutdown_on(shutdown)
        .run(
            instrumented(config.metrics.clone(), "claim", claim::reconcile),
            claim::error_policy,
            claim_ctx,
        )
        .for_each(|result| {
            match result {
                Ok((object, _)) => debug!(claim = %object, "reconciled"),
                Err(err) => debug!("claim controller: {err}"),
            }
            futures::future::ready(())
        });
    async move {
        let cached = async {
            // Claims are judged against a complete list of servers.
            servers_synced.wait().await;
            claim_controller.await;
        };
        tokio::select! {
            _ = futures::future::join(server_controller, cached) => {},
            () = server_cache_feed => {},
        }
    }
}
