//! The DatabaseCluster controller: dereference -> validate and build
//! ([`plan`]) -> apply -> status ([`status`]).

pub mod plan;
pub mod status;

use std::sync::Arc;
use std::time::Duration;

use dbaas_api::DatabaseCluster;
use dbaas_api::cluster::{DatabaseClusterStatus, EngineObjectRef};
use dbaas_api::common::{FIELD_MANAGER, LABEL_MANAGED_BY, MANAGED_BY_VALUE};
use dbaas_engine_crds::cnpg_cluster::Cluster as CnpgCluster;
use dbaas_engines::cnpg;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::reflector::ObjectRef;
use kube::{Api, Resource, ResourceExt};
use serde_json::json;
use tracing::{info, warn};

use crate::context::Context;
use plan::{Plan, References};
use status::Outcome;

/// How soon to look again when only time can help (an engine operator
/// being installed).
const RETRY_AFTER: Duration = Duration::from_secs(10);

/// A reconcile failed on I/O; the controller retries it.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("dereferencing {cluster}: {source}")]
    Dereference {
        cluster: String,
        #[source]
        source: kube::Error,
    },
    #[error("applying the engine object of {cluster}: {source}")]
    Apply {
        cluster: String,
        #[source]
        source: kube::Error,
    },
    #[error("writing the status of {cluster}: {source}")]
    Status {
        cluster: String,
        #[source]
        source: kube::Error,
    },
    #[error("object has no namespace")]
    NoNamespace,
}

impl Error {
    /// A short label for metrics and logs.
    pub fn stage(&self) -> &'static str {
        match self {
            Self::Dereference { .. } => "dereference",
            Self::Apply { .. } => "apply",
            Self::Status { .. } => "status",
            Self::NoNamespace => "input",
        }
    }
}

/// Reconciles one DatabaseCluster.
pub async fn reconcile(cluster: Arc<DatabaseCluster>, ctx: Arc<Context>) -> Result<Action, Error> {
    let namespace = cluster.namespace().ok_or(Error::NoNamespace)?;
    let name = cluster.name_any();
    let id = format!("{namespace}/{name}");
    if cluster.metadata.deletion_timestamp.is_some() {
        // Engine objects carry an ownerReference: the garbage collector
        // removes them once the DatabaseCluster is gone.
        return Ok(Action::await_change());
    }

    // 1. Dereference.
    let refs = dereference(&cluster, &namespace, &name, &ctx)
        .await
        .map_err(|source| Error::Dereference {
            cluster: id.clone(),
            source,
        })?;

    // 2 + 3. Validate and build (pure).
    let now = Time(Timestamp::now());
    let (new_status, action) = match plan::plan(&cluster, &refs) {
        Plan::Refuse(refusal) => {
            info!(cluster = %id, reason = refusal.reason, "not applied: {}", refusal.message);
            let action = if refusal.retry {
                Action::requeue(RETRY_AFTER)
            } else {
                Action::await_change()
            };
            (
                status::compose(&cluster, Outcome::Refused(&refusal), &now),
                action,
            )
        }
        Plan::Apply { built, version } => {
            // 4. Apply.
            let api: Api<CnpgCluster> = ctx.api(&namespace);
            let applied = api
                .patch(
                    &name,
                    &PatchParams::apply(FIELD_MANAGER).force(),
                    &Patch::Apply(&built.cluster),
                )
                .await
                .map_err(|source| Error::Apply {
                    cluster: id.clone(),
                    source,
                })?;
            let engine_ref = engine_ref_after_apply(cluster.status.as_ref(), &applied, &now);
            let observation = cnpg::observe(
                &applied,
                &cnpg::ObserveInput {
                    desired_instances: cluster.spec.cluster_size,
                    desired_image: &version.image,
                    applied_at: engine_ref.applied_at.as_ref(),
                    applied_resource_version: engine_ref.applied_resource_version.as_deref(),
                    paused: cluster.spec.paused,
                    previous_phase: cluster.status.as_ref().and_then(|s| s.phase),
                },
            );
            let outcome = Outcome::Applied {
                version: &version,
                engine_ref,
                observation: &observation,
                unapplied: &built.unapplied,
                credentials_secret: cnpg::credentials_secret_name(&cluster),
            };
            (
                status::compose(&cluster, outcome, &now),
                Action::await_change(),
            )
        }
    };

    // 5. Status, written only when it changed.
    if cluster.status.as_ref() != Some(&new_status) {
        write_status(&ctx.api::<DatabaseCluster>(&namespace), &name, &new_status)
            .await
            .map_err(|source| Error::Status {
                cluster: id,
                source,
            })?;
    }
    Ok(action)
}

