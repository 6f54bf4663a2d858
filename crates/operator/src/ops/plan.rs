//! Validate an operation, decide how it is carried out, and judge from the
//! evidence whether it is done. Pure.

use dbaas_api::backup::BackupPhase;
use dbaas_api::cluster::ClusterPhase;
use dbaas_api::cluster::DatabaseClusterSpec;
use dbaas_api::common::{ConfigParameter, condition};
use dbaas_api::ops::{AppliedChange, OpsRequestSpec, OpsType, SpecBefore};
use dbaas_api::{DatabaseCluster, EngineType};
use dbaas_engines::restore::{RestoreObservation, RestorePhase};
use dbaas_engines::{backup, capabilities, provider_for};
use serde_json::{Value, json};

/// Why an operation fails without changing anything.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    pub reason: &'static str,
    pub message: String,
}

impl Refusal {
    pub(crate) fn new(reason: &'static str, message: impl Into<String>) -> Self {
        Self {
            reason,
            message: message.into(),
        }
    }
}

/// An operation that needs running instances can never finish on a stopped
/// (paused) cluster, and would block its queue until its timeout: it is
/// refused at the head of the queue instead. Start and Stop are what a
/// stopped cluster takes.
pub fn stopped_refusal(type_: OpsType, cluster: &DatabaseCluster) -> Option<Refusal> {
    let needs_instances = !matches!(type_, OpsType::Start | OpsType::Stop);
    (needs_instances && cluster.spec.paused).then(|| {
        Refusal::new(
            "ClusterStopped",
            format!(
                "cluster {} is stopped (spec.paused); {type_} needs running instances: start it first (an OpsRequest of type Start); nothing was changed",
                cluster.metadata.name.as_deref().unwrap_or_default()
            ),
        )
    })
}

/// How an operation is carried out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mechanism {
    /// A change of one DatabaseCluster spec field; the cluster controller
    /// rolls it out to the engine resource.
    Spec,
    /// The engine provider's restart patch of its resource.
    EngineRestart,
    /// The engine provider's switchover patch of its resource.
    EngineSwitchover,
    /// A DatabaseBackup, which the backup controller takes with the engine's
    /// own backup resource.
    Backup,
    /// The engine operator's own restore resource (Percona).
    Restore,
}

/// How `type_` is done for `engine`, or why it cannot be: every engine
/// fact comes from its provider's declarations.
pub fn mechanism(type_: OpsType, engine: EngineType) -> Result<Mechanism, Refusal> {
    let Some(provider) = provider_for(engine) else {
        return Err(Refusal::new(
            "Unsupported",
            format!(
                "{engine} clusters have no engine provider in this operator version; nothing was changed"
            ),
        ));
    };
    if !provider.supported_operations().contains(&type_) {
        return Err(Refusal::new(
            "Unsupported",
            capabilities::why_not_offered(provider, type_),
        ));
    }
    match type_ {
        OpsType::Backup if provider.backup_resource().is_some() => Ok(Mechanism::Backup),
        OpsType::Restore if provider.restore_resource().is_some() => Ok(Mechanism::Restore),
        // A restart is judged on the instance pods, so both are needed.
        OpsType::Restart
            if provider.restart_patch("").is_some() && provider.instance_pods("").is_some() =>
        {
            Ok(Mechanism::EngineRestart)
        }
        OpsType::Switchover if provider.switches_over() => Ok(Mechanism::EngineSwitchover),
        OpsType::Start
        | OpsType::Stop
        | OpsType::HorizontalScaling
        | OpsType::VerticalScaling
        | OpsType::VolumeExpansion
        | OpsType::Reconfiguring
        | OpsType::Upgrade
        | OpsType::Expose => Ok(Mechanism::Spec),
        // Declared as supported, but the provider lacks what carries it out.
        _ => Err(Refusal::new(
            "Unsupported",
            format!(
                "{type_} is declared for {engine} clusters but its provider cannot carry it out in this operator version; nothing was changed"
            ),
        )),
    }
}

/// Whether a running operation can be cancelled, and if not why.
pub fn cancellable(type_: OpsType) -> Result<(), &'static str> {
    match type_ {
        OpsType::VolumeExpansion => {
            Err("a volume expansion cannot be undone: storage never shrinks")
        }
        OpsType::Restart => Err("a restart that has begun cannot be undone"),
        OpsType::Switchover => Err("a switchover that has begun cannot be undone"),
        OpsType::Backup => {
            Err("a backup that has begun runs to its end: delete its DatabaseBackup to discard it")
        }
        OpsType::Restore => Err(
            "a restore that has begun runs to its end: the engine operator has already stopped the cluster to overwrite its data",
        ),
        // Writing the old version back would be a downgrade, which the
        // engines do not support once a rollout has begun.
        OpsType::Upgrade => {
            Err("an upgrade that has begun cannot be undone: it would be a downgrade")
        }
        _ => Ok(()),
    }
}

