//! BackupStorages around the pure build: which storages a cluster's backup
//! spec names, whether each exists, may be used from the cluster's namespace
//! and its credentials Secret holds the keys its type needs (dereference),
//! copying those keys into the cluster's namespace when the storage lives in
//! another one (apply), and which clusters to judge again when a storage or
//! a Secret changes (watch).

use std::collections::BTreeMap;

use dbaas_api::backup_storage::BackupStorageType;
use dbaas_api::common::{FIELD_MANAGER, LABEL_MANAGED_BY, MANAGED_BY_VALUE};
use dbaas_api::{BackupStorage, DatabaseCluster};
use dbaas_engines::backup::{StorageInput, credential_keys, referenced_storages};
use k8s_openapi::api::core::v1::Secret;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, Preconditions};
use kube::core::{ObjectMeta, PartialObjectMeta};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Api, Client, Resource, ResourceExt};

/// Label on a credentials copy: which storage it was copied from
/// (`<namespace>.<name>`, shortened with a hash past 63 characters).
pub const LABEL_BACKUP_STORAGE: &str = "dbaas.io/backup-storage";
/// Annotation on a credentials copy: `<namespace>/<name>` of its storage,
/// never shortened.
pub const ANNOTATION_BACKUP_STORAGE: &str = "dbaas.io/backup-storage";

/// One storage a cluster or a backup names, as the operator found it.
#[derive(Clone, Debug)]
pub struct StorageLookup {
    /// Where the storage was looked up.
    pub namespace: String,
    pub name: String,
    /// The namespace of the cluster (or backup) that wants to use it.
    pub user_namespace: String,
    pub found: StorageFound,
}

