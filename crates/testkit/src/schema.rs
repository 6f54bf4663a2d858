//! Objects as they were stored before today's validation existed: open a
//! CRD's schema, write what it accepts now, and close it again. What was
//! written stays in etcd as it was, and every reader meets it as stored.

use std::time::{Duration, Instant};

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{ApiResource, DynamicObject, PostParams};
use kube::core::GroupVersionKind;
use kube::{Api, Client};
use serde_json::{Value, json};

use crate::Error;

/// How long the API server may take to serve a changed CRD schema.
const SCHEMA_CHANGE: Duration = Duration::from_secs(60);

/// Replaces the schema of every version of CRD `crd_name` with one that
/// accepts anything, runs `write`, and puts the real CRD spec back.
pub async fn without_schema(
    client: &Client,
    crd_name: &str,
    write: impl AsyncFnOnce() -> Result<(), Error>,
) -> Result<(), Error> {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let original = crds.get(crd_name).await?;
    let mut open = original.clone();
    for version in &mut open.spec.versions {
        version.schema = Some(serde_json::from_value(json!({"openAPIV3Schema": {
            "type": "object", "x-kubernetes-preserve-unknown-fields": true,
        }}))?);
    }
    crds.replace(crd_name, &PostParams::default(), &open)
        .await?;
    let written = write().await;
    let mut current = crds.get(crd_name).await?;
    current.spec = original.spec;
    crds.replace(crd_name, &PostParams::default(), &current)
        .await?;
    written
}

/// Creates a raw `object` of `group/v1` `kind` (plural `plural`) in
/// `namespace`, retrying while the API server still judges it by an older
/// schema (a CRD change takes a moment to reach its handlers).
pub async fn create_until_served(
    client: &Client,
    namespace: &str,
    (group, kind, plural): (&str, &str, &str),
    object: Value,
) -> Result<(), Error> {
    let resource =
        ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, "v1", kind), plural);
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), namespace, &resource);
    let object: DynamicObject = serde_json::from_value(object)?;
    let deadline = Instant::now() + SCHEMA_CHANGE;
    loop {
        match api.create(&PostParams::default(), &object).await {
            Ok(_) => return Ok(()),
            Err(err) if Instant::now() < deadline => {
                eprintln!("testkit: waiting for the schema to be served: {err}");
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
            Err(err) => return Err(err.into()),
        }
    }
}
