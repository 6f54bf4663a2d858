//! BackupStorages around the pure build: which storages a cluster's backup
//! spec names, whether each exists and its credentials Secret holds the keys
//! its type needs (dereference), and which clusters to judge again when a
//! storage or a Secret changes (watch). Storages are looked up in the
//! cluster's own namespace.

use dbaas_api::backup_storage::BackupStorageType;
use dbaas_api::{BackupStorage, DatabaseCluster};
use dbaas_engines::backup::{StorageInput, credential_keys, referenced_storages};
use k8s_openapi::api::core::v1::Secret;
use kube::core::PartialObjectMeta;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Api, Client, ResourceExt};

/// One storage a cluster or a backup names, as the operator found it.
#[derive(Clone, Debug)]
pub struct StorageLookup {
    pub name: String,
    pub found: StorageFound,
}

/// What the lookup of a BackupStorage found.
#[derive(Clone, Debug)]
pub enum StorageFound {
    Missing,
    Found {
        storage: Box<BackupStorage>,
        credentials: Credentials,
    },
}

/// Whether the storage's credentials Secret can be used. Only presence is
/// recorded: the values stay in the Secret, which the engine reads itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Credentials {
    /// Filesystem storages need none.
    NotNeeded,
    /// The storage names no Secret although its type needs one.
    NotNamed,
    SecretMissing {
        secret: String,
    },
    KeyMissing {
        secret: String,
        key: &'static str,
    },
    Present {
        secret: String,
    },
}

/// Looks up one storage and its credentials in `namespace`.
pub async fn find(
    client: &Client,
    namespace: &str,
    name: &str,
) -> Result<StorageLookup, kube::Error> {
    let storages: Api<BackupStorage> = Api::namespaced(client.clone(), namespace);
    let Some(storage) = storages.get_opt(name).await? else {
        return Ok(StorageLookup {
            name: name.to_owned(),
            found: StorageFound::Missing,
        });
    };
    let keys = credential_keys(storage.spec.type_);
    let credentials = match (&storage.spec.credentials_secret_name, keys.is_empty()) {
        (_, true) => Credentials::NotNeeded,
        (None, false) => Credentials::NotNamed,
        (Some(secret), false) => {
            let secrets: Api<Secret> = Api::namespaced(client.clone(), namespace);
            match secrets.get_opt(secret).await? {
                None => Credentials::SecretMissing {
                    secret: secret.clone(),
                },
                Some(found) => match keys
                    .iter()
                    .find(|key| !found.data.as_ref().is_some_and(|d| d.contains_key(**key)))
                {
                    Some(key) => Credentials::KeyMissing {
                        secret: secret.clone(),
                        key,
                    },
                    None => Credentials::Present {
                        secret: secret.clone(),
                    },
                },
            }
        }
    };
    Ok(StorageLookup {
        name: name.to_owned(),
        found: StorageFound::Found {
            storage: Box::new(storage),
            credentials,
        },
    })
}

/// Looks up every storage the cluster's backup spec names.
pub async fn lookup(
    client: &Client,
    cluster: &DatabaseCluster,
) -> Result<Vec<StorageLookup>, kube::Error> {
    let namespace = cluster.namespace().unwrap_or_default();
    let mut found = Vec::new();
    for name in referenced_storages(&cluster.spec) {
        found.push(find(client, &namespace, &name).await?);
    }
    Ok(found)
}

/// Why a storage cannot be used, as a condition reason and message; `None`
/// when it can.
pub fn refusal(lookup: &StorageLookup) -> Option<(&'static str, String)> {
    let name = &lookup.name;
    match &lookup.found {
        StorageFound::Missing => Some((
            "BackupStorageNotFound",
            format!(
                "BackupStorage {name:?} does not exist in this namespace: create it, or name another storage"
            ),
        )),
        StorageFound::Found {
            storage,
            credentials,
        } => match credentials {
            Credentials::NotNeeded | Credentials::Present { .. } => None,
            Credentials::NotNamed => Some((
                "BackupCredentialsNotFound",
                format!(
                    "BackupStorage {name:?} ({}) names no credentialsSecretName",
                    type_name(storage.spec.type_)
                ),
            )),
            Credentials::SecretMissing { secret } => Some((
                "BackupCredentialsNotFound",
                format!(
                    "the credentials Secret {secret:?} of BackupStorage {name:?} does not exist"
                ),
            )),
            Credentials::KeyMissing { secret, key } => Some((
                "BackupCredentialsNotFound",
                format!(
                    "the credentials Secret {secret:?} of BackupStorage {name:?} has no key {key:?} ({} storages need {})",
                    type_name(storage.spec.type_),
                    credential_keys(storage.spec.type_).join(" and ")
                ),
            )),
        },
    }
}