/// The DatabaseBackup a Backup operation creates and the storage it
/// writes to, or why it cannot: checked before anything is created.
pub fn backup_request(
    op_name: &str,
    spec: &OpsRequestSpec,
    cluster: &DatabaseCluster,
) -> Result<(String, String), Refusal> {
    let asked = spec.backup.as_ref();
    let name = asked
        .and_then(|b| b.backup_name.clone())
        .unwrap_or_else(|| op_name.to_owned());
    let storage = asked
        .and_then(|b| b.storage_name.clone())
        .or_else(|| backup::default_storage(cluster))
        .ok_or_else(|| {
            Refusal::new(
                "NoBackupStorage",
                format!(
                    "backup.storageName is not set and cluster {} has no default storage (spec.backup.storageName, or a single storage in its backup spec); nothing was changed",
                    cluster.metadata.name.as_deref().unwrap_or_default()
                ),
            )
        })?;
    if !backup::referenced_storages(&cluster.spec).contains(&storage) {
        return Err(Refusal::new(
            "BackupStorageNotDeclared",
            format!(
                "cluster {} does not use BackupStorage {storage}: add it to the cluster's spec.backup (storageName or a schedule) first; nothing was changed",
                cluster.metadata.name.as_deref().unwrap_or_default()
            ),
        ));
    }
    Ok((name, storage))
}

/// A change of one DatabaseCluster spec field.
#[derive(Clone, Debug)]
pub struct SpecChange {
    /// JSON merge patch (RFC 7386) of the spec that sets the field.
    pub patch: Value,
    /// The field as it was.
    pub previous: SpecBefore,
    /// The cluster as it will be, for the cluster controller's own checks.
    pub candidate: DatabaseCluster,
}

/// The spec change of a spec-changing operation, validated against the
/// rules the cluster's own update would meet.
pub fn spec_change(
    spec: &OpsRequestSpec,
    cluster: &DatabaseCluster,
) -> Result<SpecChange, Refusal> {
    let invalid = |message: String| Refusal::new("InvalidParameters", message);
    let missing = |what: &str| invalid(format!("type {} needs {what}", spec.type_));
    let current = &cluster.spec;
    let mut candidate = cluster.clone();
    let mut previous = SpecBefore::default();
    match spec.type_ {
        OpsType::Start | OpsType::Stop => {
            let paused = spec.type_ == OpsType::Stop;
            previous.paused = Some(current.paused);
            candidate.spec.paused = paused;
        }
        OpsType::HorizontalScaling => {
            let replicas = spec
                .horizontal_scaling
                .as_ref()
                .ok_or_else(|| missing("horizontalScaling"))?
                .replicas;
            if let Some(why) = scaling_refusal(current.engine.type_, current.cluster_size, replicas)
            {
                return Err(invalid(why));
            }
            previous.cluster_size = Some(current.cluster_size);
            candidate.spec.cluster_size = replicas;
        }
        OpsType::VerticalScaling => {
            let resources = &spec
                .vertical_scaling
                .as_ref()
                .ok_or_else(|| missing("verticalScaling"))?
                .resources;
            if resources.limits.is_none() && resources.requests.is_none() {
                return Err(invalid(
                    "verticalScaling.resources names neither requests nor limits".to_owned(),
                ));
            }
            previous.resources = current.resources.clone();
            candidate.spec.resources = Some(resources.clone());
        }
        OpsType::VolumeExpansion => {
            let wanted = &spec
                .volume_expansion
                .as_ref()
                .ok_or_else(|| missing("volumeExpansion"))?
                .storage;
            let (Some(new), Some(old)) = (
                quantity_value(&wanted.0),
                quantity_value(&current.storage.size.0),
            ) else {
                return Err(invalid(format!(
                    "volumeExpansion.storage {:?} is not a quantity such as 20Gi",
                    wanted.0
                )));
            };
            if new < old {
                return Err(invalid(format!(
                    "storage never shrinks: the volumes have {} and volumeExpansion.storage asks for {}",
                    current.storage.size.0, wanted.0
                )));
            }
            previous.storage_size = Some(current.storage.size.clone());
            candidate.spec.storage.size = wanted.clone();
        }
        OpsType::Reconfiguring => {
            let changes = &spec
                .reconfiguring
                .as_ref()
                .ok_or_else(|| missing("reconfiguring"))?
                .config;
            let merged = merge_config(&current.config, changes);
            previous.config = current.config.clone();
            candidate.spec.config = merged;
        }
        OpsType::Upgrade => {
            let version = &spec
                .upgrade
                .as_ref()
                .ok_or_else(|| missing("upgrade"))?
                .version;
            previous.engine_version = current.engine.version.clone().or_else(|| {
                // A cluster that named no version runs what its status says.
                cluster
                    .status
                    .as_ref()
                    .and_then(|s| s.engine_version.clone())
            });
            candidate.spec.engine.version = Some(version.clone());
        }
        OpsType::Expose => {
            let expose = spec.expose.as_ref().ok_or_else(|| missing("expose"))?;
            previous.expose = current.expose.clone();
            candidate.spec.expose = Some(expose.clone());
        }
        other => {
            return Err(invalid(format!("{other} does not change the cluster spec")));
        }
    }
    let patch = spec_patch(&cluster.spec, &candidate.spec)?;
    Ok(SpecChange {
        patch,
        previous,
        candidate,
    })
}

/// The merge patch of the spec that puts back what a spec change replaced;
/// `None` when it cannot be undone.
pub fn revert(type_: OpsType, previous: &SpecBefore, cluster: &DatabaseCluster) -> Option<Value> {
    let mut spec = cluster.spec.clone();
    match type_ {
        OpsType::Start | OpsType::Stop => spec.paused = previous.paused?,
        OpsType::HorizontalScaling => spec.cluster_size = previous.cluster_size?,
        OpsType::VerticalScaling => spec.resources = previous.resources.clone(),
        OpsType::Reconfiguring => spec.config = previous.config.clone(),
        OpsType::Upgrade => spec.engine.version = previous.engine_version.clone(),
        OpsType::Expose => spec.expose = previous.expose.clone(),
        _ => return None,
    }
    spec_patch(&cluster.spec, &spec).ok()
}

