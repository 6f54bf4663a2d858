//! Skipping applies that would change nothing.
//!
//! Every engine status write wakes its DatabaseCluster, and a server-side
//! apply that changes nothing still costs kube-apiserver a full merge (it is
//! a write request, counted as one). So a reconcile re-applies only when
//! what it built differs from what this process last applied, or when the
//! stored objects no longer hold it: someone edited the spec (the generation
//! moved), touched our labels or annotations, or deleted the object. After a
//! restart nothing is remembered and the first reconcile applies once.

use std::collections::BTreeMap;
use std::hash::{DefaultHasher, Hash, Hasher};

use dbaas_api::DatabaseCluster;
use dbaas_engines::{BuiltEngine, EngineProvider};
use kube::api::GetParams;
use kube::core::{ApiResource, DynamicObject};
use kube::{Api, ResourceExt};

use crate::context::Context;

/// What this process applied for a cluster, and the generations the API
/// server gave the objects for it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppliedRecord {
    digest: u64,
    /// Engine object, then each extra object, as (kind, name, generation).
    generations: Vec<(String, String, Option<i64>)>,
}

/// A fingerprint of everything a build asks the API server to store. None
/// when the build carries Secret key copies: their targets are not checked
/// here, so such clusters are always applied in full.
pub fn digest(built: &BuiltEngine) -> Option<u64> {
    if !built.secret_keys.is_empty() {
        return None;
    }
    let mut hasher = DefaultHasher::new();
    for object in std::iter::once(&built.object).chain(&built.extra) {
        serde_json::to_string(object).ok()?.hash(&mut hasher);
    }
    Some(hasher.finish())
}

/// The record of a successful apply of a build with `digest`.
pub fn record(digest: u64, engine: &DynamicObject, extra: &[DynamicObject]) -> AppliedRecord {
    AppliedRecord {
        digest,
        generations: std::iter::once(engine)
            .chain(extra)
            .map(|o| (kind_of(o), o.name_any(), o.metadata.generation))
            .collect(),
    }
}

fn kind_of(object: &DynamicObject) -> String {
    object
        .types
        .as_ref()
        .map(|t| t.kind.clone())
        .unwrap_or_default()
}

/// Whether `stored` still holds what we applied as `wanted`: ours, not being
/// deleted, at the generation our apply left (a spec edit by anyone moves
/// it), and carrying our labels and annotations (which move no generation).
pub fn still_holds(
    stored: &DynamicObject,
    wanted: &DynamicObject,
    generation: Option<i64>,
    cluster: &DatabaseCluster,
) -> bool {
    fn contains(
        have: Option<&BTreeMap<String, String>>,
        want: Option<&BTreeMap<String, String>>,
    ) -> bool {
        want.into_iter()
            .flatten()
            .all(|(key, value)| have.and_then(|h| h.get(key)) == Some(value))
    }
    stored.metadata.deletion_timestamp.is_none()
        && generation.is_some()
        && stored.metadata.generation == generation
        && super::is_ours(&stored.metadata, cluster)
        && contains(
            stored.metadata.labels.as_ref(),
            wanted.metadata.labels.as_ref(),
        )
        && contains(
            stored.metadata.annotations.as_ref(),
            wanted.metadata.annotations.as_ref(),
        )
}

