//! Dynamic provisioning: a claim that names a template (`shape`) and matches
//! no server gets a DatabaseCluster made from that template and a
//! DatabaseServer pointing at it; the claim binds to that server once the
//! cluster is ready. Building the objects is pure; [`ensure`] applies them.

use std::collections::BTreeMap;

use dbaas_api::claim::{DeletePolicy, LABEL_CLAIM};
use dbaas_api::common::{
    ANNOTATION_ORIGIN, ANNOTATION_TEMPLATE_KIND, ANNOTATION_TEMPLATE_NAME, FIELD_MANAGER,
    LABEL_CLUSTER, LABEL_MANAGED_BY, MANAGED_BY_VALUE,
};
use dbaas_api::template::{ANNOTATION_CLAIM_MAX_STORAGE_GB, ANNOTATION_USABLE_BY_CLAIMS};
use dbaas_api::{
    DatabaseClaim, DatabaseCluster, DatabaseClusterTemplate, DatabaseServer, EngineType,
};
use kube::api::{Patch, PatchParams};
use kube::{Api, Client, Resource, ResourceExt};
use serde_json::{Value, json};

use super::{Blocked, Error, Failure};

/// The names of what was made for a claim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Provisioned {
    pub cluster: String,
    pub server: String,
}

/// Storage of a provisioned cluster whose claim sets no minStorageGB.
const DEFAULT_STORAGE_GB: i32 = 10;
/// DatabaseCluster names are at most 50 characters.
const MAX_CLUSTER_NAME: usize = 50;

/// The cluster's name: the claim's, shortened with a stable hash suffix when
/// too long.
pub fn cluster_name(claim: &DatabaseClaim) -> String {
    let name = claim.name_any();
    if name.len() <= MAX_CLUSTER_NAME {
        return name;
    }
    // FNV-1a: stable across releases, unlike the std hasher.
    let hash = name.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    let prefix: String = name.chars().take(MAX_CLUSTER_NAME - 9).collect();
    format!(
        "{}-{:08x}",
        prefix.trim_end_matches(['-', '.']),
        hash as u32
    )
}

/// Which cluster engine serves a claim type.
pub(super) fn cluster_engine(claim: &DatabaseClaim) -> Result<EngineType, Blocked> {
    claim.spec.type_.cluster_engine().ok_or_else(|| {
        Blocked::new(
            "ProvisioningUnsupported",
            format!(
                "no engine of this operator runs {engine} clusters; register a {engine} DatabaseServer instead",
                engine = claim.spec.type_.as_str()
            ),
        )
        .after(std::time::Duration::MAX)
    })
}

fn labels(claim: &DatabaseClaim) -> BTreeMap<String, String> {
    BTreeMap::from([
        (LABEL_MANAGED_BY.to_owned(), MANAGED_BY_VALUE.to_owned()),
        (LABEL_CLAIM.to_owned(), claim.name_any()),
    ])
}