fn type_name(storage_type: BackupStorageType) -> &'static str {
    match storage_type {
        BackupStorageType::S3 => "s3",
        BackupStorageType::Gcs => "gcs",
        BackupStorageType::Azure => "azure",
        BackupStorageType::Filesystem => "filesystem",
    }
}

/// The storage as the providers take it; `None` when it cannot be used.
pub fn input(lookup: &StorageLookup) -> Option<StorageInput> {
    if refusal(lookup).is_some() {
        return None;
    }
    let StorageFound::Found {
        storage,
        credentials,
    } = &lookup.found
    else {
        return None;
    };
    let credentials_secret = match credentials {
        Credentials::Present { secret } => Some(secret.clone()),
        _ => None,
    };
    Some(StorageInput {
        name: lookup.name.clone(),
        spec: storage.spec.clone(),
        credentials_secret,
    })
}

/// The clusters whose backup spec names `storage`.
pub fn clusters_of_storage(
    clusters: &Store<DatabaseCluster>,
    storage: &BackupStorage,
) -> Vec<ObjectRef<DatabaseCluster>> {
    let name = storage.name_any();
    clusters
        .state()
        .iter()
        .filter(|c| c.namespace() == storage.namespace())
        .filter(|c| referenced_storages(&c.spec).contains(&name))
        .map(|c| ObjectRef::from_obj(c.as_ref()))
        .collect()
}

/// The storages in the Secret's namespace that take their credentials from it.
pub fn storages_of_secret(
    storages: &Store<BackupStorage>,
    secret: &PartialObjectMeta<Secret>,
) -> Vec<std::sync::Arc<BackupStorage>> {
    let namespace = secret.namespace();
    let name = secret.name_any();
    storages
        .state()
        .into_iter()
        .filter(|s| s.namespace() == namespace)
        .filter(|s| s.spec.credentials_secret_name.as_deref() == Some(name.as_str()))
        .collect()
}

/// The clusters using a storage whose credentials are `secret`.
pub fn clusters_of_secret(
    clusters: &Store<DatabaseCluster>,
    storages: &Store<BackupStorage>,
    secret: &PartialObjectMeta<Secret>,
) -> Vec<ObjectRef<DatabaseCluster>> {
    storages_of_secret(storages, secret)
        .iter()
        .flat_map(|storage| clusters_of_storage(clusters, storage))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn storage(yaml: &str) -> Box<BackupStorage> {
        Box::new(serde_saphyr::from_str(yaml).unwrap())
    }

    const S3: &str = "apiVersion: dbaas.io/v1\nkind: BackupStorage\nmetadata: {name: s3, namespace: ns}\nspec: {type: s3, bucket: b, credentialsSecretName: creds}";

    #[test]
    fn a_usable_storage_becomes_build_input_with_its_secret() {
        let lookup = StorageLookup {
            name: "s3".into(),
            found: StorageFound::Found {
                storage: storage(S3),
                credentials: Credentials::Present {
                    secret: "creds".into(),
                },
            },
        };
        assert_eq!(refusal(&lookup), None);
        let input = input(&lookup).unwrap();
        assert_eq!(input.credentials_secret.as_deref(), Some("creds"));
        assert_eq!(input.spec.bucket.as_deref(), Some("b"));
    }

    #[test]
    fn each_unusable_storage_is_refused_with_what_to_fix() {
        let missing = StorageLookup {
            name: "gone".into(),
            found: StorageFound::Missing,
        };
        let (reason, message) = refusal(&missing).unwrap();
        assert_eq!(reason, "BackupStorageNotFound");
        assert!(message.contains("\"gone\""), "{message}");
        assert!(input(&missing).is_none());

        let no_key = StorageLookup {
            name: "s3".into(),
            found: StorageFound::Found {
                storage: storage(S3),
                credentials: Credentials::KeyMissing {
                    secret: "creds".into(),
                    key: "AWS_SECRET_ACCESS_KEY",
                },
            },
        };
        let (reason, message) = refusal(&no_key).unwrap();
        assert_eq!(reason, "BackupCredentialsNotFound");
        assert!(
            message.contains("AWS_SECRET_ACCESS_KEY")
                && message.contains("AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"),
            "{message}"
        );
        assert!(input(&no_key).is_none());

        let no_secret = StorageLookup {
            name: "s3".into(),
            found: StorageFound::Found {
                storage: storage(S3),
                credentials: Credentials::SecretMissing {
                    secret: "creds".into(),
                },
            },
        };
        assert!(
            refusal(&no_secret)
                .unwrap()
                .1
                .contains("\"creds\" of BackupStorage \"s3\" does not exist")
        );
    }
}