/// What the lookup of a BackupStorage found.
#[derive(Clone, Debug)]
pub enum StorageFound {
    Missing,
    /// The operator may not read BackupStorages in that namespace.
    Forbidden,
    /// It exists in another namespace that does not list the user's in
    /// `allowedNamespaces` (its credentials are not looked at).
    NotAllowed,
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

/// The namespace the storages of `cluster`'s backup spec are looked up in.
pub fn storage_namespace(cluster: &DatabaseCluster) -> String {
    cluster
        .spec
        .backup
        .as_ref()
        .and_then(|b| b.storage_namespace.clone())
        .or_else(|| cluster.namespace())
        .unwrap_or_default()
}

/// Whether clusters of `user_namespace` may use `storage`: its own
/// namespace always, others when listed in `allowedNamespaces`.
pub fn allowed(storage: &BackupStorage, user_namespace: &str) -> bool {
    storage.namespace().as_deref() == Some(user_namespace)
        || storage
            .spec
            .allowed_namespaces
            .iter()
            .any(|ns| ns == user_namespace)
}

/// Looks up storage `name` of `namespace` for a user in `user_namespace`,
/// and its credentials when that user may use it.
pub async fn find(
    client: &Client,
    namespace: &str,
    name: &str,
    user_namespace: &str,
) -> Result<StorageLookup, kube::Error> {
    let lookup = |found| StorageLookup {
        namespace: namespace.to_owned(),
        name: name.to_owned(),
        user_namespace: user_namespace.to_owned(),
        found,
    };
    let storages: Api<BackupStorage> = Api::namespaced(client.clone(), namespace);
    let storage = match storages.get_opt(name).await {
        Err(kube::Error::Api(status)) if status.code == 403 => {
            return Ok(lookup(StorageFound::Forbidden));
        }
        other => other?,
    };
    let Some(storage) = storage else {
        return Ok(lookup(StorageFound::Missing));
    };
    if !allowed(&storage, user_namespace) {
        return Ok(lookup(StorageFound::NotAllowed));
    }
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
    Ok(lookup(StorageFound::Found {
        storage: Box::new(storage),
        credentials,
    }))
}

/// Looks up every storage the cluster's backup spec names.
pub async fn lookup(
    client: &Client,
    cluster: &DatabaseCluster,
) -> Result<Vec<StorageLookup>, kube::Error> {
    let user_namespace = cluster.namespace().unwrap_or_default();
    let namespace = storage_namespace(cluster);
    let mut found = Vec::new();
    for name in referenced_storages(&cluster.spec) {
        found.push(find(client, &namespace, &name, &user_namespace).await?);
    }
    Ok(found)
}

/// Why a storage cannot be used, as a condition reason and message; `None`
/// when it can.
pub fn refusal(lookup: &StorageLookup) -> Option<(&'static str, String)> {
    let StorageLookup {
        namespace,
        name,
        user_namespace,
        ..
    } = lookup;
    match &lookup.found {
        StorageFound::Missing => Some((
            "BackupStorageNotFound",
            format!(
                "BackupStorage {name:?} does not exist in namespace {namespace:?}: create it, or name another storage"
            ),
        )),
        StorageFound::Forbidden => Some((
            "BackupStorageNotAllowed",
            format!("the operator may not read BackupStorage {name:?} in namespace {namespace:?}"),
        )),
        StorageFound::NotAllowed => Some((
            "BackupStorageNotAllowed",
            format!(
                "BackupStorage {name:?} in namespace {namespace:?} does not list namespace {user_namespace:?} in its allowedNamespaces"
            ),
        )),
        StorageFound::Found { storage, .. }
            if storage.spec.type_ == BackupStorageType::Filesystem
                && namespace != user_namespace =>
        {
            Some((
                "BackupStorageNotAllowed",
                format!(
                    "BackupStorage {name:?} in namespace {namespace:?} is a filesystem storage: its PersistentVolumeClaim cannot be mounted in namespace {user_namespace:?}"
                ),
            ))
        }
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
/// A storage of another namespace hands the engine the copy of its
/// credentials in the user's namespace ([`copy_of`]).
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
        Credentials::Present { .. } if lookup.namespace != lookup.user_namespace => {
            Some(copy_name(&lookup.namespace, &lookup.name))
        }
        Credentials::Present { secret } => Some(secret.clone()),
        _ => None,
    };
    Some(StorageInput {
        name: lookup.name.clone(),
        spec: storage.spec.clone(),
        credentials_secret,
    })
}

/// The credentials of a storage of another namespace, to be copied into the
/// user's namespace for the engine operator (which reads Secrets there).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CredentialsCopy {
    pub storage_namespace: String,
    pub storage_name: String,
    pub source_secret: String,
    /// Only these keys are copied.
    pub keys: &'static [&'static str],
    pub target_namespace: String,
    pub target_secret: String,
}

/// The copy a usable storage of another namespace needs; `None` for
/// storages of the user's own namespace or without credentials.
pub fn copy_of(lookup: &StorageLookup) -> Option<CredentialsCopy> {
    if lookup.namespace == lookup.user_namespace || refusal(lookup).is_some() {
        return None;
    }
    let StorageFound::Found {
        storage,
        credentials: Credentials::Present { secret },
    } = &lookup.found
    else {
        return None;
    };
    Some(CredentialsCopy {
        storage_namespace: lookup.namespace.clone(),
        storage_name: lookup.name.clone(),
        source_secret: secret.clone(),
        keys: credential_keys(storage.spec.type_),
        target_namespace: lookup.user_namespace.clone(),
        target_secret: copy_name(&lookup.namespace, &lookup.name),
    })
}

/// Longest Secret name (a DNS subdomain).
const MAX_NAME: usize = 253;
/// Longest label value.
const MAX_LABEL_VALUE: usize = 63;

/// The name of the copy of the credentials of storage `name` of
/// `namespace`: `dbaas-backup-<namespace>-<name>`, shortened with a hash of
/// both when longer than a Secret name may be.
pub fn copy_name(namespace: &str, name: &str) -> String {
    shortened(format!("dbaas-backup-{namespace}-{name}"), MAX_NAME)
}

/// The [`LABEL_BACKUP_STORAGE`] value of a copy: `<namespace>.<name>`,
/// shortened with a hash when longer than a label value may be.
pub fn copy_label(namespace: &str, name: &str) -> String {
    shortened(format!("{namespace}.{name}"), MAX_LABEL_VALUE)
}

