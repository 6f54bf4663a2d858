//! The OpsRequest controller: dereference (the cluster, its queue, the
//! engine's evidence) -> validate and plan ([`plan`], [`queue`]; pure) ->
//! apply (the cluster spec, or the engine operator's own mechanism) ->
//! status (phase, progress, timestamps, conditions; the cluster's queue).
//!
//! Spec-changing operations write the DatabaseCluster spec with a JSON merge
//! patch under their own field manager, carrying the resourceVersion they
//! planned from: the new value is computed from the spec as read (a config
//! list merged by name, a cancel putting back the recorded old value), so a
//! concurrent edit must fail the write and be planned again. Server-side
//! apply would instead make this manager own the field, and a later apply of
//! another field would remove it.

pub mod plan;
pub mod queue;

use std::sync::Arc;
use std::time::Duration;

use dbaas_api::OpsRequest;
use dbaas_api::backup::BackupPhase;
use dbaas_api::cluster::QueuedOperation;
use dbaas_api::common::{FIELD_MANAGER, OPS_FIELD_MANAGER};
use dbaas_api::common::{LABEL_CLUSTER, LABEL_MANAGED_BY, MANAGED_BY_VALUE};
use dbaas_api::ops::LABEL_OPS_REQUEST;
use dbaas_api::ops::{AppliedChange, OpsPhase, OpsRequestStatus, OpsType};
use dbaas_api::{DatabaseBackup, DatabaseCluster};
use dbaas_engines::capabilities::{EnginePatch, Primary};
use dbaas_engines::restore::RestoreObservation;
use dbaas_engines::{EngineProvider, provider_for};
use futures::StreamExt;
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams};
use kube::core::{ApiResource, DynamicObject};
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType};
use kube::runtime::reflector::Store;
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, Resource, ResourceExt};
use serde_json::{Value, json};
use tracing::{debug, info, warn};

use crate::cluster;
use crate::context::Context;
use plan::{Evidence, Mechanism, PodEvidence, Progress, Refusal};
use queue::Place;

/// Condition: the operation could not be cancelled.
pub const CONDITION_CANCEL_REFUSED: &str = "CancelRefused";
/// Condition: the operation waits outside a full queue.
pub const CONDITION_QUEUED: &str = "Queued";
/// How often a running operation looks again without an event (pod and
/// volume changes send none).
const RECHECK: Duration = Duration::from_secs(10);
/// How often a waiting operation looks again without an event: the queue's
/// changes reach it through its cluster; this only covers a missed one.
const RECHECK_WAITING: Duration = Duration::from_secs(30);

/// What the OpsRequest controller shares between reconciles.
pub struct OpsContext {
    pub cluster: Arc<Context>,
    /// Every OpsRequest, from the controller's own watch.
    pub ops: Store<OpsRequest>,
    pub recorder: crate::events::EventPublisher,
    /// One reconcile at a time per cluster: the decision to start the head
    /// of a cluster's queue and the status write that marks it Running
    /// happen under this lock, on a fresh list, so two operations on one
    /// cluster never both start.
    pub cluster_locks: ClusterLocks,
}

/// One lock per (namespace, cluster).
pub type ClusterLocks =
    std::sync::Mutex<std::collections::HashMap<(String, String), Arc<tokio::sync::Mutex<()>>>>;

impl OpsContext {
    fn cluster_lock(&self, namespace: &str, cluster: &str) -> Arc<tokio::sync::Mutex<()>> {
        match self.cluster_locks.lock() {
            Ok(mut locks) => locks
                .entry((namespace.to_owned(), cluster.to_owned()))
                .or_default()
                .clone(),
            // A poisoned map only loses the serialisation, never a reconcile.
            Err(_) => Arc::default(),
        }
    }
}

/// A reconcile failed on I/O; the controller retries it.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("dereferencing {op}: {source}")]
    Dereference {
        op: String,
        #[source]
        source: kube::Error,
    },
    #[error("changing cluster {cluster} for {op}: {source}")]
    Apply {
        op: String,
        cluster: String,
        #[source]
        source: kube::Error,
    },
    #[error("writing the status of {op}: {source}")]
    Status {
        op: String,
        #[source]
        source: kube::Error,
    },
    #[error("writing the operation queue of cluster {cluster}: {source}")]
    Queue {
        cluster: String,
        #[source]
        source: kube::Error,
    },
    #[error("deleting {op} after its TTL: {source}")]
    Cleanup {
        op: String,
        #[source]
        source: kube::Error,
    },
    #[error("object has no namespace")]
    NoNamespace,
}

impl Error {
    /// A short label for logs.
    pub fn stage(&self) -> &'static str {
        match self {
            Self::Dereference { .. } => "dereference",
            Self::Apply { .. } => "apply",
            Self::Status { .. } => "status",
            Self::Queue { .. } => "queue",
            Self::Cleanup { .. } => "cleanup",
            Self::NoNamespace => "input",
        }
    }
}

/// One reconcile's view of an operation.
struct Run<'a> {
    ctx: &'a OpsContext,
    op: &'a OpsRequest,
    namespace: String,
    name: String,
    id: String,
    now: Time,
}

/// Reconciles one OpsRequest.
pub async fn reconcile(op: Arc<OpsRequest>, ctx: Arc<OpsContext>) -> Result<Action, Error> {
    let namespace = op.namespace().ok_or(Error::NoNamespace)?;
    if op.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let name = op.name_any();
    let lock = ctx.cluster_lock(&namespace, &op.spec.cluster_ref.name);
    let _serialised = lock.lock().await;
    let run = Run {
        ctx: &ctx,
        op: &op,
        id: format!("{namespace}/{name}"),
        namespace,
        name,
        now: Time(Timestamp::now()),
    };
    run.reconcile().await
}

