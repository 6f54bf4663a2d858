//! The DatabaseCluster controller: dereference -> validate and build
//! ([`plan`]) -> apply -> status ([`status`]).

pub mod data_source;
pub mod events;
pub mod extras;
pub mod monitoring;
pub mod plan;
pub mod status;
pub mod template;
pub mod unchanged;

use std::sync::Arc;
use std::time::Duration;

use dbaas_api::cluster::{DatabaseClusterStatus, EngineObjectRef};
use dbaas_api::common::{FIELD_MANAGER, LABEL_MANAGED_BY, MANAGED_BY_VALUE};
use dbaas_api::{BackupScheduleTemplate, DatabaseCluster, DatabaseClusterTemplate};
use dbaas_engines::{EngineProvider, ObserveInput, provider_for};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Patch, PatchParams};
use kube::core::{ApiResource, DynamicObject};
use kube::runtime::controller::Action;
use kube::runtime::reflector::ObjectRef;
use kube::{Api, Resource, ResourceExt};
use serde_json::json;
use tracing::{info, warn};

use crate::context::Context;
use crate::metrics::ApplyResult;
use plan::{Plan, References};
use status::Outcome;

/// How soon to look again when only time can help (an engine operator
/// being installed).
const RETRY_AFTER: Duration = Duration::from_secs(10);
/// How often a refused cluster is judged again even without a watch event:
/// what it waits for (a foreign object's deletion, a cache that lagged behind
/// its trigger) may not reach this controller as an event.
const RECHECK_REFUSED: Duration = Duration::from_secs(60);
/// The shortest wait before looking again while the engine has not reported
/// on our latest spec. Its status writes wake the cluster anyway (we watch
/// engine objects); the look is only for engines that write no status for a
/// change that needs no action, which counts after
/// the provider's [`EngineProvider::unconfirmed_after`]. Looking every few seconds
/// instead kept every reconcile slot busy with re-applies while thousands of
/// new clusters waited for their engine (seen in the convergence bench).
const RECHECK_UNSEEN: Duration = Duration::from_secs(15);
/// How often a cluster whose dataSource an engine restore resource is
/// restoring looks at it again: that resource's status writes send the
/// cluster no event.
const RESTORE_RECHECK: Duration = Duration::from_secs(10);
/// When a cluster read older than our own last status write is looked at
/// again if no newer copy has woken it by then.
const STALE_RECHECK: Duration = Duration::from_secs(5);

/// When to look again at a cluster whose engine has not reported on the
/// spec we applied at `applied_at`: once its `quiet` period is over.
fn recheck_unseen(quiet: Duration, applied_at: Option<&Time>, now: &Time) -> Duration {
    let elapsed = applied_at
        .and_then(|at| Duration::try_from(now.0.duration_since(at.0)).ok())
        .unwrap_or_default();
    quiet.saturating_sub(elapsed).max(RECHECK_UNSEEN)
}

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
    #[error("applying the objects beside the engine object of {cluster}: {source}")]
    ApplyExtra {
        cluster: String,
        #[source]
        source: extras::ExtraError,
    },
    #[error("copying credentials into the engine's Secret of {cluster}: {source}")]
    SecretKeys {
        cluster: String,
        #[source]
        source: kube::Error,
    },
    #[error("copying the backup storage credentials of {cluster}: {source}")]
    BackupCredentials {
        cluster: String,
        #[source]
        source: kube::Error,
    },
    #[error("creating the DatabaseEngine for {cluster}: {source}")]
    EnsureEngine {
        cluster: String,
        #[source]
        source: kube::Error,
    },
    #[error("restoring spec.dataSource of {cluster}: {source}")]
    Restore {
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
            Self::EnsureEngine { .. } => "ensure-engine",
            Self::Apply { .. } => "apply",
            Self::ApplyExtra { .. } => "apply-extra",
            Self::SecretKeys { .. } => "secret-keys",
            Self::BackupCredentials { .. } => "backup-credentials",
            Self::Restore { .. } => "restore",
            Self::Status { .. } => "status",
            Self::NoNamespace => "input",
        }
    }
}