/// `full` when it fits in `max` characters, else its start, a dash and a
/// hash of all of it (so different long names stay different).
fn shortened(full: String, max: usize) -> String {
    if full.len() <= max {
        return full;
    }
    let hash = format!("{:016x}", fnv1a(full.as_bytes()));
    // Names and namespaces are ASCII; a prefix ending in '-' or '.' would
    // put two separators together.
    let keep = full[..max - hash.len() - 1].trim_end_matches(['-', '.']);
    format!("{keep}-{hash}")
}

/// FNV-1a, 64 bits: stable across Rust versions, unlike `DefaultHasher`.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// How syncing a credentials copy ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CopyOutcome {
    /// The copy holds the source's keys and names the cluster as an owner.
    Synced,
    /// The source Secret is gone since the lookup: its watch brings the next
    /// reconcile.
    SourceGone,
    /// A Secret of the copy's name exists that is not this storage's copy;
    /// it is left untouched.
    Conflict { message: String },
}

/// The field manager a cluster's share of a copy is applied with: each user
/// applies its own ownerReference, so no user's apply drops another's.
fn copy_manager(owner: &DatabaseCluster) -> String {
    format!(
        "{FIELD_MANAGER}-{}",
        owner.metadata.uid.as_deref().unwrap_or_default()
    )
}

/// Writes the keys the storage's type needs (and no other) from the source
/// Secret into the copy, with `owner` as one of its (non-controller)
/// owners: the garbage collector removes the copy once its last user is
/// gone. Nothing is written when the copy is already up to date. Values are
/// never logged.
pub async fn sync_copy(
    client: &Client,
    owner: &DatabaseCluster,
    copy: &CredentialsCopy,
) -> Result<CopyOutcome, kube::Error> {
    let source = Api::<Secret>::namespaced(client.clone(), &copy.storage_namespace)
        .get_opt(&copy.source_secret)
        .await?;
    let Some(source) = source else {
        return Ok(CopyOutcome::SourceGone);
    };
    let data: BTreeMap<_, _> = copy
        .keys
        .iter()
        .filter_map(|key| {
            source
                .data
                .as_ref()
                .and_then(|d| d.get(*key))
                .map(|value| ((*key).to_owned(), value.clone()))
        })
        .collect();
    let Some(owner_ref) = owner_reference(owner) else {
        return Ok(CopyOutcome::SourceGone);
    };
    let targets = Api::<Secret>::namespaced(client.clone(), &copy.target_namespace);
    let source_id = format!("{}/{}", copy.storage_namespace, copy.storage_name);
    if let Some(existing) = targets.get_opt(&copy.target_secret).await? {
        if existing.annotations().get(ANNOTATION_BACKUP_STORAGE) != Some(&source_id) {
            return Ok(CopyOutcome::Conflict {
                message: format!(
                    "a Secret {:?} exists in namespace {:?} that is not dbaas-operator's copy of the credentials of BackupStorage {source_id}; it is left untouched",
                    copy.target_secret, copy.target_namespace
                ),
            });
        }
        let owned = existing
            .owner_references()
            .iter()
            .any(|o| o.uid == owner_ref.uid);
        if owned && existing.data.as_ref() == Some(&data) {
            return Ok(CopyOutcome::Synced);
        }
    }
    let body = Secret {
        metadata: ObjectMeta {
            name: Some(copy.target_secret.clone()),
            namespace: Some(copy.target_namespace.clone()),
            labels: Some(BTreeMap::from([
                (LABEL_MANAGED_BY.to_owned(), MANAGED_BY_VALUE.to_owned()),
                (
                    LABEL_BACKUP_STORAGE.to_owned(),
                    copy_label(&copy.storage_namespace, &copy.storage_name),
                ),
            ])),
            annotations: Some(BTreeMap::from([(
                ANNOTATION_BACKUP_STORAGE.to_owned(),
                source_id,
            )])),
            owner_references: Some(vec![owner_ref]),
            ..Default::default()
        },
        data: Some(data),
        type_: Some("Opaque".to_owned()),
        ..Default::default()
    };
    targets
        .patch(
            &copy.target_secret,
            &PatchParams::apply(&copy_manager(owner)).force(),
            &Patch::Apply(&body),
        )
        .await?;
    Ok(CopyOutcome::Synced)
}

