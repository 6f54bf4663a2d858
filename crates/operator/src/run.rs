//! Wires the controllers to the API server and runs them until shutdown.

use std::sync::Arc;
use std::time::Duration;

use dbaas_api::common::{LABEL_MANAGED_BY, MANAGED_BY_VALUE};
use dbaas_api::{DatabaseCluster, DatabaseClusterTemplate, DatabaseEngine, EngineType};
use dbaas_engines::provider_for;
use futures::{FutureExt, StreamExt};
use kube::core::{ApiResource, DynamicObject};
use kube::runtime::controller::Controller;
use kube::runtime::reflector::{self, ObjectRef};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, ResourceExt};
use tracing::{debug, info};

use crate::context::Context;
use crate::{cluster, engine};

/// How the operator runs.
#[derive(Clone, Debug)]
pub struct OperatorConfig {
    /// Watch only this namespace; all namespaces when `None`.
    pub namespace: Option<String>,
    /// Reconciles running at once (0: unbounded).
    pub concurrency: u16,
    /// How often engine operators are looked for (their CRDs and
    /// Deployments change without touching our objects).
    pub detection_interval: Duration,
}

impl Default for OperatorConfig {
    fn default() -> Self {
        Self {
            namespace: None,
            concurrency: 16,
            detection_interval: Duration::from_secs(30),
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

fn dynamic_api(
    client: &Client,
    namespace: Option<&str>,
    resource: &ApiResource,
) -> Api<DynamicObject> {
    match namespace {
        Some(ns) => Api::namespaced_with(client.clone(), ns, resource),
        None => Api::all_with(client.clone(), resource),
    }
}

/// Runs every controller until `shutdown` resolves.
pub async fn run(
    client: Client,
    config: OperatorConfig,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) {
    let ns = config.namespace.as_deref();
    // One shutdown signal for every controller.
    let shutdown = shutdown.shared();
    let clusters: Api<DatabaseCluster> = api(&client, ns);
    let engines: Api<DatabaseEngine> = api(&client, ns);

    // Watch caches shared by reconciles.
    let (engine_store, engine_writer) = reflector::store::<DatabaseEngine>();
    let engine_cache = reflector::reflector(
        engine_writer,
        watcher(engines.clone(), watcher::Config::default()).default_backoff(),
    )
    .touched_objects()
    .for_each(|_| futures::future::ready(()));
    let templates: Api<DatabaseClusterTemplate> = api(&client, ns);
    let (template_store, template_writer) = reflector::store::<DatabaseClusterTemplate>();
    let template_cache = reflector::reflector(
        template_writer,
        watcher(templates.clone(), watcher::Config::default()).default_backoff(),
    )
    .touched_objects()
    .for_each(|_| futures::future::ready(()));
    let ctx = Arc::new(Context::new(
        client.clone(),
        engine_store,
        template_store,
        config.detection_interval,
    ));
    let ctx_for_engines = ctx.clone();
    let engines_for_controller = engines.clone();

    let controller = Controller::new(clusters, watcher::Config::default());
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
    let ours = format!("{LABEL_MANAGED_BY}={MANAGED_BY_VALUE}");
    let mut controller = controller;
    for provider in EngineType::ALL.into_iter().filter_map(provider_for) {
        let resource = provider.resource();
        let kind = resource.kind.clone();
        let trigger = watcher(
            dynamic_api(&client, ns, &resource),
            watcher::Config::default().labels(&ours),
        )
        .default_backoff()
        .touched_objects()
        .filter_map(move |event| {
            futures::future::ready(match event {
                Ok(object) => Some(Ok(object)),
                Err(err) => {
                    debug!(kind = %kind, "engine watch: {err}");
                    None
                }
            })
        });
        controller = controller.owns_stream_with(trigger, resource);
    }
    let controller = controller
        .with_config(kube::runtime::controller::Config::default().concurrency(config.concurrency))
        .watches(engines, watcher::Config::default(), clusters_of_engine)
        .watches(templates, watcher::Config::default(), clusters_of_template)
        .graceful_shutdown_on(shutdown.clone())
        // Boxed: the reconcile future holds whole engine objects.
        .run(
            |c, ctx| Box::pin(cluster::reconcile(c, ctx)),
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

    let engine_controller = Controller::new(engines_for_controller, watcher::Config::default())
        .graceful_shutdown_on(shutdown)
        .run(engine::reconcile, engine::error_policy, ctx_for_engines)
        .for_each(|result| {
            if let Err(err) = result {
                debug!("engine controller: {err}");
            }
            futures::future::ready(())
        });

    info!(
        namespace = ns.unwrap_or("<all>"),
        "dbaas-operator controllers started"
    );
    tokio::select! {
        _ = futures::future::join(controller, engine_controller) => {},
        () = engine_cache => {},
        () = template_cache => {},
    }
    info!("dbaas-operator controllers stopped");
}
