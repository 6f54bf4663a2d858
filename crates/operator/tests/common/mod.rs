//! Helpers shared by the integration tests: run the operator in-process
//! against the real control plane, scoped to one test namespace, and play the
//! engine operator's part by writing its status the way it does.

#![allow(dead_code)]

use std::time::Duration;

use dbaas_api::DatabaseCluster;
use dbaas_api::cluster::ClusterPhase;
use dbaas_operator::{OperatorConfig, run};
use kube::api::{Patch, PatchParams, PostParams};
use kube::{Api, Client};
use serde_json::Value;
use tokio::sync::oneshot;

pub const TIMEOUT: Duration = Duration::from_secs(30);

/// The operator running in this process for one namespace; stops on drop.
pub struct Operator {
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Operator {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.task.abort();
    }
}

pub fn start_operator(client: &Client, namespace: &str) -> Operator {
    start_operator_with(
        client,
        OperatorConfig {
            namespaces: vec![namespace.to_owned()],
            concurrency: 4,
            detection_interval: Duration::from_secs(1),
            ..OperatorConfig::default()
        },
    )
}

/// Runs the operator in-process with `config` until the handle is dropped.
pub fn start_operator_with(client: &Client, config: OperatorConfig) -> Operator {
    // Operator logs go to the test's captured output (RUST_LOG to tune).
    let _ = tracing_subscriber::fmt()
        .with_test_writer()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
                tracing_subscriber::EnvFilter::new("info,dbaas_operator=debug")
            }),
        )
        .try_init();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(run(client.clone(), config, async move {
        let _ = stopped.await;
    }));
    Operator {
        stop: Some(stop),
        task,
    }
}

/// A client, a fresh namespace and the operator running for it.
pub async fn setup(prefix: &str) -> (Client, dbaas_testkit::TestNamespace, Operator) {
    let client = dbaas_testkit::shared().client().await.expect("client");
    let ns = dbaas_testkit::TestNamespace::create(&client, prefix)
        .await
        .expect("namespace");
    let operator = start_operator(&client, &ns.name);
    (client, ns, operator)
}

/// Waits until the engine object `name` exists and passes `check`.
pub async fn engine_object<K>(api: &Api<K>, name: &str, what: &str, check: impl Fn(&K) -> bool) -> K
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug + Send + 'static,
{
    dbaas_testkit::wait_for(api, name, TIMEOUT, what, move |c: Option<&K>| {
        c.is_some_and(&check)
    })
    .await
    .unwrap_or_else(|e| panic!("{e}"))
}

/// Waits until the DatabaseCluster `name` passes `check`.
pub async fn cluster_where(
    api: &Api<DatabaseCluster>,
    name: &str,
    what: &str,
    check: impl Fn(Option<&DatabaseCluster>) -> bool,
) -> DatabaseCluster {
    dbaas_testkit::wait_for(api, name, TIMEOUT, what, check)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
}

/// Parses a YAML document into an object.
pub fn from_yaml<T: serde::de::DeserializeOwned>(yaml: &str) -> T {
    serde_saphyr::from_str(yaml).expect("valid YAML")
}

/// Reads a file of the repository.
pub fn repo_file(path: &str) -> String {
    let full = dbaas_testkit::repo_root().join(path);
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{}: {e}", full.display()))
}

/// Creates a DatabaseCluster from YAML and returns what the API server stored.
pub async fn create_cluster(api: &Api<DatabaseCluster>, yaml: &str) -> DatabaseCluster {
    let cluster: DatabaseCluster = from_yaml(yaml);
    api.create(&PostParams::default(), &cluster)
        .await
        .unwrap_or_else(|e| panic!("create {:?}: {e}", cluster.metadata.name))
}

/// Writes the status of an engine object as its operator would: a merge
/// patch on the status subresource under the operator's own field manager.
pub async fn write_engine_status<K>(api: &Api<K>, name: &str, manager: &str, status: Value)
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let params = PatchParams {
        field_manager: Some(manager.to_owned()),
        ..Default::default()
    };
    api.patch_status(
        name,
        &params,
        &Patch::Merge(&serde_json::json!({ "status": status })),
    )
    .await
    .unwrap_or_else(|e| panic!("writing engine status of {name}: {e}"));
}

/// Condition: the DatabaseCluster is in `phase`.
pub fn in_phase(phase: ClusterPhase) -> impl Fn(Option<&DatabaseCluster>) -> bool {
    move |c| c.and_then(|c| c.status.as_ref()).and_then(|s| s.phase) == Some(phase)
}

/// Condition: the DatabaseCluster has condition `type_` with `status` and `reason`.
pub fn has_condition(
    type_: &'static str,
    status: &'static str,
    reason: &'static str,
) -> impl Fn(Option<&DatabaseCluster>) -> bool {
    move |c| {
        c.and_then(|c| c.status.as_ref())
            .map(|s| {
                s.conditions
                    .iter()
                    .any(|c| c.type_ == type_ && c.status == status && c.reason == reason)
            })
            .unwrap_or(false)
    }
}

/// The condition `type_` of a cluster (panics if absent).
pub fn condition(
    cluster: &DatabaseCluster,
    type_: &str,
) -> k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition {
    cluster
        .status
        .as_ref()
        .and_then(|s| s.conditions.iter().find(|c| c.type_ == type_))
        .cloned()
        .unwrap_or_else(|| panic!("no {type_} condition in {:?}", cluster.status))
}