/// A non-controller reference to the cluster (the engine objects carry the
/// controller one); blocks nothing.
fn owner_reference(
    owner: &DatabaseCluster,
) -> Option<k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference> {
    Some(
        k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference {
            api_version: DatabaseCluster::api_version(&()).into_owned(),
            kind: DatabaseCluster::kind(&()).into_owned(),
            name: owner.metadata.name.clone()?,
            uid: owner.metadata.uid.clone()?,
            controller: Some(false),
            block_owner_deletion: Some(false),
        },
    )
}

/// Takes `owner` off the copies in its namespace it no longer uses (not
/// named in `in_use`): a copy it was the last user of is deleted, others
/// only lose its ownerReference.
pub async fn release_unused(
    client: &Client,
    owner: &DatabaseCluster,
    in_use: &[CredentialsCopy],
) -> Result<(), kube::Error> {
    let (Some(namespace), Some(uid)) = (owner.namespace(), owner.metadata.uid.as_deref()) else {
        return Ok(());
    };
    let secrets = Api::<Secret>::namespaced(client.clone(), &namespace);
    let copies = secrets
        .list_metadata(&ListParams::default().labels(LABEL_BACKUP_STORAGE))
        .await?;
    for copy in copies {
        let name = copy.name_any();
        let refs = copy.owner_references();
        if !refs.iter().any(|o| o.uid == uid) || in_use.iter().any(|c| c.target_secret == name) {
            continue;
        }
        if refs.iter().all(|o| o.uid == uid) {
            let params = DeleteParams {
                preconditions: Some(Preconditions {
                    uid: copy.metadata.uid.clone(),
                    resource_version: copy.metadata.resource_version.clone(),
                }),
                ..DeleteParams::default()
            };
            match secrets.delete(&name, &params).await {
                // Gone, or changed since the list (a new user): the next
                // reconcile looks again.
                Err(kube::Error::Api(status)) if matches!(status.code, 404 | 409) => {}
                other => {
                    other?;
                }
            }
        } else {
            let patch = serde_json::json!({
                "metadata": {"ownerReferences": [{"$patch": "delete", "uid": uid}]}
            });
            secrets
                .patch(&name, &PatchParams::default(), &Patch::Strategic(&patch))
                .await?;
        }
    }
    Ok(())
}