impl crate::metrics::ErrorReason for Error {
    fn reason(&self) -> &'static str {
        self.stage()
    }
}

/// Reconciles one DatabaseCluster.
pub async fn reconcile(cluster: Arc<DatabaseCluster>, ctx: Arc<Context>) -> Result<Action, Error> {
    let namespace = cluster.namespace().ok_or(Error::NoNamespace)?;
    let name = cluster.name_any();
    let id = format!("{namespace}/{name}");
    let uid = cluster.metadata.uid.clone().unwrap_or_default();
    if cluster.metadata.deletion_timestamp.is_some() {
        // Engine objects carry an ownerReference: the garbage collector
        // removes them once the DatabaseCluster is gone.
        ctx.forget_cluster(&uid);
        return Ok(Action::await_change());
    }
    // An engine-object event woke this reconcile before the watch brought
    // our own status write: judging this older copy would write the status
    // again (its conditions' times reset). The newer copy wakes a reconcile
    // of its own; the requeue only guards against a watch that lags long.
    if ctx.is_stale(&uid, cluster.metadata.resource_version.as_deref()) {
        return Ok(Action::requeue(STALE_RECHECK));
    }

    // 1. Dereference.
    let refs = dereference(&cluster, &namespace, &name, &ctx)
        .await
        .map_err(|source| Error::Dereference {
            cluster: id.clone(),
            source,
        })?;

    // The namespace gets its DatabaseEngine once the engine operator is there,
    // so SREs find a policy object to edit and UIs a version list to offer.
    if refs.engine_installed {
        crate::engine::ensure_exists(&ctx, &namespace, cluster.spec.engine.type_)
            .await
            .map_err(|source| Error::EnsureEngine {
                cluster: id.clone(),
                source,
            })?;
    }

    // 2 + 3. Validate and build (pure).
    let now = Time(Timestamp::now());
    let (new_status, action) = match plan::plan(&cluster, &refs) {
        Plan::Refuse(refusal) => refused(&cluster, &id, &refusal, &now),
        Plan::Apply {
            provider,
            built,
            version,
            restore,
        } => {
            // Credentials of storages in other namespaces first, so the
            // engine operator finds them; kept in sync even when the engine
            // object needs no apply (the source Secret changed).
            let copies = backup_credentials_copies(&refs);
            for copy in &copies {
                let synced = crate::backup::storage::sync_copy(&ctx.client, &cluster, copy)
                    .await
                    .map_err(|source| Error::BackupCredentials {
                        cluster: id.clone(),
                        source,
                    })?;
                if let crate::backup::storage::CopyOutcome::Conflict { message } = synced {
                    let refusal = plan::Refusal {
                        condition: dbaas_api::common::condition::VALID,
                        reason: "BackupCredentialsConflict",
                        message,
                        retry: false,
                    };
                    let (status, action) = refused(&cluster, &id, &refusal, &now);
                    return finish(&ctx, &cluster, &namespace, &name, id, status, action).await;
                }
            }
            // 4. Apply, unless the stored objects hold this very build, or
            // a restore runs (the engine operator stops and starts the
            // cluster itself then).
            let resource = provider.resource();
            let digest = unchanged::digest(&built);
            let frozen = if data_source::restore_in_progress(&cluster) {
                engine_api(&ctx, &namespace, &resource)
                    .get_opt(&name)
                    .await
                    .map_err(|source| Error::Apply {
                        cluster: id.clone(),
                        source,
                    })?
                    .map(|object| (object, Vec::new()))
            } else {
                None
            };
            let stored = match (frozen, digest) {
                (Some(frozen), _) => Some(frozen),
                (None, None) => None,
                (None, Some(digest)) => unchanged::stored_if_unchanged(
                    &ctx, &namespace, &cluster, provider, &built, digest,
                )
                .await
                .map_err(|source| Error::Apply {
                    cluster: id.clone(),
                    source,
                })?,
            };
            let (applied, applied_extra) = match stored {
                Some(stored) => {
                    ctx.engine_applies
                        .get_or_create(&ApplyResult {
                            result: "unchanged",
                        })
                        .inc();
                    stored
                }
                None => match apply(
                    &ctx,
                    &namespace,
                    &cluster,
                    provider,
                    &built,
                    &copies,
                    refs.nothing_applied_yet,
                )
                .await?
                {
                    Ok((applied, applied_extra)) => {
                        ctx.engine_applies
                            .get_or_create(&ApplyResult { result: "applied" })
                            .inc();
                        if let Some(digest) = digest {
                            ctx.record_applied(
                                &uid,
                                unchanged::record(digest, &applied, &applied_extra),
                            );
                        }
                        (applied, applied_extra)
                    }
                    Err(refusal) => {
                        let (status, action) = refused(&cluster, &id, &refusal, &now);
                        return finish(&ctx, &cluster, &namespace, &name, id, status, action).await;
                    }
                },
            };
            let written = cluster.status.as_ref().and_then(|s| s.engine_ref.clone());
            let recorded = ctx.recorded_engine_ref(&uid);
            let engine_ref = engine_ref_after_apply(
                [written.as_ref(), recorded.as_ref()],
                &resource,
                &applied,
                &now,
            );
            ctx.record_engine_ref(&uid, &engine_ref);
            ctx.record_applied_version(&uid, &version.version);
            let input = ObserveInput {
                desired_instances: cluster.spec.cluster_size,
                desired_image: &version.image,
                applied_generation: engine_ref.applied_generation,
                applied_at: engine_ref.applied_at.as_ref(),
                applied_resource_version: engine_ref.applied_resource_version.as_deref(),
                paused: cluster.spec.paused,
                previous_phase: cluster.status.as_ref().and_then(|s| s.phase),
                now: Some(&now),
            };
            let recheck = recheck_unseen(
                provider.unconfirmed_after(),
                engine_ref.applied_at.as_ref(),
                &now,
            );
            let observation = provider.observe(&applied, &input);
            let observation = provider.observe_extra(observation, &applied_extra, &input);
            let outcome = Outcome::Applied {
                version: &version,
                engine_ref,
                observation: &observation,
                unapplied: &built.unapplied,
                credentials_secret: provider.credentials_secret_name(&cluster),
            };
            let mut action = if observation.saw_latest_spec {
                Action::await_change()
            } else {
                Action::requeue(recheck)
            };
            let mut new_status = status::compose(&cluster, outcome, &now);
            let input = refs
                .data_source
                .as_ref()
                .and_then(|found| found.as_ref().ok());
            let advanced = data_source::advance(
                &ctx,
                &cluster,
                provider,
                input,
                restore.as_deref(),
                observation.phase.phase,
                &now,
            )
            .await
            .map_err(|source| Error::Restore {
                cluster: id.clone(),
                source,
            })?;
            if let Some(advanced) = advanced {
                if let Some((phase, message)) = data_source::phase_override(&advanced.status) {
                    new_status.phase = Some(phase);
                    new_status.message = Some(message);
                }
                if advanced.look_again {
                    action = Action::requeue(RESTORE_RECHECK);
                }
                new_status.data_source = Some(advanced.status);
            }
            (new_status, action)
        }
    };
    finish(&ctx, &cluster, &namespace, &name, id, new_status, action).await
}