/// The DatabaseCluster and DatabaseServer for `claim`, from `template`.
/// With `deletePolicy: delete` they are owned by the claim (and go with it);
/// with `retain` they outlive it.
pub fn build(claim: &DatabaseClaim, template: &str, engine: EngineType) -> (Value, Value) {
    let name = cluster_name(claim);
    let owner = (claim.spec.delete_policy == DeletePolicy::Delete)
        .then(|| claim.controller_owner_ref(&()))
        .flatten();
    let storage_gb = claim.spec.min_storage_gb.unwrap_or(DEFAULT_STORAGE_GB);
    let mut metadata = json!({
        "name": name,
        "namespace": claim.namespace(),
        "labels": labels(claim),
        "annotations": {
            ANNOTATION_TEMPLATE_KIND: "DatabaseClusterTemplate",
            ANNOTATION_TEMPLATE_NAME: template,
            ANNOTATION_ORIGIN: "api",
        },
    });
    if let Some(owner) = &owner {
        metadata["ownerReferences"] = json!([owner]);
    }
    let cluster = json!({
        "apiVersion": "dbaas.io/v1",
        "kind": "DatabaseCluster",
        "metadata": metadata,
        "spec": {
            "engine": {"type": engine},
            "storage": {"size": format!("{storage_gb}Gi")},
        },
    });
    // No instance label: the server is this claim's alone (matching skips
    // servers made for another claim), so no other claim's data can sit on
    // a cluster that goes away with this claim.
    let mut server_labels = labels(claim);
    server_labels.insert(LABEL_CLUSTER.to_owned(), name.clone());
    let mut server_metadata = json!({
        "name": name,
        "namespace": claim.namespace(),
        "labels": server_labels,
    });
    if let Some(owner) = &owner {
        server_metadata["ownerReferences"] = json!([owner]);
    }
    let server = json!({
        "apiVersion": "dbaas.io/v1",
        "kind": "DatabaseServer",
        "metadata": server_metadata,
        "spec": {
            "engine": claim.spec.type_,
            "clusterRef": {"name": name},
        },
    });
    (cluster, server)
}

/// Whether `claim` may provision an `engine` cluster from the template
/// named `name` (`found`, if it exists): only templates whoever writes them
/// marked usable for claims, of the claim's engine, within their storage
/// cap. A claim is a request anyone with claim rights can make, so without
/// the mark a claim could create clusters its author may not; and a
/// template not marked is as good as absent, so a claim learns nothing of
/// the others (neither that they exist nor their engine).
fn usable_by(
    found: Option<&DatabaseClusterTemplate>,
    name: &str,
    engine: EngineType,
    claim: &DatabaseClaim,
) -> Result<(), Blocked> {
    let Some(template) = found.filter(|t| marked_for_claims(t)) else {
        return Err(Blocked::new(
            "TemplateNotForClaims",
            format!(
                "no server matched, and no DatabaseClusterTemplate {name} (the claim's shape) is marked usable for claims here; whoever manages templates creates it or annotates it {ANNOTATION_USABLE_BY_CLAIMS}=true (and may cap storage with {ANNOTATION_CLAIM_MAX_STORAGE_GB})"
            ),
        ));
    };
    if template.spec.engine_type != engine {
        return Err(Blocked::new(
            "TemplateMismatch",
            format!(
                "DatabaseClusterTemplate {name} is for {}, the claim needs {engine}",
                template.spec.engine_type
            ),
        ));
    }
    let annotations = template.annotations();
    let Some(cap) = annotations.get(ANNOTATION_CLAIM_MAX_STORAGE_GB) else {
        return Ok(());
    };
    let cap: i32 = cap.trim().parse().map_err(|_| {
        Blocked::new(
            "TemplateNotForClaims",
            format!(
                "DatabaseClusterTemplate {name}: {ANNOTATION_CLAIM_MAX_STORAGE_GB} must be a whole number of GiB, not {cap:?}"
            ),
        )
    })?;
    let wanted = claim.spec.min_storage_gb.unwrap_or(DEFAULT_STORAGE_GB);
    if wanted > cap {
        return Err(Blocked::new(
            "StorageAboveTemplateMaximum",
            format!(
                "the claim asks for {wanted} GiB; DatabaseClusterTemplate {name} allows claims at most {cap} GiB"
            ),
        ));
    }
    Ok(())
}

/// Whether whoever manages `template` marked it usable for claims.
fn marked_for_claims(template: &DatabaseClusterTemplate) -> bool {
    template
        .annotations()
        .get(ANNOTATION_USABLE_BY_CLAIMS)
        .is_some_and(|value| value == "true")
}

/// Whether an existing object was made for `claim` (never take over a
/// cluster or server someone else made under the same name).
fn made_for(labels: &BTreeMap<String, String>, claim: &DatabaseClaim) -> bool {
    labels.get(LABEL_CLAIM) == Some(&claim.name_any())
        && labels.get(LABEL_MANAGED_BY).map(String::as_str) == Some(MANAGED_BY_VALUE)
}

