//! The DatabaseEngine controller: reports whether each engine operator is
//! installed (its CRD served, its Deployment found) and at which version, the
//! versions the engine offers, and which of them the SRE allows.

pub mod status;

use std::sync::Arc;
use std::time::Duration;

use dbaas_api::DatabaseEngine;
use dbaas_api::common::{FIELD_MANAGER, LABEL_MANAGED_BY, MANAGED_BY_VALUE};
use dbaas_engines::provider_for;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Patch, PatchParams, PostParams};
use kube::runtime::controller::Action;
use kube::{Resource, ResourceExt};
use serde_json::json;
use tracing::{info, warn};

use crate::context::Context;

/// A DatabaseEngine reconcile failed on I/O.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("detecting the engine operator for {engine}: {source}")]
    Detect {
        engine: String,
        #[source]
        source: kube::Error,
    },
    #[error("writing the status of {engine}: {source}")]
    Status {
        engine: String,
        #[source]
        source: kube::Error,
    },
    #[error("object has no namespace")]
    NoNamespace,
}

impl crate::metrics::ErrorReason for Error {
    fn reason(&self) -> &'static str {
        match self {
            Self::Detect { .. } => "detect",
            Self::Status { .. } => "status",
            Self::NoNamespace => "input",
        }
    }
}

/// Reconciles one DatabaseEngine.
pub async fn reconcile(engine: Arc<DatabaseEngine>, ctx: Arc<Context>) -> Result<Action, Error> {
    let namespace = engine.namespace().ok_or(Error::NoNamespace)?;
    let name = engine.name_any();
    let id = format!("{namespace}/{name}");
    let Some(provider) = provider_for(engine.spec.type_) else {
        // Nothing to detect for an engine without a provider; the cluster
        // controller reports EngineNotSupported on clusters of this type.
        return Ok(Action::await_change());
    };
    let detection = status::Detection {
        crd_installed: ctx.engine_crd_installed(provider).await.map_err(|source| {
            Error::Detect {
                engine: id.clone(),
                source,
            }
        })?,
        operator_image: ctx.operator_image(engine.spec.type_).await,
    };
    let now = Time(Timestamp::now());
    let new_status = status::compose(&engine, provider, &detection, &now);
    if engine.status.as_ref() != Some(&new_status) {
        let body = json!({
            "apiVersion": DatabaseEngine::api_version(&()),
            "kind": DatabaseEngine::kind(&()),
            "status": new_status,
        });
        ctx.api::<DatabaseEngine>(&namespace)
            .patch_status(
                &name,
                &PatchParams::apply(FIELD_MANAGER).force(),
                &Patch::Apply(&body),
            )
            .await
            .map_err(|source| Error::Status { engine: id, source })?;
    }
    // Engine operators come and go without touching our objects.
    Ok(Action::requeue(ctx.detection_interval))
}

/// Retry after a pause.
pub fn error_policy(engine: Arc<DatabaseEngine>, error: &Error, _ctx: Arc<Context>) -> Action {
    warn!(engine = %engine.name_any(), "reconcile failed: {error}");
    Action::requeue(Duration::from_secs(10))
}

/// Makes sure `namespace` has a DatabaseEngine for `engine`, named after the
/// engine type, without any policy (every offered version allowed). An
/// existing one, whoever made it, is left alone.
pub async fn ensure_exists(
    ctx: &Context,
    namespace: &str,
    engine: dbaas_api::EngineType,
) -> Result<(), kube::Error> {
    let exists = ctx
        .engines
        .state()
        .iter()
        .any(|e| e.namespace().as_deref() == Some(namespace) && e.spec.type_ == engine);
    if exists {
        return Ok(());
    }
    let object: DatabaseEngine = serde_json::from_value(json!({
        "apiVersion": DatabaseEngine::api_version(&()),
        "kind": DatabaseEngine::kind(&()),
        "metadata": {
            "name": engine.as_str(),
            "labels": { LABEL_MANAGED_BY: MANAGED_BY_VALUE },
        },
        "spec": { "type": engine.as_str() },
    }))
    .map_err(kube::Error::SerdeError)?;
    match ctx
        .api::<DatabaseEngine>(namespace)
        .create(&PostParams::default(), &object)
        .await
    {
        Ok(_) => {
            info!(
                namespace,
                engine = engine.as_str(),
                "created DatabaseEngine"
            );
            Ok(())
        }
        // A concurrent reconcile, or the name taken by another engine's object.
        Err(kube::Error::Api(status)) if status.code == 409 => Ok(()),
        Err(err) => Err(err),
    }
}