impl Run<'_> {
    async fn reconcile(&self) -> Result<Action, Error> {
        let phase = queue::phase_of(self.op);
        if phase.is_terminal() {
            return self.cleanup().await;
        }
        // 1. Dereference: the cluster, read fresh (its generation and
        // status are the evidence).
        let cluster_name = &self.op.spec.cluster_ref.name;
        let cluster = self
            .ctx
            .cluster
            .api::<DatabaseCluster>(&self.namespace)
            .get_opt(cluster_name)
            .await
            .map_err(|source| self.dereference_error(source))?;
        let Some(cluster) = cluster else {
            let status = self.finished(
                OpsPhase::Failed,
                "ClusterNotFound",
                format!(
                    "DatabaseCluster {cluster_name:?} does not exist in namespace {}; nothing was changed",
                    self.namespace
                ),
            );
            return self.write(status, None, Action::requeue(RECHECK)).await;
        };

        // 2 + 3 + 4. Validate, plan and apply, phase by phase.
        let (status, action) = match phase {
            OpsPhase::Running => self.running(&cluster).await?,
            OpsPhase::Cancelling => self.cancelling(&cluster),
            _ => self.pending(&cluster).await?,
        };
        // 5. Status, and the cluster's queue as it now stands.
        self.write(status, Some(&cluster), action).await
    }

    /// A Pending operation: cancelled, refused, waiting, or started.
    async fn pending(
        &self,
        cluster: &DatabaseCluster,
    ) -> Result<(OpsRequestStatus, Action), Error> {
        let engine = cluster.spec.engine.type_;
        if self.op.spec.cancel {
            let status = self.finished(
                OpsPhase::Cancelled,
                "Cancelled",
                "cancelled before it started; nothing was changed".to_owned(),
            );
            return Ok((status, Action::await_change()));
        }
        let mechanism = match plan::mechanism(self.op.spec.type_, engine) {
            Ok(mechanism) => mechanism,
            Err(refusal) => return Ok((self.refused(refusal), Action::await_change())),
        };
        // A fresh list, not the watch cache: an operation of this cluster
        // marked Running a moment ago must be seen.
        let ops = self
            .ctx
            .cluster
            .api::<OpsRequest>(&self.namespace)
            .list(&kube::api::ListParams::default())
            .await
            .map_err(|source| Error::Dereference {
                op: self.id.clone(),
                source,
            })?
            .items;
        let ordered = queue::ordered(ops.iter(), &self.namespace, &cluster.name_any());
        let mut status = self.op.status.clone().unwrap_or_default();
        status.phase = Some(OpsPhase::Pending);
        status.observed_generation = self.op.metadata.generation;
        match queue::place(&ordered, &self.name) {
            Place::Head | Place::Outside => {}
            Place::Waiting(position) => {
                status.queue_position = Some(position);
                status.message = Some(format!(
                    "waiting behind {position} operation(s) on cluster {}",
                    cluster.name_any()
                ));
                self.set_condition(
                    &mut status,
                    CONDITION_QUEUED,
                    true,
                    "Queued",
                    format!(
                        "position {position} in the queue of cluster {}",
                        cluster.name_any()
                    ),
                );
                return Ok((status, Action::requeue(RECHECK_WAITING)));
            }
            Place::Overflow => {
                status.queue_position = None;
                let message = format!(
                    "the queue of cluster {} is full ({} operations); this one stays Pending until a place frees up",
                    cluster.name_any(),
                    queue::QUEUE_LIMIT
                );
                status.message = Some(message.clone());
                self.set_condition(&mut status, CONDITION_QUEUED, false, "QueueFull", message);
                return Ok((status, Action::requeue(RECHECK_WAITING)));
            }
        }

        // At the head: validate against the cluster as it is now, then start.
        if let Some(refusal) = plan::stopped_refusal(self.op.spec.type_, cluster) {
            return Ok((self.refused(refusal), Action::await_change()));
        }
        status.queue_position = None;
        status.phase = Some(OpsPhase::Running);
        status.start_timestamp = Some(self.now.clone());
        status.progress = Some("0/2".to_owned());
        self.set_condition(
            &mut status,
            CONDITION_QUEUED,
            true,
            "Started",
            format!("running on cluster {}", cluster.name_any()),
        );
        let applied = match mechanism {
            Mechanism::Spec => {
                let change = match plan::spec_change(&self.op.spec, cluster) {
                    Ok(change) => change,
                    Err(refusal) => return Ok((self.refused(refusal), Action::await_change())),
                };
                if let Some(refusal) = self.cluster_refusal(&change.candidate).await? {
                    return Ok((self.refused(refusal), Action::await_change()));
                }
                AppliedChange {
                    previous: Some(change.previous),
                    ..AppliedChange::default()
                }
            }
            Mechanism::EngineRestart => AppliedChange {
                restarted_at: Some(
                    self.now
                        .0
                        .round(k8s_openapi::jiff::Unit::Second)
                        .unwrap_or(self.now.0)
                        .to_string(),
                ),
                ..AppliedChange::default()
            },
            Mechanism::EngineSwitchover => {
                if let Some(why) = provider_for(cluster.spec.engine.type_)
                    .and_then(|p| p.switchover_refusal(cluster))
                {
                    let refusal = plan::Refusal::new("Unsupported", why);
                    return Ok((self.refused(refusal), Action::await_change()));
                }
                let primary = self.primary(cluster).await?;
                let asked = self
                    .op
                    .spec
                    .switchover
                    .as_ref()
                    .and_then(|s| s.instance_name.as_deref());
                let current = primary.current.as_deref();
                match plan::switchover_target(asked, current, &primary.instances) {
                    Err(refusal) => return Ok((self.refused(refusal), Action::await_change())),
                    Ok(None) => {
                        let status = self.finished(
                            OpsPhase::Succeeded,
                            "AlreadyPrimary",
                            format!("{} already is the primary", current.unwrap_or_default()),
                        );
                        return Ok((status, Action::await_change()));
                    }
                    Ok(Some(target)) => AppliedChange {
                        target_primary: Some(target),
                        ..AppliedChange::default()
                    },
                }
            }
            Mechanism::Backup => match plan::backup_request(&self.name, &self.op.spec, cluster) {
                Err(refusal) => return Ok((self.refused(refusal), Action::await_change())),
                Ok((backup_name, _)) => AppliedChange {
                    backup_name: Some(backup_name),
                    ..AppliedChange::default()
                },
            },
            // Checked now, so a wrong backup fails before the queue moves
            // on to it; created in the next pass.
            Mechanism::Restore => match self.restore_object(cluster).await? {
                Err(refusal) => return Ok((self.refused(refusal), Action::await_change())),
                Ok(_) => AppliedChange::default(),
            },
        };
        status.applied = Some(applied);
        status.message = Some(format!("{} started", self.op.spec.type_));
        self.event(
            EventType::Normal,
            "Started",
            format!("{} started", self.op.spec.type_),
        )
        .await;
        // Record what it will change before changing it, so a cancel can
        // always put it back; the change itself follows in the next pass.
        Ok((status, Action::requeue(Duration::from_millis(200))))
    }

    /// A Running operation: cancel, time out, apply its change, judge it.
    async fn running(
        &self,
        cluster: &DatabaseCluster,
    ) -> Result<(OpsRequestStatus, Action), Error> {
        let mut status = self.op.status.clone().unwrap_or_default();
        let mut applied = status.applied.clone().unwrap_or_default();
        let type_ = self.op.spec.type_;
        let mechanism = match plan::mechanism(type_, cluster.spec.engine.type_) {
            Ok(mechanism) => mechanism,
            Err(refusal) => return Ok((self.refused(refusal), Action::await_change())),
        };

        // A cancel that was refused once is not tried again: the operation
        // goes on and finishes on its own evidence.
        let cancel_refused = status
            .conditions
            .iter()
            .any(|c| c.type_ == CONDITION_CANCEL_REFUSED && c.status == "True");
        if self.op.spec.cancel && !cancel_refused {
            match plan::cancellable(type_) {
                Err(why) => self.set_condition(
                    &mut status,
                    CONDITION_CANCEL_REFUSED,
                    true,
                    "NotCancellable",
                    why.to_owned(),
                ),
                Ok(()) => return self.cancel(cluster, status, applied).await,
            }
        }

        let mut recheck = RECHECK;
        if let (Some(timeout), Some(started)) =
            (self.op.spec.timeout_seconds, &status.start_timestamp)
        {
            let elapsed = self.now.0.duration_since(started.0).as_secs();
            // Look again when the time is up, not a recheck later.
            let left = u64::try_from(timeout - elapsed).unwrap_or(0);
            recheck = recheck.min(Duration::from_secs(left.max(1)));
            if elapsed >= timeout {
                let status = self.finished(
                    OpsPhase::Failed,
                    "Timeout",
                    format!(
                        "not finished after {timeout}s (timeoutSeconds); what was changed stays: {}",
                        status.message.unwrap_or_default()
                    ),
                );
                return Ok((status, Action::await_change()));
            }
        }

        // Apply (idempotent: each pass makes sure the change is there).
        let mut evidence = Evidence::default();
        match mechanism {
            Mechanism::Spec => {
                if applied.cluster_generation.is_none() {
                    let change = match plan::spec_change(&self.op.spec, cluster) {
                        Ok(change) => change,
                        Err(refusal) => return Ok((self.refused(refusal), Action::await_change())),
                    };
                    match self.patch_cluster_spec(cluster, change.patch).await? {
                        Ok(generation) => applied.cluster_generation = generation,
                        Err(refusal) => return Ok((self.refused(refusal), Action::await_change())),
                    }
                    self.event(
                        EventType::Normal,
                        "SpecChanged",
                        format!("changed the spec of cluster {}", cluster.name_any()),
                    )
                    .await;
                }
                if type_ == OpsType::VolumeExpansion {
                    evidence.volume_capacities = self.volume_capacities(cluster).await?;
                }
                if type_ == OpsType::Upgrade
                    && let Some((provider, engine_object)) = self.engine_object(cluster).await?
                    && let Some((asked, running)) = provider.images(&engine_object)
                {
                    evidence.asked_image = asked;
                    evidence.running_image = running;
                    evidence.pods = self.instance_pods(cluster).await?;
                }
            }
            Mechanism::EngineRestart => {
                let value = applied.restarted_at.clone().unwrap_or_default();
                if let Some((provider, engine_object)) = self.engine_object(cluster).await?
                    && provider.restart_requested(&engine_object).as_ref() != Some(&value)
                    && let Some(patch) = provider.restart_patch(&value)
                {
                    self.patch_engine(cluster, patch).await?;
                }
                evidence.pods = self.instance_pods(cluster).await?;
            }
            Mechanism::EngineSwitchover => {
                let target = applied.target_primary.clone().unwrap_or_default();
                let primary = self.primary(cluster).await?;
                evidence.current_primary = primary.current;
                // Asked once: the engine operator may move the primary
                // itself (a failover), which must not be overridden.
                if status.progress.as_deref() == Some("0/2")
                    && evidence.current_primary.as_deref() != Some(target.as_str())
                    && let Some(provider) = provider_for(cluster.spec.engine.type_)
                    && let Some(patch) = provider.switchover_patch(&target)
                {
                    self.patch_engine(cluster, patch).await?;
                }
            }
            Mechanism::Backup => match self.ensure_backup(cluster, &applied).await? {
                Ok(found) => evidence.backup = found,
                Err(refusal) => return Ok((self.refused(refusal), Action::await_change())),
            },
            Mechanism::Restore => match self.ensure_restore(cluster, &mut applied).await? {
                Ok(found) => evidence.restore = found,
                Err(refusal) => return Ok((self.refused(refusal), Action::await_change())),
            },
        }
        status.progress = Some("1/2".to_owned());
        status.applied = Some(applied.clone());

        // Judge on evidence.
        match plan::evaluate(&self.op.spec, &applied, cluster, &evidence) {
            Progress::Done(message) => {
                let mut done = self.finished(OpsPhase::Succeeded, "Succeeded", message);
                done.applied = Some(applied);
                Ok((done, Action::await_change()))
            }
            Progress::Waiting(message) => {
                status.message = Some(message);
                Ok((status, Action::requeue(recheck)))
            }
            Progress::Failed(message) => {
                let mut failed = self.finished(OpsPhase::Failed, "Failed", message);
                failed.applied = Some(applied);
                Ok((failed, Action::await_change()))
            }
        }
    }

    /// Makes sure the operation's DatabaseBackup exists (created once, with
    /// this operation's label) and reads its phase. A DatabaseBackup of that
    /// name that another made is refused, never taken over.
    async fn ensure_backup(
        &self,
        cluster: &DatabaseCluster,
        applied: &AppliedChange,
    ) -> Result<Result<Option<(BackupPhase, Option<String>)>, Refusal>, Error> {
        let (name, storage) = match plan::backup_request(&self.name, &self.op.spec, cluster) {
            Ok(request) => request,
            Err(refusal) => return Ok(Err(refusal)),
        };
        let name = applied.backup_name.clone().unwrap_or(name);
        let api = self.ctx.cluster.api::<DatabaseBackup>(&self.namespace);
        let existing = api
            .get_opt(&name)
            .await
            .map_err(|source| self.dereference_error(source))?;
        let backup = match existing {
            Some(existing) => {
                let ours = existing.labels().get(LABEL_OPS_REQUEST) == Some(&self.name);
                if !ours {
                    return Ok(Err(Refusal {
                        reason: "BackupNameTaken",
                        message: format!(
                            "a DatabaseBackup named {name} already exists and was not made by this operation: name another backup.backupName"
                        ),
                    }));
                }
                existing
            }
            None => {
                let body = json!({
                    "apiVersion": DatabaseBackup::api_version(&()),
                    "kind": DatabaseBackup::kind(&()),
                    "metadata": {
                        "name": name,
                        "labels": {
                            LABEL_MANAGED_BY: MANAGED_BY_VALUE,
                            LABEL_CLUSTER: cluster.name_any(),
                            LABEL_OPS_REQUEST: self.name,
                        },
                    },
                    "spec": {"clusterName": cluster.name_any(), "storageName": storage},
                });
                let created = api
                    .patch(
                        &name,
                        &PatchParams::apply(OPS_FIELD_MANAGER),
                        &Patch::Apply(&body),
                    )
                    .await
                    .map_err(|source| Error::Apply {
                        op: self.id.clone(),
                        cluster: cluster.name_any(),
                        source,
                    })?;
                self.event(
                    EventType::Normal,
                    "BackupCreated",
                    format!(
                        "created DatabaseBackup {name} of cluster {}",
                        cluster.name_any()
                    ),
                )
                .await;
                created
            }
        };
        Ok(Ok(backup
            .status
            .and_then(|s| s.phase.map(|phase| (phase, s.message)))))
    }

    /// The engine restore resource this Restore operation creates (named
    /// like it, owned by it), built from the backup it names; or why the
    /// backup cannot be restored into the cluster.
    async fn restore_object(
        &self,
        cluster: &DatabaseCluster,
    ) -> Result<Result<DynamicObject, Refusal>, Error> {
        let invalid = |reason, message| Ok(Err(Refusal { reason, message }));
        let Some(asked) = &self.op.spec.restore else {
            return invalid("InvalidParameters", "type Restore needs restore".to_owned());
        };
        let Some(provider) = provider_for(cluster.spec.engine.type_) else {
            return invalid(
                "Unsupported",
                "the cluster's engine has no provider".to_owned(),
            );
        };
        let found = crate::backup::restore::resolve(
            &self.ctx.cluster.client,
            &self.namespace,
            cluster.spec.engine.type_,
            crate::backup::restore::Wanted::Backup(&asked.backup_name),
            asked.pitr.as_ref(),
        )
        .await
        .map_err(|source| self.dereference_error(source))?;
        let resolved = match found {
            Ok(resolved) => resolved,
            Err(refusal) => return invalid(refusal.reason, refusal.message),
        };
        // A storage of another namespace: the engine reads the copy of its
        // credentials in the cluster's namespace.
        if let Some(copy) = &resolved.copy {
            let synced = crate::backup::storage::sync_copy(&self.ctx.cluster.client, cluster, copy)
                .await
                .map_err(|source| self.dereference_error(source))?;
            if let crate::backup::storage::CopyOutcome::Conflict { message } = synced {
                return invalid("BackupCredentialsConflict", message);
            }
        }
        let input = resolved.input;
        let mut object = match provider.build_restore(&self.name, cluster, &input) {
            Ok(object) => object,
            Err(err) => return invalid(err.reason(), format!("{err}; nothing was changed")),
        };
        object.metadata.owner_references = self.op.controller_owner_ref(&()).map(|o| vec![o]);
        let labels = object.metadata.labels.get_or_insert_with(Default::default);
        labels.insert(LABEL_MANAGED_BY.to_owned(), MANAGED_BY_VALUE.to_owned());
        labels.insert(LABEL_CLUSTER.to_owned(), cluster.name_any());
        labels.insert(LABEL_OPS_REQUEST.to_owned(), self.name.clone());
        Ok(Ok(object))
    }

    /// Makes sure the operation's engine restore resource exists (created
    /// once; the backup is not looked up again after that) and reads it.
    async fn ensure_restore(
        &self,
        cluster: &DatabaseCluster,
        applied: &mut AppliedChange,
    ) -> Result<Result<Option<RestoreObservation>, Refusal>, Error> {
        let Some(provider) = provider_for(cluster.spec.engine.type_) else {
            return Ok(Ok(None));
        };
        let Some(resource) = provider.restore_resource() else {
            return Ok(Ok(None));
        };
        let api: Api<DynamicObject> =
            Api::namespaced_with(self.ctx.cluster.client.clone(), &self.namespace, &resource);
        let existing = api
            .get_opt(&self.name)
            .await
            .map_err(|source| self.dereference_error(source))?;
        let stored = match existing {
            Some(existing) => {
                if existing.labels().get(LABEL_OPS_REQUEST) != Some(&self.name) {
                    return Ok(Err(Refusal {
                        reason: "RestoreNameTaken",
                        message: format!(
                            "a {} named {} already exists and was not made by this operation; nothing was changed",
                            resource.kind, self.name
                        ),
                    }));
                }
                existing
            }
            None if applied.engine_restore.is_some() => {
                // Created before and gone since: deleted by someone, which
                // ends the operation rather than restoring twice.
                return Ok(Err(Refusal {
                    reason: "RestoreDeleted",
                    message: format!(
                        "{} {} was deleted before it finished",
                        resource.kind, self.name
                    ),
                }));
            }
            None => {
                let object = match self.restore_object(cluster).await? {
                    Ok(object) => object,
                    Err(refusal) => return Ok(Err(refusal)),
                };
                let created = api
                    .patch(
                        &self.name,
                        &PatchParams::apply(OPS_FIELD_MANAGER),
                        &Patch::Apply(&object),
                    )
                    .await
                    .map_err(|source| Error::Apply {
                        op: self.id.clone(),
                        cluster: cluster.name_any(),
                        source,
                    })?;
                self.event(
                    EventType::Normal,
                    "RestoreCreated",
                    format!(
                        "created {} {} for cluster {}",
                        resource.kind,
                        self.name,
                        cluster.name_any()
                    ),
                )
                .await;
                created
            }
        };
        applied.engine_restore = Some(format!("{}/{}", resource.kind, self.name));
        Ok(Ok(Some(provider.observe_restore(&stored))))
    }

    /// Cancels a running spec change by putting the old value back.
    async fn cancel(
        &self,
        cluster: &DatabaseCluster,
        mut status: OpsRequestStatus,
        mut applied: AppliedChange,
    ) -> Result<(OpsRequestStatus, Action), Error> {
        let reverted = match (&applied.cluster_generation, &applied.previous) {
            (Some(_), Some(previous)) => plan::revert(self.op.spec.type_, previous, cluster),
            // Nothing changed yet (or nothing to put back).
            _ => None,
        };
        let Some(patch) = reverted else {
            let status = self.finished(
                OpsPhase::Cancelled,
                "Cancelled",
                "cancelled before it changed anything".to_owned(),
            );
            return Ok((status, Action::await_change()));
        };
        match self.patch_cluster_spec(cluster, patch).await? {
            Ok(generation) => applied.cluster_generation = generation,
            Err(refusal) => {
                self.set_condition(
                    &mut status,
                    CONDITION_CANCEL_REFUSED,
                    true,
                    refusal.reason,
                    refusal.message,
                );
                return Ok((status, Action::requeue(RECHECK)));
            }
        }
        status.phase = Some(OpsPhase::Cancelling);
        status.applied = Some(applied);
        status.message = Some("putting the previous value back".to_owned());
        self.event(
            EventType::Normal,
            "Cancelling",
            format!(
                "cancelling: the previous value of cluster {} is put back",
                cluster.name_any()
            ),
        )
        .await;
        Ok((status, Action::requeue(Duration::from_millis(200))))
    }

    /// A cancel waits until the cluster has taken the old value back.
    fn cancelling(&self, cluster: &DatabaseCluster) -> (OpsRequestStatus, Action) {
        let status = self.op.status.clone().unwrap_or_default();
        let generation = status
            .applied
            .as_ref()
            .and_then(|a| a.cluster_generation)
            .unwrap_or(0);
        let observed = cluster
            .status
            .as_ref()
            .and_then(|s| s.observed_generation)
            .unwrap_or(0);
        if observed >= generation {
            let mut done = self.finished(
                OpsPhase::Cancelled,
                "Cancelled",
                "cancelled: the cluster runs the previous value again".to_owned(),
            );
            done.applied = status.applied;
            (done, Action::await_change())
        } else {
            (status, Action::requeue(RECHECK))
        }
    }

    /// Deletes a finished operation once its TTL is over.
    async fn cleanup(&self) -> Result<Action, Error> {
        let status = self.op.status.clone().unwrap_or_default();
        let ttl = match status.phase {
            Some(OpsPhase::Succeeded) => self.op.spec.ttl_seconds_after_succeed,
            Some(OpsPhase::Failed) => self.op.spec.ttl_seconds_after_failed,
            _ => None,
        };
        let (Some(ttl), Some(done)) = (ttl, status.completion_timestamp) else {
            return Ok(Action::await_change());
        };
        let elapsed = self.now.0.duration_since(done.0).as_secs();
        if elapsed < ttl {
            let left = u64::try_from(ttl - elapsed).unwrap_or(1).max(1);
            return Ok(Action::requeue(Duration::from_secs(left)));
        }
        info!(op = %self.id, "deleting after its TTL of {ttl}s");
        match self
            .ctx
            .cluster
            .api::<OpsRequest>(&self.namespace)
            .delete(&self.name, &DeleteParams::default())
            .await
        {
            Ok(_) => Ok(Action::await_change()),
            Err(kube::Error::Api(status)) if status.code == 404 => Ok(Action::await_change()),
            Err(source) => Err(Error::Cleanup {
                op: self.id.clone(),
                source,
            }),
        }
    }

    /// Why the cluster controller would refuse the cluster with the change.
    async fn cluster_refusal(&self, candidate: &DatabaseCluster) -> Result<Option<Refusal>, Error> {
        let refs = cluster::dereference(
            candidate,
            &self.namespace,
            &candidate.name_any(),
            &self.ctx.cluster,
        )
        .await
        .map_err(|source| self.dereference_error(source))?;
        Ok(match cluster::plan::plan(candidate, &refs) {
            cluster::plan::Plan::Refuse(refusal) => Some(Refusal {
                reason: refusal.reason,
                message: format!("{}; nothing was changed", refusal.message),
            }),
            cluster::plan::Plan::Apply { .. } => None,
        })
    }

    /// Writes a spec change; the cluster's new generation, or why the API
    /// server refused it (its validation rules: nothing changed).
    async fn patch_cluster_spec(
        &self,
        cluster: &DatabaseCluster,
        spec_patch: Value,
    ) -> Result<Result<Option<i64>, Refusal>, Error> {
        let body = json!({
            "metadata": {"resourceVersion": cluster.resource_version()},
            "spec": spec_patch,
        });
        let patched = self
            .ctx
            .cluster
            .api::<DatabaseCluster>(&self.namespace)
            .patch(
                &cluster.name_any(),
                &PatchParams::apply(OPS_FIELD_MANAGER),
                &Patch::Merge(&body),
            )
            .await;
        match patched {
            Ok(patched) => Ok(Ok(patched.metadata.generation)),
            Err(kube::Error::Api(rejection)) if matches!(rejection.code, 400 | 422) => {
                Ok(Err(Refusal {
                    reason: "InvalidParameters",
                    message: format!(
                        "the API server refused the change of cluster {}: {}; nothing was changed",
                        cluster.name_any(),
                        rejection.message
                    ),
                }))
            }
            Err(source) => Err(Error::Apply {
                op: self.id.clone(),
                cluster: cluster.name_any(),
                source,
            }),
        }
    }

    /// The cluster's engine resource API and name.
    fn engine_target(&self, cluster: &DatabaseCluster) -> Option<(Api<DynamicObject>, String)> {
        let provider = provider_for(cluster.spec.engine.type_)?;
        let resource: ApiResource = provider.resource();
        let name = cluster
            .status
            .as_ref()
            .and_then(|s| s.engine_ref.as_ref())
            .map(|r| r.name.clone())
            .unwrap_or_else(|| cluster.name_any());
        Some((
            Api::namespaced_with(self.ctx.cluster.client.clone(), &self.namespace, &resource),
            name,
        ))
    }

    /// The engine resource of the cluster with its provider, if it exists.
    async fn engine_object(
        &self,
        cluster: &DatabaseCluster,
    ) -> Result<Option<(&'static dyn EngineProvider, DynamicObject)>, Error> {
        let Some(provider) = provider_for(cluster.spec.engine.type_) else {
            return Ok(None);
        };
        let Some((api, name)) = self.engine_target(cluster) else {
            return Ok(None);
        };
        let object = api
            .get_opt(&name)
            .await
            .map_err(|source| self.dereference_error(source))?;
        Ok(object.map(|object| (provider, object)))
    }

    /// The primary and instances the engine resource reports.
    async fn primary(&self, cluster: &DatabaseCluster) -> Result<Primary, Error> {
        Ok(self
            .engine_object(cluster)
            .await?
            .map(|(provider, object)| provider.primary(&object))
            .unwrap_or_default())
    }

    /// Merge-patches the engine resource (or its status subresource).
    async fn patch_engine(
        &self,
        cluster: &DatabaseCluster,
        patch: EnginePatch,
    ) -> Result<(), Error> {
        let EnginePatch {
            status,
            patch: body,
        } = patch;
        let Some((api, name)) = self.engine_target(cluster) else {
            return Ok(());
        };
        let params = PatchParams::apply(OPS_FIELD_MANAGER);
        let patched = if status {
            api.patch_status(&name, &params, &Patch::Merge(&body)).await
        } else {
            api.patch(&name, &params, &Patch::Merge(&body)).await
        };
        patched.map(|_| ()).map_err(|source| Error::Apply {
            op: self.id.clone(),
            cluster: cluster.name_any(),
            source,
        })
    }

    /// The instance pods of the cluster, where its provider says.
    async fn instance_pods(&self, cluster: &DatabaseCluster) -> Result<Vec<PodEvidence>, Error> {
        let Some((_, name)) = self.engine_target(cluster) else {
            return Ok(Vec::new());
        };
        let Some(pods_of) =
            provider_for(cluster.spec.engine.type_).and_then(|p| p.instance_pods(&name))
        else {
            return Ok(Vec::new());
        };
        let pods = self
            .ctx
            .cluster
            .api::<Pod>(&self.namespace)
            .list(&ListParams::default().labels(&pods_of.selector))
            .await
            .map_err(|source| self.dereference_error(source))?;
        Ok(pods
            .items
            .iter()
            .filter(|p| p.metadata.deletion_timestamp.is_none())
            .map(|p| PodEvidence {
                restarted_at: p.annotations().get(pods_of.restart_annotation).cloned(),
                ready: p
                    .status
                    .as_ref()
                    .and_then(|s| s.conditions.as_ref())
                    .into_iter()
                    .flatten()
                    .any(|c| c.type_ == "Ready" && c.status == "True"),
                image: p.spec.as_ref().and_then(|s| {
                    s.containers
                        .iter()
                        .find(|c| c.name == pods_of.container)
                        .or_else(|| s.containers.first())
                        .and_then(|c| c.image.clone())
                }),
            })
            .collect())
    }

    /// The capacity each data volume of the cluster reports.
    async fn volume_capacities(
        &self,
        cluster: &DatabaseCluster,
    ) -> Result<Vec<Option<String>>, Error> {
        let Some((_, name)) = self.engine_target(cluster) else {
            return Ok(Vec::new());
        };
        let Some(provider) = provider_for(cluster.spec.engine.type_) else {
            return Ok(Vec::new());
        };
        let selector = provider.data_volume_selector(&name);
        let claims = self
            .ctx
            .cluster
            .api::<PersistentVolumeClaim>(&self.namespace)
            .list(&ListParams::default().labels(&selector))
            .await
            .map_err(|source| self.dereference_error(source))?;
        let engine = cluster.spec.engine.type_;
        Ok(claims
            .items
            .iter()
            .filter(|c| plan::claim_of_member(engine, &c.name_any(), cluster.spec.cluster_size))
            .map(|c| {
                c.status
                    .as_ref()
                    .and_then(|s| s.capacity.as_ref())
                    .and_then(|c| c.get("storage"))
                    .map(|q| q.0.clone())
            })
            .collect())
    }

    /// The status of a finished operation.
    fn finished(&self, phase: OpsPhase, reason: &'static str, message: String) -> OpsRequestStatus {
        let mut status = self.op.status.clone().unwrap_or_default();
        status.observed_generation = self.op.metadata.generation;
        status.phase = Some(phase);
        status.queue_position = None;
        status.completion_timestamp = Some(self.now.clone());
        if phase == OpsPhase::Succeeded {
            status.progress = Some("2/2".to_owned());
        }
        status.message = Some(message.clone());
        self.set_condition(
            &mut status,
            "Succeeded",
            phase == OpsPhase::Succeeded,
            reason,
            message,
        );
        status
    }

    /// The status of an operation refused without changing anything.
    fn refused(&self, refusal: Refusal) -> OpsRequestStatus {
        self.finished(OpsPhase::Failed, refusal.reason, refusal.message)
    }

    fn set_condition(
        &self,
        status: &mut OpsRequestStatus,
        type_: &str,
        ok: bool,
        reason: &str,
        message: String,
    ) {
        cluster::status::set_condition(
            &mut status.conditions,
            type_,
            ok,
            reason,
            message,
            self.op.metadata.generation,
            &self.now,
        );
    }

    fn dereference_error(&self, source: kube::Error) -> Error {
        Error::Dereference {
            op: self.id.clone(),
            source,
        }
    }

    /// Writes the status when it changed, tells about phase changes, and
    /// keeps the cluster's queue in step.
    async fn write(
        &self,
        status: OpsRequestStatus,
        cluster: Option<&DatabaseCluster>,
        action: Action,
    ) -> Result<Action, Error> {
        let before = queue::phase_of(self.op);
        let after = status.phase.unwrap_or(OpsPhase::Pending);
        if self.op.status.as_ref() != Some(&status) {
            let body = json!({
                "apiVersion": OpsRequest::api_version(&()),
                "kind": OpsRequest::kind(&()),
                "status": status,
            });
            self.ctx
                .cluster
                .api::<OpsRequest>(&self.namespace)
                .patch_status(
                    &self.name,
                    &PatchParams::apply(FIELD_MANAGER).force(),
                    &Patch::Apply(&body),
                )
                .await
                .map_err(|source| Error::Status {
                    op: self.id.clone(),
                    source,
                })?;
        }
        if before != after && after.is_terminal() {
            let type_ = if after == OpsPhase::Failed {
                EventType::Warning
            } else {
                EventType::Normal
            };
            let note = status.message.clone().unwrap_or_default();
            info!(op = %self.id, phase = %after, "{note}");
            self.event(type_, &after.to_string(), note).await;
        }
        if let Some(cluster) = cluster {
            self.sync_queue(cluster, &status).await?;
        }
        // A finished operation may still have a TTL to wait for.
        if after.is_terminal() {
            let mut finished = self.op.clone();
            finished.status = Some(status);
            let run = Run {
                op: &finished,
                ctx: self.ctx,
                namespace: self.namespace.clone(),
                name: self.name.clone(),
                id: self.id.clone(),
                now: self.now.clone(),
            };
            return run.cleanup().await;
        }
        Ok(action)
    }

    /// Writes the cluster's queue if it is not what it shows.
    async fn sync_queue(
        &self,
        cluster: &DatabaseCluster,
        status: &OpsRequestStatus,
    ) -> Result<(), Error> {
        let mut ops: Vec<OpsRequest> = self
            .ctx
            .ops
            .state()
            .iter()
            .filter(|o| o.name_any() != self.name || o.namespace() != self.op.namespace())
            .map(|o| o.as_ref().clone())
            .collect();
        let mut ours = self.op.clone();
        ours.status = Some(status.clone());
        ops.push(ours);
        let entries = queue::entries(&queue::ordered(&ops, &self.namespace, &cluster.name_any()));
        write_queue(
            &self.ctx.cluster.api::<DatabaseCluster>(&self.namespace),
            cluster,
            &entries,
        )
        .await
        .map_err(|source| Error::Queue {
            cluster: format!("{}/{}", self.namespace, cluster.name_any()),
            source,
        })
    }

    /// Publishes a Kubernetes Event on the OpsRequest, best effort.
    async fn event(&self, type_: EventType, reason: &str, note: String) {
        let event = Event {
            type_,
            reason: reason.to_owned(),
            note: Some(note),
            action: format!("{}", self.op.spec.type_),
            secondary: None,
        };
        crate::events::publish_best_effort(
            &self.ctx.recorder,
            self.op.object_ref(&()),
            vec![event],
        );
    }
}