fn kube_error(claim: &DatabaseClaim, what: &'static str) -> impl Fn(kube::Error) -> Failure {
    let claim = claim.name_any();
    move |source| {
        Failure::Kube(Error::Kube {
            what,
            claim: claim.clone(),
            source,
        })
    }
}

/// Makes (or keeps) the claim's cluster and server.
pub(super) async fn ensure(client: &Client, claim: &DatabaseClaim) -> Result<Provisioned, Failure> {
    let namespace = claim.namespace().unwrap_or_default();
    let Some(template) = claim.spec.shape.as_deref() else {
        return Err(Blocked::new(
            "ServerNotFound",
            "no server matched and the claim names no shape",
        )
        .into());
    };
    let engine = cluster_engine(claim)?;
    let templates: Api<DatabaseClusterTemplate> = Api::namespaced(client.clone(), &namespace);
    let found = templates
        .get_opt(template)
        .await
        .map_err(kube_error(claim, "reading the template"))?;
    usable_by(found.as_ref(), template, engine, claim)?;
    let name = cluster_name(claim);
    let clusters: Api<DatabaseCluster> = Api::namespaced(client.clone(), &namespace);
    let servers: Api<DatabaseServer> = Api::namespaced(client.clone(), &namespace);
    let foreign = |kind: &str| {
        Failure::from(Blocked::new(
            "ProvisioningConflict",
            format!("a {kind} named {name} already exists and was not made for this claim"),
        ))
    };
    if let Some(existing) = clusters
        .get_opt(&name)
        .await
        .map_err(kube_error(claim, "reading the cluster"))?
        && !made_for(existing.labels(), claim)
    {
        return Err(foreign("DatabaseCluster"));
    }
    if let Some(existing) = servers
        .get_opt(&name)
        .await
        .map_err(kube_error(claim, "reading the server"))?
        && !made_for(existing.labels(), claim)
    {
        return Err(foreign("DatabaseServer"));
    }
    let (cluster, server) = build(claim, template, engine);
    let params = PatchParams::apply(FIELD_MANAGER).force();
    clusters
        .patch(&name, &params, &Patch::Apply(&cluster))
        .await
        .map_err(kube_error(claim, "creating the cluster"))?;
    servers
        .patch(&name, &params, &Patch::Apply(&server))
        .await
        .map_err(kube_error(claim, "creating the server"))?;
    Ok(Provisioned {
        cluster: name.clone(),
        server: name,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use dbaas_api::claim::LABEL_INSTANCE;
    use dbaas_api::server::ServerEngine;

    fn claim(name: &str, policy: &str) -> DatabaseClaim {
        let mut claim: DatabaseClaim = serde_json::from_value(json!({
            "apiVersion": "dbaas.io/v1", "kind": "DatabaseClaim",
            "metadata": {"name": name, "namespace": "apps", "uid": "u-1"},
            "spec": {"secretName": "s", "type": "postgres", "username": "app", "databaseName": "app",
                     "shape": "small", "minStorageGB": 20, "instanceLabel": "athena.app",
                     "deletePolicy": policy}
        }))
        .unwrap();
        claim.metadata.uid = Some("u-1".into());
        claim
    }

    #[test]
    fn the_cluster_comes_from_the_template_and_the_claim() {
        let (cluster, server) = build(&claim("orders", "delete"), "small", EngineType::Postgresql);
        let cluster: DatabaseCluster = serde_json::from_value(cluster).unwrap();
        assert_eq!(cluster.spec.engine.type_, EngineType::Postgresql);
        assert_eq!(cluster.spec.storage.size.0, "20Gi");
        assert_eq!(cluster.annotations()[ANNOTATION_TEMPLATE_NAME], "small");
        assert_eq!(cluster.owner_references()[0].uid, "u-1");
        let server: DatabaseServer = serde_json::from_value(server).unwrap();
        assert_eq!(server.spec.cluster_ref.as_ref().unwrap().name, "orders");
        assert!(!server.labels().contains_key(LABEL_INSTANCE));
        assert!(made_for(server.labels(), &claim("orders", "delete")));
        assert!(!made_for(server.labels(), &claim("other", "delete")));
    }

    fn template(annotations: Value) -> DatabaseClusterTemplate {
        serde_json::from_value(json!({
            "apiVersion": "dbaas.io/v1", "kind": "DatabaseClusterTemplate",
            "metadata": {"name": "small", "annotations": annotations},
            "spec": {"engineType": "postgresql"},
        }))
        .unwrap()
    }

    #[test]
    fn claims_use_only_templates_marked_for_them_within_their_cap() {
        let claim = claim("orders", "delete"); // asks for 20 GiB
        let reason = |annotations: Value| {
            usable_by(
                Some(&template(annotations)),
                "small",
                EngineType::Postgresql,
                &claim,
            )
            .err()
            .map(|blocked| blocked.reason)
        };
        assert_eq!(reason(json!({})), Some("TemplateNotForClaims"));
        // Absent, or unmarked and of another engine: the same answer, word
        // for word.
        let message = |found: Option<&DatabaseClusterTemplate>| {
            usable_by(found, "small", EngineType::Mongodb, &claim)
                .err()
                .map(|blocked| (blocked.reason, blocked.message))
        };
        let unmarked = template(json!({}));
        assert_eq!(message(None), message(Some(&unmarked)));
        assert_eq!(message(None).unwrap().0, "TemplateNotForClaims");
        let marked = template(json!({(ANNOTATION_USABLE_BY_CLAIMS): "true"}));
        assert_eq!(message(Some(&marked)).unwrap().0, "TemplateMismatch");
        assert_eq!(
            reason(json!({(ANNOTATION_USABLE_BY_CLAIMS): "yes"})),
            Some("TemplateNotForClaims")
        );
        assert_eq!(reason(json!({(ANNOTATION_USABLE_BY_CLAIMS): "true"})), None);
        assert_eq!(
            reason(
                json!({(ANNOTATION_USABLE_BY_CLAIMS): "true", (ANNOTATION_CLAIM_MAX_STORAGE_GB): "20"})
            ),
            None
        );
        assert_eq!(
            reason(
                json!({(ANNOTATION_USABLE_BY_CLAIMS): "true", (ANNOTATION_CLAIM_MAX_STORAGE_GB): "19"})
            ),
            Some("StorageAboveTemplateMaximum")
        );
        assert_eq!(
            reason(
                json!({(ANNOTATION_USABLE_BY_CLAIMS): "true", (ANNOTATION_CLAIM_MAX_STORAGE_GB): "lots"})
            ),
            Some("TemplateNotForClaims")
        );
    }

    #[test]
    fn retained_claims_do_not_own_their_cluster() {
        let (cluster, _) = build(&claim("orders", "retain"), "small", EngineType::Postgresql);
        assert!(cluster["metadata"].get("ownerReferences").is_none());
    }

    #[test]
    fn long_names_are_shortened_stably() {
        let long = "a".repeat(60);
        let name = cluster_name(&claim(&long, "retain"));
        assert!(name.len() <= MAX_CLUSTER_NAME, "{name}");
        assert_eq!(name, cluster_name(&claim(&long, "retain")));
        assert_ne!(name, cluster_name(&claim(&"b".repeat(60), "retain")));
    }

    #[test]
    fn every_server_engine_is_provisioned_by_the_cluster_engine_that_runs_it() {
        for (server, engine) in [
            (ServerEngine::Postgres, EngineType::Postgresql),
            (ServerEngine::Mysql, EngineType::Mysql),
            (ServerEngine::Mariadb, EngineType::Mariadb),
        ] {
            let mut c = claim("x", "retain");
            c.spec.type_ = server;
            assert_eq!(cluster_engine(&c).ok(), Some(engine), "{server:?}");
        }
    }
}