/// The merge patch that turns spec `from` into `to`: only what differs, with
/// `null` for what `to` no longer has (a merge patch would otherwise keep
/// keys of a replaced map, such as an old memory limit).
pub fn spec_patch(from: &DatabaseClusterSpec, to: &DatabaseClusterSpec) -> Result<Value, Refusal> {
    Ok(merge_diff(&to_value(from)?, &to_value(to)?).unwrap_or_else(|| json!({})))
}

/// The merge patch from `from` to `to`; `None` when they are equal.
pub fn merge_diff(from: &Value, to: &Value) -> Option<Value> {
    match (from, to) {
        (Value::Object(old), Value::Object(new)) => {
            let mut patch = serde_json::Map::new();
            for (key, old_value) in old {
                match new.get(key) {
                    None => {
                        patch.insert(key.clone(), Value::Null);
                    }
                    Some(new_value) => {
                        if let Some(diff) = merge_diff(old_value, new_value) {
                            patch.insert(key.clone(), diff);
                        }
                    }
                }
            }
            for (key, new_value) in new {
                if !old.contains_key(key) {
                    patch.insert(key.clone(), new_value.clone());
                }
            }
            (!patch.is_empty()).then_some(Value::Object(patch))
        }
        (old, new) if old == new => None,
        (_, new) => Some(new.clone()),
    }
}

fn to_value<T: serde::Serialize>(value: &T) -> Result<Value, Refusal> {
    serde_json::to_value(value)
        .map_err(|err| Refusal::new("InvalidParameters", format!("cannot be written: {err}")))
}

/// The rules of the DatabaseCluster's own `clusterSize` validation, so an
/// operation that breaks them fails before it touches anything.
pub fn scaling_refusal(engine: EngineType, from: i32, to: i32) -> Option<String> {
    provider_for(engine).and_then(|p| p.scaling_refusal(from, to))
}

/// The cluster's config with `changes` set: same names replaced in place,
/// new names appended.
pub fn merge_config(
    current: &[ConfigParameter],
    changes: &[ConfigParameter],
) -> Vec<ConfigParameter> {
    let mut merged = current.to_vec();
    for change in changes {
        match merged.iter_mut().find(|p| p.name == change.name) {
            Some(existing) => *existing = change.clone(),
            None => merged.push(change.clone()),
        }
    }
    merged
}

/// The instance to promote: the one asked for, or the first other instance.
/// `Ok(None)`: it already is the primary.
pub fn switchover_target(
    asked: Option<&str>,
    current_primary: Option<&str>,
    instances: &[String],
) -> Result<Option<String>, Refusal> {
    let Some(current_primary) = current_primary else {
        return Err(Refusal::new(
            "EngineNotReady",
            "the engine operator has not reported a current primary yet; nothing was changed",
        ));
    };
    match asked {
        Some(asked) if asked == current_primary => Ok(None),
        Some(asked) if instances.iter().any(|i| i == asked) => Ok(Some(asked.to_owned())),
        Some(asked) => Err(Refusal::new(
            "InvalidParameters",
            format!(
                "switchover.instanceName {asked:?} is not an instance of the cluster (instances: {})",
                instances.join(", ")
            ),
        )),
        None => {
            let mut others: Vec<&String> =
                instances.iter().filter(|i| *i != current_primary).collect();
            others.sort();
            match others.first() {
                Some(first) => Ok(Some((*first).clone())),
                None => Err(Refusal::new(
                    "InvalidParameters",
                    "the cluster has no other instance to promote; scale it to 2 or more instances first",
                )),
            }
        }
    }
}

/// What the operator read to judge whether an operation is done.
#[derive(Clone, Debug, Default)]
pub struct Evidence {
    /// The engine's current primary (CloudNativePG `status.currentPrimary`).
    pub current_primary: Option<String>,
    /// The cluster's instance pods.
    pub pods: Vec<PodEvidence>,
    /// Capacity each of the cluster's volume claims reports.
    pub volume_capacities: Vec<Option<String>>,
    /// The image the engine resource asks for (CloudNativePG
    /// `spec.imageName`), when the engine's pods are judged by image.
    pub asked_image: Option<String>,
    /// The image the engine reports running (CloudNativePG `status.image`).
    pub running_image: Option<String>,
    /// The phase and message of the DatabaseBackup a Backup operation made.
    pub backup: Option<(BackupPhase, Option<String>)>,
    /// What the engine restore resource of a Restore operation says.
    pub restore: Option<RestoreObservation>,
}

/// One instance pod.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PodEvidence {
    /// Its restart annotation.
    pub restarted_at: Option<String>,
    /// Whether its Ready condition is True.
    pub ready: bool,
    /// The image of its database container.
    pub image: Option<String>,
}

/// Whether a running operation is done.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Progress {
    Done(String),
    Waiting(String),
    /// The evidence says it cannot succeed any more.
    Failed(String),
}