/// Writes a cluster's queue of operations (`status.opsQueue`) under the
/// OpsRequest controller's own field manager, when it differs from what the
/// cluster shows.
async fn write_queue(
    api: &Api<DatabaseCluster>,
    cluster: &DatabaseCluster,
    entries: &[QueuedOperation],
) -> Result<(), kube::Error> {
    let shown = cluster.status.as_ref().map(|s| s.ops_queue.as_slice());
    if shown.unwrap_or_default() == entries {
        return Ok(());
    }
    // Sent even when empty: an empty list is how a finished queue clears.
    let body = json!({
        "apiVersion": DatabaseCluster::api_version(&()),
        "kind": DatabaseCluster::kind(&()),
        "status": {"opsQueue": entries},
    });
    api.patch_status(
        &cluster.name_any(),
        &PatchParams::apply(OPS_FIELD_MANAGER).force(),
        &Patch::Apply(&body),
    )
    .await
    .map(|_| ())
}

/// A deleted OpsRequest leaves its cluster's queue: a watch of deletions
/// rewrites the queue of the cluster it was in, from a fresh list (the
/// controller reconciles only objects that still exist).
pub async fn forget_deleted(client: Client, namespace: Option<String>) {
    {
        let api = crate::tolerant::api::<OpsRequest>(&client, namespace.as_deref());
        let events =
            crate::tolerant::watch(api, watcher::Config::default(), None).default_backoff();
        futures::pin_mut!(events);
        while let Some(event) = events.next().await {
            let Ok(watcher::Event::Delete(op)) = event else {
                continue;
            };
            let Some(ns) = op.namespace() else {
                continue;
            };
            let cluster_name = op.spec.cluster_ref.name.clone();
            let clusters: Api<DatabaseCluster> = Api::namespaced(client.clone(), &ns);
            let ops: Api<OpsRequest> = Api::namespaced(client.clone(), &ns);
            let (cluster, list) = match (
                clusters.get_opt(&cluster_name).await,
                ops.list(&ListParams::default()).await,
            ) {
                (Ok(Some(cluster)), Ok(list)) => (cluster, list),
                (Ok(None), _) => continue,
                (Err(err), _) | (_, Err(err)) => {
                    debug!(cluster = %cluster_name, "cannot re-read the queue after a deletion: {err}");
                    continue;
                }
            };
            let entries = queue::entries(&queue::ordered(&list.items, &ns, &cluster_name));
            if let Err(err) = write_queue(&clusters, &cluster, &entries).await {
                debug!(cluster = %cluster_name, "cannot rewrite the queue after a deletion: {err}");
            }
        }
    }
}

impl crate::metrics::ErrorReason for Error {
    fn reason(&self) -> &'static str {
        self.stage()
    }
}

/// Retry failed reconciles after a pause.
pub fn error_policy(op: Arc<OpsRequest>, error: &Error, _ctx: Arc<OpsContext>) -> Action {
    warn!(
        op = %format!("{}/{}", op.namespace().unwrap_or_default(), op.name_any()),
        stage = error.stage(),
        "reconcile failed: {error}"
    );
    Action::requeue(Duration::from_secs(2))
}