/// Applies the engine object and the objects beside it (never taken over
/// from someone else), and prunes extras the build no longer has. Returns
/// the objects as stored, or the refusal when the API server (or a foreign
/// object of the same name) stands in the way.
async fn apply(
    ctx: &Context,
    namespace: &str,
    cluster: &DatabaseCluster,
    provider: &dyn EngineProvider,
    built: &dbaas_engines::BuiltEngine,
    copies: &[crate::backup::storage::CredentialsCopy],
    nothing_applied_yet: bool,
) -> Result<Result<(DynamicObject, Vec<DynamicObject>), plan::Refusal>, Error> {
    let name = cluster.name_any();
    let id = &format!("{namespace}/{name}");
    let resource = provider.resource();
    let conflict = extras::foreign(ctx, namespace, cluster, provider, &built.extra)
        .await
        .map_err(|source| Error::ApplyExtra {
            cluster: id.to_owned(),
            source,
        })?;
    if let Some(conflict) = conflict {
        let refusal = plan::Refusal {
            condition: dbaas_api::common::condition::VALID,
            reason: "EngineObjectConflict",
            message: format!(
                "a {conflict} already exists and is not managed by dbaas-operator; it is left untouched: choose another cluster name"
            ),
            retry: false,
        };
        return Ok(Err(refusal));
    }
    // Credentials first, so the engine operator finds them when it
    // sees the settings that need them. Looked at even for a new cluster:
    // the Secret outlives a deleted cluster of the same name.
    monitoring::sync_secret_keys(
        ctx,
        namespace,
        &provider.credentials_secret_name(cluster),
        &built.secret_keys,
    )
    .await
    .map_err(|source| Error::SecretKeys {
        cluster: id.to_owned(),
        source,
    })?;
    let applied = engine_api(ctx, namespace, &resource)
        .patch(
            &name,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&built.object),
        )
        .await;
    let applied = match applied {
        Ok(applied) => applied,
        // The API server (the engine CRD's schema, CEL rules or
        // webhook, or RBAC) refuses what we built: tell the user
        // instead of retrying the same request forever.
        Err(kube::Error::Api(rejection)) if is_rejection(&rejection) => {
            let refusal = plan::Refusal {
                condition: dbaas_api::common::condition::VALID,
                reason: "EngineRejected",
                message: format!(
                    "the API server refused the {} {}: {}",
                    provider.operator_name(),
                    resource.kind,
                    rejection.message
                ),
                retry: false,
            };
            return Ok(Err(refusal));
        }
        Err(source) => {
            return Err(Error::Apply {
                cluster: id.to_owned(),
                source,
            });
        }
    };
    let applied_extra = match extras::apply(ctx, namespace, provider, &built.extra).await {
        Ok(applied) => applied,
        Err(extras::ExtraError::Rejected {
            kind,
            name: object,
            message,
        }) => {
            let refusal = plan::Refusal {
                condition: dbaas_api::common::condition::VALID,
                reason: "EngineRejected",
                message: format!(
                    "the API server refused the {} {kind} {object}: {message}",
                    provider.operator_name()
                ),
                retry: false,
            };
            return Ok(Err(refusal));
        }
        Err(source) => {
            return Err(Error::ApplyExtra {
                cluster: id.to_owned(),
                source,
            });
        }
    };
    if nothing_applied_yet {
        return Ok(Ok((applied, applied_extra)));
    }
    extras::prune(ctx, namespace, cluster, provider, &built.extra)
        .await
        .map_err(|source| Error::ApplyExtra {
            cluster: id.to_owned(),
            source: source.into(),
        })?;
    // The engine object no longer names the copies of storages the cluster
    // stopped using.
    crate::backup::storage::release_unused(&ctx.client, cluster, copies)
        .await
        .map_err(|source| Error::BackupCredentials {
            cluster: id.to_owned(),
            source,
        })?;
    Ok(Ok((applied, applied_extra)))
}