/// Judges a running operation on evidence that fits it, never on a Ready
/// flag alone: the engine's report must be about the change (the cluster's
/// status has observed the generation our patch produced, and its Ready is
/// only set once the engine wrote status after the matching apply), and the
/// change itself must show (sizes, versions, capacities, pods, primary).
pub fn evaluate(
    spec: &OpsRequestSpec,
    applied: &AppliedChange,
    cluster: &DatabaseCluster,
    evidence: &Evidence,
) -> Progress {
    let status = cluster.status.clone().unwrap_or_default();
    let waiting = |why: String| Progress::Waiting(why);
    match spec.type_ {
        OpsType::Backup => {
            let Some(name) = &applied.backup_name else {
                return waiting("the backup is not requested yet".to_owned());
            };
            match &evidence.backup {
                Some((BackupPhase::Succeeded, _)) => {
                    Progress::Done(format!("DatabaseBackup {name} succeeded"))
                }
                Some((BackupPhase::Failed, message)) => Progress::Failed(format!(
                    "DatabaseBackup {name} failed: {}",
                    message.as_deref().unwrap_or("no reason given")
                )),
                Some((phase, _)) => waiting(format!("DatabaseBackup {name} is {phase:?}")),
                None => waiting(format!("DatabaseBackup {name} has no status yet")),
            }
        }
        OpsType::Restore => {
            let Some(name) = &applied.engine_restore else {
                return waiting("the restore is not requested yet".to_owned());
            };
            match &evidence.restore {
                Some(seen) => match seen.phase {
                    RestorePhase::Succeeded => Progress::Done(format!("{name} succeeded")),
                    RestorePhase::Failed => Progress::Failed(format!(
                        "{name} failed: {}",
                        seen.message.as_deref().unwrap_or("no reason given")
                    )),
                    phase => waiting(match &seen.message {
                        Some(message) => format!("{name} is {phase:?}: {message}"),
                        None => format!("{name} is {phase:?}"),
                    }),
                },
                None => waiting(format!("{name} does not exist (yet)")),
            }
        }
        OpsType::Restart => {
            let Some(value) = &applied.restarted_at else {
                return waiting("the restart is not requested yet".to_owned());
            };
            let size = usize::try_from(cluster.spec.cluster_size).unwrap_or(0);
            let restarted = evidence
                .pods
                .iter()
                .filter(|p| p.restarted_at.as_deref() == Some(value.as_str()))
                .count();
            let ready = evidence
                .pods
                .iter()
                .filter(|p| p.restarted_at.as_deref() == Some(value.as_str()) && p.ready)
                .count();
            if restarted < evidence.pods.len() || restarted < size {
                waiting(format!("{restarted} of {size} instances restarted"))
            } else if ready < restarted {
                waiting(format!("{ready} of {restarted} restarted instances ready"))
            } else {
                Progress::Done(format!("all {restarted} instances restarted and ready"))
            }
        }
        OpsType::Switchover => {
            let Some(target) = &applied.target_primary else {
                return waiting("the switchover is not requested yet".to_owned());
            };
            match evidence.current_primary.as_deref() {
                Some(primary) if primary == target => {
                    Progress::Done(format!("{target} is the primary"))
                }
                primary => waiting(format!(
                    "waiting for {target} to become the primary (now {})",
                    primary.unwrap_or("unknown")
                )),
            }
        }
        _ => {
            let Some(generation) = applied.cluster_generation else {
                return waiting("the spec change is not applied yet".to_owned());
            };
            if status.observed_generation.unwrap_or(0) < generation {
                return waiting(format!(
                    "the cluster has not observed generation {generation} yet"
                ));
            }
            // Ready of this generation: the cluster controller sets it only
            // once the engine reported after the matching apply.
            let ready_now = status.phase == Some(ClusterPhase::Ready)
                && status.conditions.iter().any(|c| {
                    c.type_ == condition::READY
                        && c.status == "True"
                        && c.observed_generation.unwrap_or(0) >= generation
                });
            let phase = status
                .phase
                .map(|p| p.to_string())
                .unwrap_or_else(|| "unknown".to_owned());
            match spec.type_ {
                OpsType::Stop => {
                    if status.phase == Some(ClusterPhase::Paused) {
                        Progress::Done("the cluster is stopped".to_owned())
                    } else {
                        waiting(format!("the cluster is {phase}, not Paused yet"))
                    }
                }
                _ if !ready_now => waiting(format!("the cluster is {phase}, not Ready yet")),
                OpsType::HorizontalScaling => {
                    let replicas = cluster.spec.cluster_size;
                    if status.size == replicas && status.ready == replicas {
                        Progress::Done(format!("{replicas} instances ready"))
                    } else {
                        waiting(format!("{} of {replicas} instances ready", status.ready))
                    }
                }
                OpsType::Upgrade => {
                    let target = spec
                        .upgrade
                        .as_ref()
                        .map(|u| u.version.as_str())
                        .unwrap_or_default();
                    // The target as written, or the engine build it named.
                    let at_target = status.engine_version.as_deref() == Some(target)
                        || status.requested_version.as_deref() == Some(target);
                    if !at_target {
                        return waiting(format!(
                            "the cluster is at version {}",
                            status.engine_version.as_deref().unwrap_or("unknown")
                        ));
                    }
                    let Some(image) = &evidence.asked_image else {
                        return Progress::Done(format!("running version {target}"));
                    };
                    // The engine reports the image, and every instance pod
                    // runs it and is ready again.
                    let size = usize::try_from(cluster.spec.cluster_size).unwrap_or(0);
                    let on_image = evidence
                        .pods
                        .iter()
                        .filter(|p| p.image.as_ref() == Some(image) && p.ready)
                        .count();
                    if evidence.running_image.as_ref() != Some(image) {
                        waiting(format!(
                            "the engine reports image {}, not {image} yet",
                            evidence.running_image.as_deref().unwrap_or("none")
                        ))
                    } else if on_image < size || on_image < evidence.pods.len() {
                        waiting(format!(
                            "{on_image} of {size} instances run {image} and are ready"
                        ))
                    } else {
                        Progress::Done(format!("all {on_image} instances run {image}"))
                    }
                }
                OpsType::VolumeExpansion => {
                    let Some(target) = spec
                        .volume_expansion
                        .as_ref()
                        .and_then(|v| quantity_value(&v.storage.0))
                    else {
                        return waiting("volumeExpansion.storage is unreadable".to_owned());
                    };
                    let size = usize::try_from(cluster.spec.cluster_size).unwrap_or(0);
                    let grown = evidence
                        .volume_capacities
                        .iter()
                        .filter(|c| {
                            c.as_deref()
                                .and_then(quantity_value)
                                .is_some_and(|c| c >= target)
                        })
                        .count();
                    if grown >= size && grown == evidence.volume_capacities.len() {
                        Progress::Done(format!("{grown} volumes report the new capacity"))
                    } else {
                        waiting(format!(
                            "{grown} of {} volumes report the new capacity",
                            size.max(evidence.volume_capacities.len())
                        ))
                    }
                }
                _ => Progress::Done(format!("the cluster is Ready at generation {generation}")),
            }
        }
    }
}