/// The clusters a credentials copy belongs to (a copy changed or deleted by
/// someone is written again).
pub fn clusters_of_copy(secret: &PartialObjectMeta<Secret>) -> Vec<ObjectRef<DatabaseCluster>> {
    if !secret.labels().contains_key(LABEL_BACKUP_STORAGE) {
        return Vec::new();
    }
    let namespace = secret.namespace().unwrap_or_default();
    secret
        .owner_references()
        .iter()
        .filter(|o| o.kind == DatabaseCluster::kind(&()))
        .map(|o| ObjectRef::new(&o.name).within(&namespace))
        .collect()
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
        .filter(|c| storage.namespace().as_deref() == Some(storage_namespace(c).as_str()))
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
            namespace: "ns".into(),
            name: "s3".into(),
            user_namespace: "ns".into(),
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
            namespace: "ns".into(),
            name: "gone".into(),
            user_namespace: "ns".into(),
            found: StorageFound::Missing,
        };
        let (reason, message) = refusal(&missing).unwrap();
        assert_eq!(reason, "BackupStorageNotFound");
        assert!(message.contains("\"gone\""), "{message}");
        assert!(input(&missing).is_none());

        let no_key = StorageLookup {
            namespace: "ns".into(),
            name: "s3".into(),
            user_namespace: "ns".into(),
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
            namespace: "ns".into(),
            name: "s3".into(),
            user_namespace: "ns".into(),
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

    fn shared(allowed: &str) -> BackupStorage {
        serde_saphyr::from_str(&format!(
            "apiVersion: dbaas.io/v1\nkind: BackupStorage\nmetadata: {{name: s3, namespace: shared}}\nspec: {{type: s3, bucket: b, credentialsSecretName: creds, allowedNamespaces: {allowed}}}"
        ))
        .unwrap()
    }

    #[test]
    fn other_namespaces_need_to_be_allowed() {
        assert!(allowed(&shared("[]"), "shared"));
        assert!(!allowed(&shared("[]"), "team"));
        assert!(!allowed(&shared("[other]"), "team"));
        assert!(allowed(&shared("[other, team]"), "team"));

        let denied = StorageLookup {
            namespace: "shared".into(),
            name: "s3".into(),
            user_namespace: "team".into(),
            found: StorageFound::NotAllowed,
        };
        let (reason, message) = refusal(&denied).unwrap();
        assert_eq!(reason, "BackupStorageNotAllowed");
        assert!(
            message.contains("\"shared\"") && message.contains("\"team\""),
            "{message}"
        );
        assert!(input(&denied).is_none());
        assert!(copy_of(&denied).is_none());

        // A PVC is only mounted in its own namespace.
        let filesystem = StorageLookup {
            found: StorageFound::Found {
                storage: storage(
                    "apiVersion: dbaas.io/v1\nkind: BackupStorage\nmetadata: {name: s3, namespace: shared}\nspec: {type: filesystem, persistentVolumeClaim: backups, allowedNamespaces: [team]}",
                ),
                credentials: Credentials::NotNeeded,
            },
            ..denied
        };
        let (reason, message) = refusal(&filesystem).unwrap();
        assert_eq!(reason, "BackupStorageNotAllowed");
        assert!(message.contains("PersistentVolumeClaim"), "{message}");
    }

    #[test]
    fn a_storage_of_another_namespace_hands_the_engine_a_copy_of_its_keys() {
        let lookup = StorageLookup {
            namespace: "shared".into(),
            name: "s3".into(),
            user_namespace: "team".into(),
            found: StorageFound::Found {
                storage: Box::new(shared("[team]")),
                credentials: Credentials::Present {
                    secret: "creds".into(),
                },
            },
        };
        let input = input(&lookup).unwrap();
        assert_eq!(
            input.credentials_secret.as_deref(),
            Some("dbaas-backup-shared-s3")
        );
        let copy = copy_of(&lookup).unwrap();
        assert_eq!(copy.source_secret, "creds");
        assert_eq!(copy.target_namespace, "team");
        assert_eq!(copy.target_secret, "dbaas-backup-shared-s3");
        assert_eq!(copy.keys, ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"]);

        // The storage's own namespace uses the Secret itself.
        let own = StorageLookup {
            user_namespace: "shared".into(),
            ..lookup
        };
        assert_eq!(
            super::input(&own).unwrap().credentials_secret.as_deref(),
            Some("creds")
        );
        assert!(copy_of(&own).is_none());
    }

    #[test]
    fn long_copy_names_and_labels_are_shortened_and_stay_distinct() {
        let namespace = "n".repeat(63);
        let long = |last: char| format!("{}{last}", "s".repeat(252));
        let (a, b) = (
            copy_name(&namespace, &long('a')),
            copy_name(&namespace, &long('b')),
        );
        assert_eq!(a.len(), 253);
        assert_ne!(a, b);
        assert!(a.starts_with("dbaas-backup-nnn"), "{a}");
        assert_eq!(a, copy_name(&namespace, &long('a')), "deterministic");

        let label = copy_label(&namespace, "s3");
        assert!(label.len() <= 63, "{label}");
        assert_ne!(label, copy_label(&namespace, "s4"));
        assert_eq!(copy_label("shared", "s3"), "shared.s3");
        // A cut that lands on a separator does not leave two in a row.
        let dashed = shortened(format!("{}-{}", "a".repeat(45), "b".repeat(40)), 63);
        assert!(!dashed.contains("--"), "{dashed}");
        assert!(dashed.len() <= 63);
    }
}