/// The credentials copies the cluster's storages of other namespaces need:
/// its backup spec's and its dataSource's.
fn backup_credentials_copies(refs: &References) -> Vec<crate::backup::storage::CredentialsCopy> {
    let mut copies: Vec<_> = refs
        .backup_storages
        .iter()
        .filter_map(crate::backup::storage::copy_of)
        .collect();
    let from_data_source = refs
        .data_source
        .as_ref()
        .and_then(|found| found.as_ref().ok())
        .and_then(|resolved| resolved.copy.clone());
    if let Some(copy) = from_data_source
        && !copies.iter().any(|c| c.target_secret == copy.target_secret)
    {
        copies.push(copy);
    }
    copies
}

/// Whether the API server refused the object itself (retrying the same
/// request cannot help). Server-side apply reports a field of the wrong type
/// as a 500 "failed to create typed patch object", not as a 422.
fn is_rejection(status: &kube::core::Status) -> bool {
    matches!(status.code, 400 | 403 | 422)
        || (status.code == 500
            && status
                .message
                .starts_with("failed to create typed patch object"))
}

/// The status and next look for a refusal.
fn refused(
    cluster: &DatabaseCluster,
    id: &str,
    refusal: &plan::Refusal,
    now: &Time,
) -> (DatabaseClusterStatus, Action) {
    info!(cluster = %id, reason = refusal.reason, "not applied: {}", refusal.message);
    let action = Action::requeue(if refusal.retry {
        RETRY_AFTER
    } else {
        RECHECK_REFUSED
    });
    (
        status::compose(cluster, Outcome::Refused(refusal), now),
        action,
    )
}