/// Asserts that every field of `sent` came back unchanged in `stored`: the
/// API server's schema pruned nothing we sent.
pub fn assert_not_pruned(sent: &Value, stored: &Value) {
    let mut missing = Vec::new();
    compare(sent, stored, String::new(), &mut missing);
    assert!(
        missing.is_empty(),
        "the API server pruned or changed: {missing:#?}"
    );
}

fn compare(sent: &Value, stored: &Value, path: String, missing: &mut Vec<String>) {
    match (sent, stored) {
        (Value::Object(s), Value::Object(t)) => {
            for (key, value) in s {
                match t.get(key) {
                    Some(other) => compare(value, other, format!("{path}.{key}"), missing),
                    None => missing.push(format!("{path}.{key} (pruned)")),
                }
            }
        }
        (Value::Array(s), Value::Array(t)) if s.len() == t.len() => {
            for (i, (a, b)) in s.iter().zip(t).enumerate() {
                compare(a, b, format!("{path}[{i}]"), missing);
            }
        }
        (a, b) if a == b => {}
        // A float field the server stores as 60 when we sent 60.0.
        (Value::Number(a), Value::Number(b)) if a.as_f64() == b.as_f64() => {}
        (a, b) => missing.push(format!("{path}: sent {a}, stored {b}")),
    }
}

/// A full set of S3 credentials (made up; nothing connects to S3 here).
pub fn s3_credentials() -> Value {
    serde_json::json!({"AWS_ACCESS_KEY_ID": "AKIAEXAMPLE", "AWS_SECRET_ACCESS_KEY": "not-a-real-key"})
}

/// An S3 BackupStorage `name` on `bucket` with its credentials Secret
/// `<name>-creds` holding `credentials`; returns it as the providers take it.
pub async fn s3_storage(
    ns: &dbaas_testkit::TestNamespace,
    name: &str,
    bucket: &str,
    credentials: Value,
) -> dbaas_engines::backup::StorageInput {
    let secret: k8s_openapi::api::core::v1::Secret = serde_json::from_value(serde_json::json!({
        "metadata": {"name": format!("{name}-creds")},
        "stringData": credentials,
    }))
    .expect("secret");
    ns.api()
        .create(&PostParams::default(), &secret)
        .await
        .expect("create the credentials Secret");
    let storage: dbaas_api::BackupStorage = serde_json::from_value(serde_json::json!({
        "apiVersion": "dbaas.io/v1", "kind": "BackupStorage",
        "metadata": {"name": name},
        "spec": {
            "type": "s3", "bucket": bucket, "region": "us-east-1",
            "endpointURL": "https://minio.example.com:9000", "forcePathStyle": true,
            "credentialsSecretName": format!("{name}-creds"),
        },
    }))
    .expect("storage");
    let stored = ns
        .api::<dbaas_api::BackupStorage>()
        .create(&PostParams::default(), &storage)
        .await
        .expect("create the BackupStorage");
    dbaas_engines::backup::StorageInput {
        name: name.to_owned(),
        spec: stored.spec,
        credentials_secret: Some(format!("{name}-creds")),
    }
}

/// The engine operator's resources of one kind in a namespace.
pub fn engine_api(
    client: &Client,
    ns: &str,
    resource: &kube::core::ApiResource,
) -> Api<kube::core::DynamicObject> {
    Api::namespaced_with(client.clone(), ns, resource)
}

/// Creates an OpsRequest `name` on `cluster` (`fields` are the rest of its
/// spec, as YAML flow) and waits up to `timeout` until it ends; fails the
/// test with its message unless it succeeded.
pub async fn run_op(
    ops: &Api<dbaas_api::OpsRequest>,
    cluster: &str,
    name: &str,
    fields: &str,
    timeout: Duration,
) -> dbaas_api::OpsRequest {
    use dbaas_api::ops::OpsPhase;
    let op: dbaas_api::OpsRequest = from_yaml(&format!(
        "apiVersion: dbaas.io/v1\nkind: OpsRequest\nmetadata: {{name: {name}}}\n\
         spec: {{clusterRef: {{name: {cluster}}}, {fields}}}"
    ));
    ops.create(&PostParams::default(), &op)
        .await
        .unwrap_or_else(|e| panic!("create OpsRequest {name}: {e}"));
    let started = std::time::Instant::now();
    let done = dbaas_testkit::wait_for(
        ops,
        name,
        timeout,
        "the OpsRequest to end",
        |o: Option<&dbaas_api::OpsRequest>| {
            o.and_then(|o| o.status.as_ref())
                .and_then(|s| s.phase)
                .is_some_and(|p| {
                    matches!(
                        p,
                        OpsPhase::Succeeded | OpsPhase::Failed | OpsPhase::Cancelled
                    )
                })
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    let status = done.status.clone().unwrap_or_default();
    assert_eq!(
        status.phase,
        Some(OpsPhase::Succeeded),
        "OpsRequest {name}: {:?}",
        status.message
    );
    eprintln!(
        "e2e: OpsRequest {name} succeeded in {:.1}s",
        started.elapsed().as_secs_f64()
    );
    done
}
