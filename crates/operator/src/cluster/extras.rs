//! The objects a provider builds beside the engine resource (a
//! CloudNativePG Pooler): applied like it with server-side apply, never
//! taken over from someone else, and removed once a build no longer
//! returns them.

use std::collections::BTreeSet;

use dbaas_api::DatabaseCluster;
use dbaas_api::common::{FIELD_MANAGER, LABEL_CLUSTER, LABEL_MANAGED_BY, MANAGED_BY_VALUE};
use dbaas_engines::EngineProvider;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams};
use kube::core::{ApiResource, DynamicObject};
use kube::{Api, ResourceExt};

use crate::context::Context;

/// Why an extra object could not be applied.
#[derive(Debug, thiserror::Error)]
pub enum ExtraError {
    /// A provider built an object of a kind it did not declare.
    #[error("{0} is not among the provider's extra resources")]
    UndeclaredKind(String),
    /// The API server refused the object itself: retrying cannot help.
    #[error("the API server refused the {kind} {name}: {message}")]
    Rejected {
        kind: String,
        name: String,
        message: String,
    },
    #[error(transparent)]
    Kube(#[from] kube::Error),
}

/// The resource an extra object is of, from the provider's declared kinds.
fn resource_of(
    provider: &dyn EngineProvider,
    object: &DynamicObject,
) -> Result<ApiResource, ExtraError> {
    let types = object.types.clone().unwrap_or_default();
    provider
        .extra_resources()
        .into_iter()
        .find(|r| r.api_version == types.api_version && r.kind == types.kind)
        .ok_or(ExtraError::UndeclaredKind(format!(
            "{}/{}",
            types.api_version, types.kind
        )))
}

/// The first extra object that exists already and is not ours, as
/// "kind name".
pub async fn foreign(
    ctx: &Context,
    namespace: &str,
    cluster: &DatabaseCluster,
    provider: &dyn EngineProvider,
    extra: &[DynamicObject],
) -> Result<Option<String>, ExtraError> {
    for object in extra {
        let resource = resource_of(provider, object)?;
        let name = object.name_any();
        let existing =
            Api::<DynamicObject>::namespaced_with(ctx.client.clone(), namespace, &resource)
                .get_metadata_opt(&name)
                .await?;
        if existing.is_some_and(|e| !super::is_ours(&e.metadata, cluster)) {
            return Ok(Some(format!("{} {name}", resource.kind)));
        }
    }
    Ok(None)
}

/// Applies the extra objects; returns them as the API server stored them.
pub async fn apply(
    ctx: &Context,
    namespace: &str,
    provider: &dyn EngineProvider,
    extra: &[DynamicObject],
) -> Result<Vec<DynamicObject>, ExtraError> {
    let mut applied = Vec::with_capacity(extra.len());
    for object in extra {
        let resource = resource_of(provider, object)?;
        let name = object.name_any();
        let result =
            Api::<DynamicObject>::namespaced_with(ctx.client.clone(), namespace, &resource)
                .patch(
                    &name,
                    &PatchParams::apply(FIELD_MANAGER).force(),
                    &Patch::Apply(object),
                )
                .await;
        match result {
            Ok(stored) => applied.push(stored),
            Err(kube::Error::Api(status)) if super::is_rejection(&status) => {
                return Err(ExtraError::Rejected {
                    kind: resource.kind,
                    name,
                    message: status.message,
                });
            }
            Err(err) => return Err(err.into()),
        }
    }
    Ok(applied)
}

/// Deletes the extra objects of this cluster (ours, controlled by it) that
/// the build no longer returns: a pooler turned off. Kinds whose CRD is not
/// served are skipped.
pub async fn prune(
    ctx: &Context,
    namespace: &str,
    cluster: &DatabaseCluster,
    provider: &dyn EngineProvider,
    keep: &[DynamicObject],
) -> Result<(), kube::Error> {
    let keep: BTreeSet<(String, String)> = keep
        .iter()
        .map(|o| {
            (
                o.types.as_ref().map(|t| t.kind.clone()).unwrap_or_default(),
                o.name_any(),
            )
        })
        .collect();
    let selector = format!(
        "{LABEL_MANAGED_BY}={MANAGED_BY_VALUE},{LABEL_CLUSTER}={}",
        cluster.name_any()
    );
    for resource in provider.extra_resources() {
        let api = Api::<DynamicObject>::namespaced_with(ctx.client.clone(), namespace, &resource);
        let listed = match api
            .list_metadata(&ListParams::default().labels(&selector))
            .await
        {
            Ok(listed) => listed,
            Err(kube::Error::Api(status)) if status.code == 404 => continue,
            Err(err) => return Err(err),
        };
        for object in listed.items {
            let name = object.name_any();
            if keep.contains(&(resource.kind.clone(), name.clone()))
                || !super::is_ours(&object.metadata, cluster)
                || object.metadata.deletion_timestamp.is_some()
            {
                continue;
            }
            match api.delete(&name, &DeleteParams::background()).await {
                Ok(_) => tracing::info!(
                    cluster = %cluster.name_any(),
                    "removed {} {name}: the cluster no longer asks for it",
                    resource.kind
                ),
                Err(kube::Error::Api(status)) if status.code == 404 => {}
                Err(err) => return Err(err),
            }
        }
    }
    Ok(())
}