/// 5. Status, written only when it changed.
async fn finish(
    ctx: &Context,
    cluster: &DatabaseCluster,
    namespace: &str,
    name: &str,
    id: String,
    new_status: DatabaseClusterStatus,
    action: Action,
) -> Result<Action, Error> {
    if cluster.status.as_ref() != Some(&new_status) {
        let written = write_status(&ctx.api::<DatabaseCluster>(namespace), name, &new_status)
            .await
            .map_err(|source| Error::Status {
                cluster: id,
                source,
            })?;
        ctx.record_status_written(
            cluster.metadata.uid.as_deref().unwrap_or_default(),
            written.metadata.resource_version.as_deref(),
        );
        let found = events::announcements(cluster.status.as_ref(), &new_status);
        events::publish(&ctx.recorder, cluster, found);
    }
    Ok(action)
}

/// The engine operator's resources in a namespace.
fn engine_api(ctx: &Context, namespace: &str, resource: &ApiResource) -> Api<DynamicObject> {
    Api::namespaced_with(ctx.client.clone(), namespace, resource)
}

/// Fetches what the cluster refers to: the engine policy (from the watch
/// cache), whether the engine operator is installed, and whether an engine
/// object of that name exists that is not ours.
pub(crate) async fn dereference(
    cluster: &DatabaseCluster,
    namespace: &str,
    name: &str,
    ctx: &Context,
) -> Result<References, kube::Error> {
    let engine = cluster.spec.engine.type_;
    let Some(provider) = provider_for(engine) else {
        return Ok(References::default());
    };
    // Judge nothing on half-filled caches (right after start-up): a missing
    // policy would resolve another default version.
    ctx.caches_synced().await;
    let monitoring = monitoring::lookup(ctx, cluster).await?;
    // The storages a selected BackupScheduleTemplate's schedules name are
    // looked up like the cluster's own. Read from the API server, like the
    // storages: never a stale cache.
    let schedule_template = match template::selected_schedule_template(cluster) {
        None => None,
        Some(name) => Some((
            name.to_owned(),
            ctx.api::<BackupScheduleTemplate>(namespace)
                .get_opt(name)
                .await?,
        )),
    };
    let with_schedules = template::with_found_schedule_template(
        cluster,
        schedule_template
            .as_ref()
            .and_then(|(_, found)| found.as_ref()),
    );
    let backup_storages =
        crate::backup::storage::lookup(&ctx.client, with_schedules.as_ref().unwrap_or(cluster))
            .await?;
    let policy = ctx
        .engines
        .state()
        .into_iter()
        .filter(|e| e.namespace().as_deref() == Some(namespace) && e.spec.type_ == engine)
        .min_by_key(|e| e.name_any())
        .map(|e| e.spec.clone());
    let engine_installed = ctx.engine_crd_installed(provider).await?;
    let engine_object = if engine_installed {
        Some(find_engine_object(cluster, provider, namespace, name, ctx).await?)
    } else {
        None
    };
    // The cache may lag behind the event that triggered this reconcile: a
    // template it does not hold yet is looked up on the API server.
    let template = match template::selected(cluster) {
        None => None,
        Some(selected) => {
            let cached = ctx
                .templates
                .get(&ObjectRef::new(&selected.name).within(namespace))
                .map(|t| t.as_ref().clone());
            let found = match cached {
                Some(found) => Some(found),
                None => {
                    ctx.api::<DatabaseClusterTemplate>(namespace)
                        .get_opt(&selected.name)
                        .await?
                }
            };
            Some((selected, found))
        }
    };
    let applied_version = ctx.applied_version(cluster.metadata.uid.as_deref().unwrap_or_default());
    let data_source = data_source::lookup(ctx, cluster, provider).await?;
    Ok(References {
        data_source,
        policy,
        engine_installed,
        foreign_engine_object: engine_object == Some(EngineObjectFound::Foreign),
        // No status (no earlier reconcile got as far as writing one) and no
        // engine object: nothing of ours exists beside it, short of a crash
        // between applying extras or copies and the first status write (the
        // next apply prunes them then). A cluster deleted and made again
        // under its name has a new UID: what the old one owned is not ours.
        nothing_applied_yet: cluster.status.is_none()
            && engine_object == Some(EngineObjectFound::Absent),
        template,
        schedule_template,
        monitoring,
        backup_storages,
        applied_version,
    })
}