/// The stored engine object and extras when the last apply of this very
/// build still holds, so applying again would change nothing; None when it
/// must be applied. Reads come from kube-apiserver's watch cache.
pub async fn stored_if_unchanged(
    ctx: &Context,
    namespace: &str,
    cluster: &DatabaseCluster,
    provider: &dyn EngineProvider,
    built: &BuiltEngine,
    digest: u64,
) -> Result<Option<(DynamicObject, Vec<DynamicObject>)>, kube::Error> {
    let uid = cluster.metadata.uid.as_deref().unwrap_or_default();
    let Some(applied) = ctx.applied_record(uid) else {
        return Ok(None);
    };
    let wanted: Vec<&DynamicObject> = std::iter::once(&built.object).chain(&built.extra).collect();
    if applied.digest != digest || applied.generations.len() != wanted.len() {
        return Ok(None);
    }
    let resources = std::iter::once(provider.resource()).chain(provider.extra_resources());
    let resources: Vec<ApiResource> = resources.collect();
    let mut stored = Vec::with_capacity(wanted.len());
    for (want, (kind, name, generation)) in wanted.into_iter().zip(&applied.generations) {
        let Some(resource) = resources.iter().find(|r| &r.kind == kind) else {
            return Ok(None);
        };
        let api = Api::<DynamicObject>::namespaced_with(ctx.client.clone(), namespace, resource);
        let found = match api.get_with(name, &GetParams::any()).await {
            Ok(found) => found,
            Err(kube::Error::Api(status)) if status.code == 404 => return Ok(None),
            Err(err) => return Err(err),
        };
        if !still_holds(&found, want, *generation, cluster) {
            return Ok(None);
        }
        stored.push(found);
    }
    let mut stored = stored.into_iter();
    Ok(stored.next().map(|engine| (engine, stored.collect())))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use dbaas_api::common::{LABEL_MANAGED_BY, MANAGED_BY_VALUE};
    use serde_json::json;

    fn cluster() -> DatabaseCluster {
        serde_json::from_value(json!({
            "apiVersion": "dbaas.io/v1",
            "kind": "DatabaseCluster",
            "metadata": {"name": "db", "namespace": "ns", "uid": "u-1"},
            "spec": {"engine": {"type": "postgresql"}, "clusterSize": 1, "storage": {"size": "1Gi"}}
        }))
        .unwrap()
    }

    fn engine_object(generation: i64, labels: serde_json::Value, owner_uid: &str) -> DynamicObject {
        serde_json::from_value(json!({
            "apiVersion": "postgresql.cnpg.io/v1",
            "kind": "Cluster",
            "metadata": {
                "name": "db", "namespace": "ns", "generation": generation,
                "labels": labels,
                "ownerReferences": [{
                    "apiVersion": "dbaas.io/v1", "kind": "DatabaseCluster", "name": "db",
                    "uid": owner_uid, "controller": true
                }]
            },
            "spec": {"instances": 1}
        }))
        .unwrap()
    }

    fn ours() -> serde_json::Value {
        json!({ LABEL_MANAGED_BY: MANAGED_BY_VALUE, "team": "a" })
    }

    fn built(instances: i64) -> BuiltEngine {
        let object = serde_json::from_value(json!({
            "apiVersion": "postgresql.cnpg.io/v1",
            "kind": "Cluster",
            "metadata": {"name": "db", "namespace": "ns", "labels": ours()},
            "spec": {"instances": instances}
        }))
        .unwrap();
        BuiltEngine {
            object,
            extra: Vec::new(),
            secret_keys: Vec::new(),
            unapplied: Vec::new(),
        }
    }

    #[test]
    fn the_stored_object_holds_our_apply_until_someone_changes_it() {
        let wanted = built(1).object;
        let stored = engine_object(3, ours(), "u-1");
        assert!(still_holds(&stored, &wanted, Some(3), &cluster()));
        // A spec edit by anyone moves the generation.
        assert!(!still_holds(
            &engine_object(4, ours(), "u-1"),
            &wanted,
            Some(3),
            &cluster()
        ));
        // A label of ours removed or changed.
        let relabelled = engine_object(3, json!({ LABEL_MANAGED_BY: MANAGED_BY_VALUE }), "u-1");
        assert!(!still_holds(&relabelled, &wanted, Some(3), &cluster()));
        // Another cluster's object (a re-created cluster of the same name).
        assert!(!still_holds(
            &engine_object(3, ours(), "u-2"),
            &wanted,
            Some(3),
            &cluster()
        ));
        // Being deleted.
        let mut deleting = stored.clone();
        deleting.metadata.deletion_timestamp =
            Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                k8s_openapi::jiff::Timestamp::now(),
            ));
        assert!(!still_holds(&deleting, &wanted, Some(3), &cluster()));
        // No generation recorded: never assume.
        assert!(!still_holds(&stored, &wanted, None, &cluster()));
        // Labels added by someone else do not matter.
        let more = engine_object(
            3,
            json!({ LABEL_MANAGED_BY: MANAGED_BY_VALUE, "team": "a", "x": "y" }),
            "u-1",
        );
        assert!(still_holds(&more, &wanted, Some(3), &cluster()));
    }

    #[test]
    fn the_digest_follows_the_build_and_refuses_secret_copies() {
        assert_eq!(digest(&built(1)), digest(&built(1)));
        assert_ne!(digest(&built(1)), digest(&built(3)));
        let mut with_copy = built(1);
        with_copy.secret_keys.push(dbaas_engines::SecretKeyCopy {
            source_namespace: "ns".into(),
            source_secret: "pmm".into(),
            source_key: "apiKey",
            target_secret: "db-secrets".into(),
            target_key: "PMM_SERVER_KEY",
        });
        assert_eq!(digest(&with_copy), None);
    }

    #[test]
    fn the_record_lists_the_generations_in_build_order() {
        let engine = engine_object(2, ours(), "u-1");
        let mut pooler = engine_object(5, ours(), "u-1");
        pooler.types = Some(kube::core::TypeMeta {
            api_version: "postgresql.cnpg.io/v1".into(),
            kind: "Pooler".into(),
        });
        pooler.metadata.name = Some("db-pooler".into());
        let record = record(7, &engine, &[pooler]);
        assert_eq!(
            record.generations,
            vec![
                ("Cluster".into(), "db".into(), Some(2)),
                ("Pooler".into(), "db-pooler".into(), Some(5)),
            ]
        );
    }
}
