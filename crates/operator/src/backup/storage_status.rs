//! The BackupStorage status controller: whether the storage's credentials
//! can be used, as a `Ready` condition on the storage itself, so wrong or
//! missing credentials show where they are fixed and not only on the
//! clusters that use the storage. The checks are [`storage::find`]'s; a
//! changed Secret re-judges the storages that name it.

use std::sync::Arc;

use dbaas_api::BackupStorage;
use dbaas_api::backup_storage::BackupStorageStatus;
use dbaas_api::common::condition;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::core::PartialObjectMeta;
use kube::runtime::controller::Action;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Client, ResourceExt};

use super::storage::{self, Credentials, StorageFound, StorageLookup};
use crate::cluster::status::set_condition;

/// What the BackupStorage status controller works with.
pub struct StorageStatusContext {
    pub client: Client,
}

/// Errors of a BackupStorage status reconcile, by stage.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("reading BackupStorage {storage} and its credentials Secret: {source}")]
    Dereference {
        storage: String,
        #[source]
        source: kube::Error,
    },
    #[error("writing the status of BackupStorage {storage}: {source}")]
    Status {
        storage: String,
        #[source]
        source: kube::Error,
    },
}

impl crate::metrics::ErrorReason for Error {
    fn reason(&self) -> &'static str {
        match self {
            Self::Dereference { .. } => "dereference",
            Self::Status { .. } => "status",
        }
    }
}

pub async fn reconcile(
    storage: Arc<BackupStorage>,
    ctx: Arc<StorageStatusContext>,
) -> Result<Action, Error> {
    let namespace = storage.namespace().unwrap_or_default();
    let name = storage.name_any();
    let id = format!("{namespace}/{name}");
    let lookup = storage::find(&ctx.client, &namespace, &name, &namespace)
        .await
        .map_err(|source| Error::Dereference {
            storage: id.clone(),
            source,
        })?;
    // Deleted since the event: nothing to write to.
    let StorageFound::Found { storage: found, .. } = &lookup.found else {
        return Ok(Action::await_change());
    };
    let current = found.status.clone().unwrap_or_default();
    let next = status(
        found.metadata.generation,
        &current,
        &lookup,
        &Time(k8s_openapi::jiff::Timestamp::now()),
    );
    if next != current {
        super::apply_status::<BackupStorage>(&ctx.client, &namespace, &name, &next)
            .await
            .map_err(|source| Error::Status {
                storage: id.clone(),
                source,
            })?;
    }
    // The storage and its Secret are watched: their changes wake us.
    Ok(Action::await_change())
}

/// The status the lookup calls for. Pure.
fn status(
    generation: Option<i64>,
    current: &BackupStorageStatus,
    lookup: &StorageLookup,
    now: &Time,
) -> BackupStorageStatus {
    let mut next = BackupStorageStatus {
        observed_generation: generation,
        ..current.clone()
    };
    let (ready, reason, message) = match (storage::refusal(lookup), &lookup.found) {
        (Some((reason, message)), _) => (false, reason, message),
        (
            None,
            StorageFound::Found {
                credentials: Credentials::Present { secret },
                ..
            },
        ) => (
            true,
            "CredentialsFound",
            format!("the credentials Secret {secret:?} holds every key this storage type needs"),
        ),
        (None, _) => (
            true,
            "NoCredentialsNeeded",
            "this storage type needs no credentials".to_owned(),
        ),
    };
    set_condition(
        &mut next.conditions,
        condition::READY,
        ready,
        reason,
        message,
        generation,
        now,
    );
    next
}

/// The storages in the Secret's namespace that take their credentials from it.
pub fn storages_of_secret(
    storages: &Store<BackupStorage>,
    secret: &PartialObjectMeta<Secret>,
) -> Vec<ObjectRef<BackupStorage>> {
    storage::storages_of_secret(storages, secret)
        .iter()
        .map(|s| ObjectRef::from_obj(s.as_ref()))
        .collect()
}

/// Retry failed reconciles after a pause; conflicts and API hiccups heal.
pub fn error_policy(
    _storage: Arc<BackupStorage>,
    error: &Error,
    _ctx: Arc<StorageStatusContext>,
) -> Action {
    tracing::warn!("{error}");
    Action::requeue(std::time::Duration::from_secs(5))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lookup(yaml: &str, credentials: Credentials) -> StorageLookup {
        StorageLookup {
            namespace: "ns".into(),
            name: "s3".into(),
            user_namespace: "ns".into(),
            found: StorageFound::Found {
                storage: Box::new(serde_saphyr::from_str(yaml).unwrap()),
                credentials,
            },
        }
    }

    const S3: &str = "apiVersion: dbaas.io/v1\nkind: BackupStorage\nmetadata: {name: s3, namespace: ns}\nspec: {type: s3, bucket: b, credentialsSecretName: creds}";

    fn now() -> Time {
        Time(k8s_openapi::jiff::Timestamp::now())
    }

    #[test]
    fn a_missing_key_is_ready_false_and_then_true_once_present() {
        let missing = lookup(
            S3,
            Credentials::KeyMissing {
                secret: "creds".into(),
                key: "AWS_SECRET_ACCESS_KEY",
            },
        );
        let first = status(Some(3), &BackupStorageStatus::default(), &missing, &now());
        assert_eq!(first.observed_generation, Some(3));
        let ready = &first.conditions[0];
        assert_eq!(
            (
                ready.type_.as_str(),
                ready.status.as_str(),
                ready.reason.as_str()
            ),
            ("Ready", "False", "BackupCredentialsNotFound")
        );
        assert!(
            ready.message.contains("AWS_SECRET_ACCESS_KEY"),
            "{}",
            ready.message
        );

        let present = lookup(
            S3,
            Credentials::Present {
                secret: "creds".into(),
            },
        );
        let second = status(Some(3), &first, &present, &now());
        assert_eq!(second.conditions.len(), 1);
        let ready = &second.conditions[0];
        assert_eq!(
            (ready.status.as_str(), ready.reason.as_str()),
            ("True", "CredentialsFound")
        );
    }

    #[test]
    fn a_filesystem_storage_needs_no_credentials() {
        let filesystem = lookup(
            "apiVersion: dbaas.io/v1\nkind: BackupStorage\nmetadata: {name: fs, namespace: ns}\nspec: {type: filesystem, persistentVolumeClaim: backups}",
            Credentials::NotNeeded,
        );
        let next = status(
            Some(1),
            &BackupStorageStatus::default(),
            &filesystem,
            &now(),
        );
        let ready = &next.conditions[0];
        assert_eq!(
            (ready.status.as_str(), ready.reason.as_str()),
            ("True", "NoCredentialsNeeded")
        );
    }
}