/// What the API server holds under the cluster's engine object name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum EngineObjectFound {
    /// The cluster's status records our apply (not asked again).
    Recorded,
    /// No object of that name.
    Absent,
    /// Ours, though the status does not record it yet.
    Ours,
    /// Someone else's: never taken over.
    Foreign,
}

/// Whether an engine object of this name exists, and whose. Asked of the API
/// server (not a cache, which may lag) until the cluster's status records
/// that we applied it; from then on the object carries our controller
/// reference and the owned-object watch follows it.
async fn find_engine_object(
    cluster: &DatabaseCluster,
    provider: &dyn EngineProvider,
    namespace: &str,
    name: &str,
    ctx: &Context,
) -> Result<EngineObjectFound, kube::Error> {
    let already_ours = cluster
        .status
        .as_ref()
        .and_then(|s| s.engine_ref.as_ref())
        .is_some_and(|r| r.name == name && r.kind == provider.resource().kind);
    if already_ours {
        return Ok(EngineObjectFound::Recorded);
    }
    let existing = engine_api(ctx, namespace, &provider.resource())
        .get_metadata_opt(name)
        .await?;
    Ok(match existing {
        None => EngineObjectFound::Absent,
        Some(existing) if is_ours(&existing.metadata, cluster) => EngineObjectFound::Ours,
        Some(_) => EngineObjectFound::Foreign,
    })
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

/// Records the engine object's generation after our apply. The time is the
/// API server's: the managedFields time of our own apply, which moves only
/// when an apply of ours changed the object. `previous` holds the reference
/// in the cluster's status and the one this process last wrote (the status
/// may be a stale read); either keeps the original apply's time and
/// resourceVersion while the generation is unchanged.
fn engine_ref_after_apply<'a>(
    previous: impl IntoIterator<Item = Option<&'a EngineObjectRef>>,
    resource: &ApiResource,
    applied: &DynamicObject,
    now: &Time,
) -> EngineObjectRef {
    let generation = applied.metadata.generation;
    let name = applied.name_any();
    let previous = previous.into_iter().flatten().find(|prev| {
        prev.applied_generation == generation && prev.applied_at.is_some() && prev.name == name
    });
    let (applied_at, applied_resource_version) = match previous {
        Some(prev) => (
            prev.applied_at.clone(),
            prev.applied_resource_version.clone(),
        ),
        None => {
            let server_time = applied
                .metadata
                .managed_fields
                .iter()
                .flatten()
                .find(|m| {
                    m.manager.as_deref() == Some(FIELD_MANAGER)
                        && m.operation.as_deref() == Some("Apply")
                        && m.subresource.is_none()
                })
                .and_then(|m| m.time.clone());
            (
                Some(server_time.unwrap_or_else(|| now.clone())),
                applied.metadata.resource_version.clone(),
            )
        }
    };
    EngineObjectRef {
        api_version: resource.api_version.clone(),
        kind: resource.kind.clone(),
        name: applied.name_any(),
        applied_generation: generation,
        applied_at,
        applied_resource_version,
    }
}