/// Whether a data volume claim is one of a current member, as the
/// engine's provider judges it.
pub fn claim_of_member(engine: EngineType, claim_name: &str, cluster_size: i32) -> bool {
    provider_for(engine).is_none_or(|p| p.volume_claim_of_member(claim_name, cluster_size))
}

/// A Kubernetes quantity as a number ("10Gi", "500M", "1.5", "2e3").
pub fn quantity_value(quantity: &str) -> Option<f64> {
    const SUFFIXES: [(&str, f64); 13] = [
        ("Ki", 1024.0),
        ("Mi", 1_048_576.0),
        ("Gi", 1_073_741_824.0),
        ("Ti", 1_099_511_627_776.0),
        ("Pi", 1_125_899_906_842_624.0),
        ("Ei", 1_152_921_504_606_846_976.0),
        ("n", 1e-9),
        ("u", 1e-6),
        ("m", 1e-3),
        ("k", 1e3),
        ("M", 1e6),
        ("G", 1e9),
        ("T", 1e12),
    ];
    let quantity = quantity.trim();
    let (number, factor) = SUFFIXES
        .iter()
        .find_map(|(suffix, factor)| quantity.strip_suffix(suffix).map(|n| (n, *factor)))
        .or_else(|| quantity.strip_suffix('P').map(|n| (n, 1e15)))
        .or_else(|| quantity.strip_suffix('E').map(|n| (n, 1e18)))
        .unwrap_or((quantity, 1.0));
    let value: f64 = number.parse().ok()?;
    (value.is_finite() && value >= 0.0).then_some(value * factor)
}

#[cfg(test)]
mod tests {
    use dbaas_api::ops::OpsRequestSpec;

    use super::*;

    fn cluster(yaml_spec: &str) -> DatabaseCluster {
        serde_saphyr::from_str(&format!(
            "apiVersion: dbaas.io/v1\nkind: DatabaseCluster\nmetadata: {{name: pg, namespace: ns, generation: 4}}\nspec: {yaml_spec}"
        ))
        .unwrap()
    }

    const PG: &str = "{engine: {type: postgresql, version: '16.0'}, clusterSize: 3, storage: {size: 10Gi}, resources: {requests: {cpu: '1', memory: 2Gi}, limits: {memory: 4Gi}}, config: [{name: max_connections, value: '200'}]}";

    fn op(yaml: &str) -> OpsRequestSpec {
        serde_saphyr::from_str(&format!("{{clusterRef: {{name: pg}}, {yaml}}}")).unwrap()
    }

    #[test]
    fn a_stopped_cluster_takes_only_start_and_stop() {
        let mut stopped = cluster(PG);
        stopped.spec.paused = true;
        for type_ in OpsType::ALL {
            let refusal = stopped_refusal(type_, &stopped);
            match type_ {
                OpsType::Start | OpsType::Stop => assert_eq!(refusal, None),
                _ => {
                    let refusal = refusal.unwrap();
                    assert_eq!(refusal.reason, "ClusterStopped");
                    assert!(
                        refusal.message.contains("start it first"),
                        "{}",
                        refusal.message
                    );
                }
            }
        }
        stopped.spec.paused = false;
        assert!(
            OpsType::ALL
                .iter()
                .all(|t| stopped_refusal(*t, &stopped).is_none())
        );
    }

    #[test]
    fn every_type_has_a_mechanism_or_a_reason() {
        use OpsType::*;
        for engine in EngineType::ALL {
            for type_ in OpsType::ALL {
                match mechanism(type_, engine) {
                    Ok(_) => {}
                    Err(refusal) => {
                        assert_eq!(refusal.reason, "Unsupported");
                        assert!(refusal.message.len() > 20, "{type_}: {}", refusal.message);
                    }
                }
            }
        }
        assert_eq!(
            mechanism(Restart, EngineType::Postgresql),
            Ok(Mechanism::EngineRestart)
        );
        assert_eq!(
            mechanism(Switchover, EngineType::Postgresql),
            Ok(Mechanism::EngineSwitchover)
        );
        assert_eq!(
            mechanism(Switchover, EngineType::Mariadb),
            Ok(Mechanism::EngineSwitchover)
        );
        assert!(mechanism(Switchover, EngineType::Mysql).is_err());
        for engine in EngineType::ALL {
            assert_eq!(mechanism(Backup, engine), Ok(Mechanism::Backup), "{engine}");
        }
        assert!(cancellable(Backup).is_err());
        assert_eq!(
            mechanism(HorizontalScaling, EngineType::Mongodb),
            Ok(Mechanism::Spec)
        );
    }