/// Fetches what the cluster refers to: the engine policy (from the watch
/// cache), whether the engine operator is installed, and whether an engine
/// object of that name exists that is not ours.
async fn dereference(
    cluster: &DatabaseCluster,
    namespace: &str,
    name: &str,
    ctx: &Context,
) -> Result<References, kube::Error> {
    let engine = cluster.spec.engine.type_;
    let policy = ctx
        .engines
        .state()
        .into_iter()
        .filter(|e| e.namespace().as_deref() == Some(namespace) && e.spec.type_ == engine)
        .min_by_key(|e| e.name_any())
        .map(|e| e.spec.clone());
    let engine_installed = ctx.engine_crd_installed(engine, &plan::cnpg_gvk()).await?;
    let foreign_engine_object =
        engine_installed && foreign_engine_object(cluster, namespace, name, ctx).await?;
    Ok(References {
        policy,
        engine_installed,
        foreign_engine_object,
    })
}

/// Whether an engine object of this name exists that is not ours. The watch
/// cache answers when it holds the object; when it does not (not synced yet,
/// or the object is brand new) a GET decides, so a foreign object is never
/// taken over because of a stale cache.
async fn foreign_engine_object(
    cluster: &DatabaseCluster,
    namespace: &str,
    name: &str,
    ctx: &Context,
) -> Result<bool, kube::Error> {
    if let Some(cached) = ctx
        .cnpg_clusters
        .get(&ObjectRef::new(name).within(namespace))
    {
        return Ok(!is_ours(&cached.metadata, cluster));
    }
    let api: Api<CnpgCluster> = ctx.api(namespace);
    Ok(api
        .get_metadata_opt(name)
        .await?
        .is_some_and(|existing| !is_ours(&existing.metadata, cluster)))
}

/// An engine object is ours when it carries our label and is controlled by
/// this very DatabaseCluster.
fn is_ours(meta: &kube::core::ObjectMeta, cluster: &DatabaseCluster) -> bool {
    let labelled = meta
        .labels
        .as_ref()
        .and_then(|l| l.get(LABEL_MANAGED_BY))
        .is_some_and(|v| v == MANAGED_BY_VALUE);
    let controlled = meta
        .owner_references
        .iter()
        .flatten()
        .any(|o| o.controller == Some(true) && Some(&o.uid) == cluster.meta().uid.as_ref());
    labelled && controlled
}

/// Records the engine object's generation after our apply; the time moves
/// only when the apply changed the spec (the generation moved).
fn engine_ref_after_apply(
    previous: Option<&DatabaseClusterStatus>,
    applied: &CnpgCluster,
    now: &Time,
) -> EngineObjectRef {
    let generation = applied.metadata.generation;
    let previous = previous.and_then(|s| s.engine_ref.as_ref());
    let (applied_at, applied_resource_version) = match previous {
        Some(prev) if prev.applied_generation == generation && prev.applied_at.is_some() => (
            prev.applied_at.clone(),
            prev.applied_resource_version.clone(),
        ),
        _ => (Some(now.clone()), applied.metadata.resource_version.clone()),
    };
    EngineObjectRef {
        api_version: CnpgCluster::api_version(&()).into_owned(),
        kind: CnpgCluster::kind(&()).into_owned(),
        name: applied.name_any(),
        applied_generation: generation,
        applied_at,
        applied_resource_version,
    }
}

async fn write_status(
    api: &Api<DatabaseCluster>,
    name: &str,
    status: &DatabaseClusterStatus,
) -> Result<(), kube::Error> {
    let body = json!({
        "apiVersion": DatabaseCluster::api_version(&()),
        "kind": DatabaseCluster::kind(&()),
        "status": status,
    });
    api.patch_status(
        name,
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&body),
    )
    .await
    .map(|_| ())
}

/// Retry failed reconciles after a pause; conflicts and API hiccups heal.
pub fn error_policy(cluster: Arc<DatabaseCluster>, error: &Error, _ctx: Arc<Context>) -> Action {
    warn!(
        cluster = %format!("{}/{}", cluster.namespace().unwrap_or_default(), cluster.name_any()),
        stage = error.stage(),
        "reconcile failed: {error}"
    );
    Action::requeue(Duration::from_secs(5))
}