/// Writes the status; returns the cluster as the API server stored it.
async fn write_status(
    api: &Api<DatabaseCluster>,
    name: &str,
    status: &DatabaseClusterStatus,
) -> Result<DatabaseCluster, kube::Error> {
    // The queue belongs to the OpsRequest controller's field manager: left
    // out here, or a stale copy would be applied back over its writes.
    let status = DatabaseClusterStatus {
        ops_queue: Vec::new(),
        ..status.clone()
    };
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

#[cfg(test)]
mod tests {
    use super::*;

    fn applied(generation: i64, resource_version: &str, apply_time: &str) -> DynamicObject {
        serde_json::from_value(json!({
            "apiVersion": "postgresql.cnpg.io/v1", "kind": "Cluster",
            "metadata": {
                "name": "app", "generation": generation, "resourceVersion": resource_version,
                "managedFields": [{
                    "manager": FIELD_MANAGER, "operation": "Apply",
                    "apiVersion": "postgresql.cnpg.io/v1", "time": apply_time,
                }],
            },
        }))
        .expect("valid object")
    }

    fn resource() -> ApiResource {
        ApiResource::from_gvk(&kube::core::GroupVersionKind::gvk(
            "postgresql.cnpg.io",
            "v1",
            "Cluster",
        ))
    }

    fn now() -> Time {
        Time(Timestamp::from_second(1_800_000_000).expect("valid time"))
    }

    #[test]
    fn a_new_generation_is_anchored_at_our_apply() {
        let first = engine_ref_after_apply(
            [None, None],
            &resource(),
            &applied(1, "514", "2026-11-23T22:56:57Z"),
            &now(),
        );
        assert_eq!(first.applied_generation, Some(1));
        assert_eq!(first.applied_resource_version.as_deref(), Some("514"));
        assert_eq!(
            first.applied_at.map(|t| t.0.to_string()).as_deref(),
            Some("2026-11-23T22:56:57Z")
        );
    }

    #[test]
    fn a_stale_status_does_not_move_the_anchor_past_the_engines_status_write() {
        // Our apply left resourceVersion 514; the engine operator then wrote
        // its status (515) in the same second. A reconcile that reads our
        // cluster from a cache that has not seen our status write yet must
        // keep 514, or that status write would look older than the apply.
        let recorded = engine_ref_after_apply(
            [None, None],
            &resource(),
            &applied(1, "514", "2026-11-23T22:56:57Z"),
            &now(),
        );
        let again = engine_ref_after_apply(
            [None, Some(&recorded)],
            &resource(),
            &applied(1, "515", "2026-11-23T22:56:57Z"),
            &now(),
        );
        assert_eq!(again, recorded);
    }

    #[test]
    fn a_spec_change_moves_the_anchor() {
        let recorded = engine_ref_after_apply(
            [None, None],
            &resource(),
            &applied(1, "514", "2026-11-23T22:56:57Z"),
            &now(),
        );
        let changed = engine_ref_after_apply(
            [Some(&recorded), Some(&recorded)],
            &resource(),
            &applied(2, "600", "2026-11-23T22:58:00Z"),
            &now(),
        );
        assert_eq!(changed.applied_generation, Some(2));
        assert_eq!(changed.applied_resource_version.as_deref(), Some("600"));
    }

    #[test]
    fn an_unseen_spec_is_looked_at_again_when_the_quiet_period_ends() {
        let at = |secs: i64| Time(Timestamp::from_second(1_800_000_000 + secs).expect("valid"));
        let quiet = Duration::from_secs(120);
        assert_eq!(recheck_unseen(quiet, Some(&at(0)), &at(0)), quiet);
        assert_eq!(
            recheck_unseen(quiet, Some(&at(0)), &at(100)),
            quiet - Duration::from_secs(100)
        );
        assert_eq!(
            recheck_unseen(quiet, Some(&at(0)), &at(1_000)),
            RECHECK_UNSEEN
        );
        assert_eq!(recheck_unseen(quiet, None, &at(0)), quiet);
    }
}