    #[test]
    fn a_backup_needs_a_storage_the_cluster_declares() {
        let with_backup = |backup: &str| {
            cluster(&format!(
                "{{engine: {{type: postgresql}}, storage: {{size: 1Gi}}, backup: {backup}}}"
            ))
        };
        let backup_op = |params: &str| op(&format!("type: Backup, backup: {params}"));
        // Named explicitly, or the cluster's default.
        let declared = with_backup("{enabled: true, schedule: '0 2 * * *', storageName: s3}");
        assert_eq!(
            backup_request(
                "op-1",
                &backup_op("{backupName: b1, storageName: s3}"),
                &declared
            ),
            Ok(("b1".to_owned(), "s3".to_owned()))
        );
        assert_eq!(
            backup_request("op-1", &backup_op("{}"), &declared),
            Ok(("op-1".to_owned(), "s3".to_owned()))
        );
        // A storage the cluster does not use.
        let refused =
            backup_request("op-1", &backup_op("{storageName: other}"), &declared).unwrap_err();
        assert_eq!(refused.reason, "BackupStorageNotDeclared");
        assert!(
            refused.message.contains("BackupStorage other"),
            "{}",
            refused.message
        );
        // No storage at all: two schedules on two storages and none named.
        let ambiguous = with_backup(
            "{enabled: true, schedules: [{name: a, schedule: '0 1 * * *', storageName: x}, {name: b, schedule: '0 2 * * *', storageName: y}]}",
        );
        assert_eq!(
            backup_request("op-1", &backup_op("{}"), &ambiguous)
                .unwrap_err()
                .reason,
            "NoBackupStorage"
        );
        let none = cluster("{engine: {type: postgresql}, storage: {size: 1Gi}}");
        assert_eq!(
            backup_request("op-1", &backup_op("{storageName: s3}"), &none)
                .unwrap_err()
                .reason,
            "BackupStorageNotDeclared"
        );
    }

    #[test]
    fn a_backup_operation_ends_with_its_backup() {
        let spec = op("type: Backup, backup: {}");
        let c = cluster(PG);
        let applied = AppliedChange {
            backup_name: Some("b1".into()),
            ..AppliedChange::default()
        };
        let judge = |backup: Option<(BackupPhase, Option<String>)>| {
            evaluate(
                &spec,
                &applied,
                &c,
                &Evidence {
                    backup,
                    ..Evidence::default()
                },
            )
        };
        assert!(matches!(judge(None), Progress::Waiting(_)));
        assert!(
            matches!(judge(Some((BackupPhase::Running, None))), Progress::Waiting(m) if m.contains("Running"))
        );
        assert!(
            matches!(judge(Some((BackupPhase::Succeeded, None))), Progress::Done(m) if m.contains("b1"))
        );
        assert!(matches!(
            judge(Some((BackupPhase::Failed, Some("bucket not found".into())))),
            Progress::Failed(m) if m.contains("bucket not found")
        ));
        // Not requested yet: never done.
        assert!(matches!(
            evaluate(
                &spec,
                &AppliedChange::default(),
                &c,
                &Evidence {
                    backup: Some((BackupPhase::Succeeded, None)),
                    ..Evidence::default()
                }
            ),
            Progress::Waiting(_)
        ));
    }

    #[test]
    fn restores_in_place_use_the_engines_restore_resource_or_are_refused() {
        use dbaas_engines::restore::{RestoreObservation, RestorePhase};
        let refused = mechanism(OpsType::Restore, EngineType::Postgresql).unwrap_err();
        assert_eq!(refused.reason, "Unsupported");
        assert!(
            refused.message.contains("spec.dataSource"),
            "{}",
            refused.message
        );
        for engine in [EngineType::Mysql, EngineType::Mongodb] {
            assert_eq!(mechanism(OpsType::Restore, engine), Ok(Mechanism::Restore));
        }
        assert!(cancellable(OpsType::Restore).is_err());

        let spec = op("type: Restore, restore: {backupName: nightly}");
        let c = cluster(PG);
        let applied = AppliedChange {
            engine_restore: Some("PerconaXtraDBClusterRestore/r1".into()),
            ..AppliedChange::default()
        };
        let judge = |phase, message: Option<&str>| {
            evaluate(
                &spec,
                &applied,
                &c,
                &Evidence {
                    restore: Some(RestoreObservation {
                        phase,
                        completed_at: None,
                        message: message.map(str::to_owned),
                    }),
                    ..Evidence::default()
                },
            )
        };
        assert!(
            matches!(judge(RestorePhase::Running, Some("Percona: Restoring")), Progress::Waiting(m) if m.contains("Restoring"))
        );
        assert!(matches!(
            judge(RestorePhase::Pending, None),
            Progress::Waiting(_)
        ));
        assert!(
            matches!(judge(RestorePhase::Succeeded, None), Progress::Done(m) if m.contains("r1"))
        );
        assert!(
            matches!(judge(RestorePhase::Failed, Some("backup not found")), Progress::Failed(m) if m.contains("backup not found"))
        );
        // Not created yet: never done, whatever the evidence.
        assert!(matches!(
            evaluate(&spec, &AppliedChange::default(), &c, &Evidence::default()),
            Progress::Waiting(_)
        ));
    }

