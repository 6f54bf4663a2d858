//! The BackupStorage status controller against the real control plane:
//! missing or incomplete credentials show as `Ready=False` on the storage
//! itself, naming the missing key and never a value; completing the Secret
//! turns the storage Ready without any change to the storage (the Secret
//! watch re-judges it); filesystem storages need no credentials.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests state their expectations by unwrapping

mod common;

use dbaas_api::BackupStorage;
use dbaas_api::common::condition;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::Api;
use kube::api::{Patch, PatchParams, PostParams};
use serde_json::json;

use common::TIMEOUT;

const ACCESS_KEY_VALUE: &str = "AKIA-access-value-7f3e";
const SECRET_KEY_VALUE: &str = "secret-key-value-91c2";

fn ready(storage: &BackupStorage) -> Option<&Condition> {
    storage
        .status
        .as_ref()
        .and_then(|s| s.conditions.iter().find(|c| c.type_ == condition::READY))
}

/// Waits until the storage's Ready condition passes `check` and its status
/// is of the storage's current generation.
async fn storage_where(
    api: &Api<BackupStorage>,
    name: &str,
    what: &str,
    check: impl Fn(&Condition) -> bool + Send + 'static,
) -> BackupStorage {
    dbaas_testkit::wait_for(
        api,
        name,
        TIMEOUT,
        what,
        move |s: Option<&BackupStorage>| {
            s.is_some_and(|s| {
                s.status.as_ref().and_then(|st| st.observed_generation) == s.metadata.generation
                    && ready(s).is_some_and(&check)
            })
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"))
}

fn assert_no_secret_value(condition: &Condition) {
    for value in [ACCESS_KEY_VALUE, SECRET_KEY_VALUE] {
        assert!(
            !condition.message.contains(value),
            "a credential value leaked into the condition: {condition:?}"
        );
    }
}

#[tokio::test]
async fn incomplete_credentials_show_on_the_storage_until_the_secret_is_fixed() {
    let (_client, ns, _operator) = common::setup("bstore-creds").await;
    let storages = ns.api::<BackupStorage>();
    let secrets = ns.api::<Secret>();
    let storage: BackupStorage = serde_json::from_value(json!({
        "apiVersion": "dbaas.io/v1", "kind": "BackupStorage",
        "metadata": {"name": "s3"},
        "spec": {
            "type": "s3", "bucket": "backups", "region": "us-east-1",
            "credentialsSecretName": "s3-creds",
        },
    }))
    .unwrap();
    storages
        .create(&PostParams::default(), &storage)
        .await
        .unwrap();

    // No Secret at all.
    let stored = storage_where(&storages, "s3", "Ready=False for a missing Secret", |c| {
        c.status == "False" && c.reason == "BackupCredentialsNotFound"
    })
    .await;
    let missing = ready(&stored).unwrap();
    assert!(
        missing.message.contains("\"s3-creds\"") && missing.message.contains("does not exist"),
        "{missing:?}"
    );
    let generation = stored.metadata.generation;

    // The Secret appears without the secret access key: the message moves on
    // to name that key, and only its name.
    let secret: Secret = serde_json::from_value(json!({
        "metadata": {"name": "s3-creds"},
        "stringData": {"AWS_ACCESS_KEY_ID": ACCESS_KEY_VALUE},
    }))
    .unwrap();
    secrets
        .create(&PostParams::default(), &secret)
        .await
        .unwrap();
    let stored = storage_where(&storages, "s3", "Ready=False naming the missing key", |c| {
        c.status == "False"
            && c.reason == "BackupCredentialsNotFound"
            && c.message.contains("has no key \"AWS_SECRET_ACCESS_KEY\"")
    })
    .await;
    assert_no_secret_value(ready(&stored).unwrap());

    // The key is added to the Secret; the storage itself is not touched.
    secrets
        .patch(
            "s3-creds",
            &PatchParams::default(),
            &Patch::Merge(&json!({"stringData": {"AWS_SECRET_ACCESS_KEY": SECRET_KEY_VALUE}})),
        )
        .await
        .unwrap();
    let stored = storage_where(&storages, "s3", "Ready=True once the key exists", |c| {
        c.status == "True" && c.reason == "CredentialsFound"
    })
    .await;
    assert_eq!(
        stored.metadata.generation, generation,
        "the storage's spec did not change: the Secret watch re-judged it"
    );
    assert_no_secret_value(ready(&stored).unwrap());

    // Removing the key again turns it back.
    secrets
        .patch(
            "s3-creds",
            &PatchParams::default(),
            &Patch::Json::<()>(
                serde_json::from_value(json!([
                    {"op": "remove", "path": "/data/AWS_ACCESS_KEY_ID"}
                ]))
                .unwrap(),
            ),
        )
        .await
        .unwrap();
    let stored = storage_where(&storages, "s3", "Ready=False once a key is removed", |c| {
        c.status == "False" && c.message.contains("has no key \"AWS_ACCESS_KEY_ID\"")
    })
    .await;
    assert_no_secret_value(ready(&stored).unwrap());
}

#[tokio::test]
async fn a_filesystem_storage_is_ready_without_credentials() {
    let (_client, ns, _operator) = common::setup("bstore-fs").await;
    let storages = ns.api::<BackupStorage>();
    let storage: BackupStorage = serde_json::from_value(json!({
        "apiVersion": "dbaas.io/v1", "kind": "BackupStorage",
        "metadata": {"name": "nfs"},
        "spec": {"type": "filesystem", "persistentVolumeClaim": "backups"},
    }))
    .unwrap();
    storages
        .create(&PostParams::default(), &storage)
        .await
        .unwrap();
    storage_where(&storages, "nfs", "Ready=True NoCredentialsNeeded", |c| {
        c.status == "True" && c.reason == "NoCredentialsNeeded"
    })
    .await;
}