    #[test]
    fn scaling_follows_the_clusters_own_rules() {
        let c = cluster(PG);
        let change = spec_change(
            &op("type: HorizontalScaling, horizontalScaling: {replicas: 5}"),
            &c,
        )
        .unwrap();
        assert_eq!(change.patch, json!({"clusterSize": 5}));
        assert_eq!(change.previous.cluster_size, Some(3));
        let mysql = cluster(
            &PG.replace("postgresql", "mysql")
                .replace("'16.0'", "'8.0.36'"),
        );
        let even = spec_change(
            &op("type: HorizontalScaling, horizontalScaling: {replicas: 4}"),
            &mysql,
        )
        .unwrap_err();
        assert_eq!(even.reason, "InvalidParameters");
        let below = spec_change(
            &op("type: HorizontalScaling, horizontalScaling: {replicas: 1}"),
            &mysql,
        )
        .unwrap_err();
        assert!(below.message.contains("below 3"), "{}", below.message);
    }

    #[test]
    fn storage_never_shrinks() {
        let c = cluster(PG);
        let shrink = spec_change(
            &op("type: VolumeExpansion, volumeExpansion: {storage: 5Gi}"),
            &c,
        )
        .unwrap_err();
        assert!(
            shrink.message.contains("never shrinks"),
            "{}",
            shrink.message
        );
        let grow = spec_change(
            &op("type: VolumeExpansion, volumeExpansion: {storage: 20Gi}"),
            &c,
        )
        .unwrap();
        assert_eq!(grow.patch, json!({"storage": {"size": "20Gi"}}));
        assert!(revert(OpsType::VolumeExpansion, &grow.previous, &c).is_none());
        assert!(quantity_value("1Ti") > quantity_value("1000Gi"));
        assert_eq!(quantity_value("1.5Gi"), Some(1.5 * 1_073_741_824.0));
        assert_eq!(quantity_value("10G"), Some(1e10));
        assert_eq!(quantity_value("ten"), None);
    }

    #[test]
    fn percona_claims_left_by_a_scale_down_do_not_count() {
        // A 5-member cluster once had 7: Percona never resizes members 5, 6.
        for (engine, prefix) in [
            (EngineType::Mysql, "datadir-db-pxc-"),
            (EngineType::Mongodb, "mongod-data-db-rs0-"),
        ] {
            let counted: Vec<usize> = (0..7)
                .filter(|i| claim_of_member(engine, &format!("{prefix}{i}"), 5))
                .collect();
            assert_eq!(counted, [0, 1, 2, 3, 4], "{engine}");
            // A name without an ordinal is not ignored.
            assert!(claim_of_member(engine, "datadir", 5));
        }
        // CloudNativePG numbers instances by serial and deletes the claims
        // of removed ones: every claim counts.
        assert!(claim_of_member(EngineType::Postgresql, "pg-7", 3));

        // Only the members' claims reach the judgement: done once they grew.
        let spec = op("type: VolumeExpansion, volumeExpansion: {storage: 20Gi}");
        let c = with_status(
            cluster(PG),
            "{observedGeneration: 5, phase: Ready, ready: 3, size: 3, conditions: [{type: Ready, status: 'True', reason: EngineHealthy, message: ok, observedGeneration: 5, lastTransitionTime: '2026-01-01T00:00:00Z'}]}",
        );
        let applied = AppliedChange {
            cluster_generation: Some(5),
            ..AppliedChange::default()
        };
        let claims = |grown: usize| -> Vec<Option<String>> {
            (0..5)
                .filter(|i| claim_of_member(EngineType::Mysql, &format!("datadir-db-pxc-{i}"), 3))
                .map(|i| Some(if i < grown { "20Gi" } else { "10Gi" }.to_owned()))
                .collect()
        };
        let judge = |volume_capacities| {
            evaluate(
                &spec,
                &applied,
                &c,
                &Evidence {
                    volume_capacities,
                    ..Evidence::default()
                },
            )
        };
        assert!(matches!(judge(claims(2)), Progress::Waiting(_)));
        assert!(matches!(judge(claims(3)), Progress::Done(m) if m.contains("3 volumes")));
    }

    #[test]
    fn vertical_scaling_replaces_the_resources_and_cancel_puts_them_back() {
        let c = cluster(PG);
        let change = spec_change(
            &op("type: VerticalScaling, verticalScaling: {resources: {requests: {cpu: '2'}}}"),
            &c,
        )
        .unwrap();
        // The old memory request and limit do not survive the merge patch.
        assert_eq!(
            change.patch,
            json!({"resources": {"requests": {"cpu": "2", "memory": null}, "limits": null}})
        );
        let back = revert(
            OpsType::VerticalScaling,
            &change.previous,
            &change.candidate,
        )
        .unwrap();
        assert_eq!(
            back,
            json!({"resources": {"requests": {"cpu": "1", "memory": "2Gi"}, "limits": {"memory": "4Gi"}}})
        );
    }

    #[test]
    fn reconfiguring_merges_by_name() {
        let c = cluster(PG);
        let change = spec_change(
            &op("type: Reconfiguring, reconfiguring: {config: [{name: max_connections, value: '300'}, {name: work_mem, value: 64MB}]}"),
            &c,
        )
        .unwrap();
        assert_eq!(
            change.patch,
            json!({"config": [{"name": "max_connections", "value": "300"}, {"name": "work_mem", "value": "64MB"}]})
        );
        let back = revert(OpsType::Reconfiguring, &change.previous, &change.candidate).unwrap();
        assert_eq!(
            back,
            json!({"config": [{"name": "max_connections", "value": "200"}]})
        );
    }

    #[test]
    fn stop_start_upgrade_and_expose_revert_to_unset() {
        let c = cluster(PG);
        let stop = spec_change(&op("type: Stop"), &c).unwrap();
        assert_eq!(stop.patch, json!({"paused": true}));
        assert_eq!(
            revert(OpsType::Stop, &stop.previous, &stop.candidate),
            Some(json!({"paused": null}))
        );
        let expose = spec_change(&op("type: Expose, expose: {type: external}"), &c).unwrap();
        assert_eq!(expose.patch, json!({"expose": {"type": "external"}}));
        assert_eq!(
            revert(OpsType::Expose, &expose.previous, &expose.candidate),
            Some(json!({"expose": null}))
        );
        let upgrade = spec_change(&op("type: Upgrade, upgrade: {version: '16.4'}"), &c).unwrap();
        assert_eq!(upgrade.patch, json!({"engine": {"version": "16.4"}}));
        assert_eq!(upgrade.previous.engine_version.as_deref(), Some("16.0"));
    }

    #[test]
    fn switchover_targets() {
        let names = ["pg-1".to_owned(), "pg-2".to_owned(), "pg-3".to_owned()];
        assert_eq!(
            switchover_target(None, Some("pg-1"), &names),
            Ok(Some("pg-2".to_owned()))
        );
        assert_eq!(
            switchover_target(Some("pg-3"), Some("pg-1"), &names),
            Ok(Some("pg-3".to_owned()))
        );
        assert_eq!(
            switchover_target(Some("pg-1"), Some("pg-1"), &names),
            Ok(None)
        );
        assert_eq!(
            switchover_target(Some("pg-9"), Some("pg-1"), &names)
                .unwrap_err()
                .reason,
            "InvalidParameters"
        );
        assert!(switchover_target(None, Some("pg-1"), &names[..1]).is_err());
        assert_eq!(
            switchover_target(None, None, &names).unwrap_err().reason,
            "EngineNotReady"
        );
    }

    fn with_status(mut c: DatabaseCluster, status: &str) -> DatabaseCluster {
        c.status = Some(serde_saphyr::from_str(status).unwrap());
        c
    }

    #[test]
    fn scaling_is_done_only_on_fresh_evidence() {
        let spec = op("type: HorizontalScaling, horizontalScaling: {replicas: 5}");
        let mut c = cluster(PG);
        c.spec.cluster_size = 5;
        let applied = AppliedChange {
            cluster_generation: Some(5),
            ..AppliedChange::default()
        };
        let ready = "{observedGeneration: GEN, phase: Ready, ready: READY, size: 5, conditions: [{type: Ready, status: 'True', reason: EngineHealthy, message: ok, observedGeneration: GEN, lastTransitionTime: '2026-01-01T00:00:00Z'}]}";
        let evidence = Evidence::default();
        // A Ready of the generation before the change proves nothing.
        let stale = with_status(c.clone(), &ready.replace("GEN", "4").replace("READY", "5"));
        assert!(matches!(
            evaluate(&spec, &applied, &stale, &evidence),
            Progress::Waiting(_)
        ));
        // Ready of the new generation but not all instances: not yet.
        let partial = with_status(c.clone(), &ready.replace("GEN", "5").replace("READY", "3"));
        assert!(matches!(
            evaluate(&spec, &applied, &partial, &evidence),
            Progress::Waiting(_)
        ));
        let done = with_status(c.clone(), &ready.replace("GEN", "5").replace("READY", "5"));
        assert!(matches!(
            evaluate(&spec, &applied, &done, &evidence),
            Progress::Done(_)
        ));
        // Not applied yet: never done.
        assert!(matches!(
            evaluate(&spec, &AppliedChange::default(), &done, &evidence),
            Progress::Waiting(_)
        ));
    }

    #[test]
    fn restart_needs_every_pod_restarted_and_ready() {
        let spec = op("type: Restart");
        let c = cluster(PG);
        let applied = AppliedChange {
            restarted_at: Some("2026-01-01T00:00:00Z".to_owned()),
            ..AppliedChange::default()
        };
        let pod = |at: &str, ready| PodEvidence {
            restarted_at: Some(at.to_owned()),
            ready,
            image: None,
        };
        let now = "2026-01-01T00:00:00Z";
        let mut evidence = Evidence {
            pods: vec![pod(now, true), pod(now, true), pod("old", true)],
            ..Evidence::default()
        };
        assert!(matches!(
            evaluate(&spec, &applied, &c, &evidence),
            Progress::Waiting(_)
        ));
        evidence.pods[2] = pod(now, false);
        assert!(matches!(
            evaluate(&spec, &applied, &c, &evidence),
            Progress::Waiting(_)
        ));
        evidence.pods[2] = pod(now, true);
        assert!(matches!(
            evaluate(&spec, &applied, &c, &evidence),
            Progress::Done(_)
        ));
        evidence.pods.pop();
        assert!(matches!(
            evaluate(&spec, &applied, &c, &evidence),
            Progress::Waiting(_)
        ));
    }

    #[test]
    fn merge_diff_only_carries_differences() {
        assert_eq!(merge_diff(&json!({"a": 1}), &json!({"a": 1})), None);
        assert_eq!(
            merge_diff(
                &json!({"a": {"b": 1, "c": 2}}),
                &json!({"a": {"b": 1}, "d": [1]})
            ),
            Some(json!({"a": {"c": null}, "d": [1]}))
        );
    }
}
