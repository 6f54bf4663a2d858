//! Engine operators installed through OLM, against the real control plane
//! with the real `operators.coreos.com` CRDs. No OLM runs here: the test
//! plays its part, making InstallPlans, ClusterServiceVersions and
//! Subscription statuses the way OLM does, and checks what we approve, and
//! that only what the SRE's OLM allowlist holds is subscribed to or
//! approved.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests state their expectations by unwrapping

mod common;

use std::time::Duration;

use common::*;
use dbaas_api::engine::{DatabaseEngine, EngineOperatorStatus, OperatorInstallSource};
use dbaas_engine_crds::olm_installplan::InstallPlan;
use dbaas_engine_crds::olm_operatorgroup::OperatorGroup;
use dbaas_engine_crds::olm_subscription::Subscription;
use dbaas_operator::OperatorConfig;
use dbaas_operator::engine::allowlist::{CatalogRef, InstallMode, OlmAllowlist};
use dbaas_testkit::accounts::{service_account_token, shipped_operator_role};
use dbaas_testkit::wait_for;
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding};
use kube::api::{Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::core::{ApiResource, DynamicObject};
use kube::{Api, Client, ResourceExt};
use serde_json::{Value, json};

const OLM: &str = "operators.coreos.com/v1alpha1";

fn dynamic(client: &Client, ns: &str, kind: &str, plural: &str) -> Api<DynamicObject> {
    let resource = ApiResource {
        group: "operators.coreos.com".into(),
        version: "v1alpha1".into(),
        api_version: OLM.into(),
        kind: kind.into(),
        plural: plural.into(),
    };
    Api::namespaced_with(client.clone(), ns, &resource)
}

async fn create_catalog_source(client: &Client, ns: &str, name: &str) {
    let catalog: DynamicObject = serde_json::from_value(json!({
        "apiVersion": OLM, "kind": "CatalogSource",
        "metadata": {"name": name},
        "spec": {"sourceType": "grpc", "image": "quay.io/operatorhubio/catalog:latest"},
    }))
    .unwrap();
    dynamic(client, ns, "CatalogSource", "catalogsources")
        .create(&PostParams::default(), &catalog)
        .await
        .unwrap();
}

/// The catalog the default allowlist holds, `olm/operatorhubio-catalog`, as
/// OLM's own install creates it (shared by the tests, made once).
async fn default_catalog(client: &Client) {
    let namespace: Namespace =
        serde_json::from_value(json!({"metadata": {"name": "olm"}})).unwrap();
    match Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &namespace)
        .await
    {
        Ok(_) => {}
        Err(kube::Error::Api(status)) if status.code == 409 => {}
        Err(err) => panic!("creating namespace olm: {err}"),
    }
    let catalog: DynamicObject = serde_json::from_value(json!({
        "apiVersion": OLM, "kind": "CatalogSource",
        "metadata": {"name": "operatorhubio-catalog"},
        "spec": {"sourceType": "grpc", "image": "quay.io/operatorhubio/catalog:latest"},
    }))
    .unwrap();
    match dynamic(client, "olm", "CatalogSource", "catalogsources")
        .create(&PostParams::default(), &catalog)
        .await
    {
        Ok(_) => {}
        Err(kube::Error::Api(status)) if status.code == 409 => {}
        Err(err) => panic!("creating CatalogSource olm/operatorhubio-catalog: {err}"),
    }
}

fn engine_with_operator(engine_type: &str, olm: Value) -> DatabaseEngine {
    serde_json::from_value(json!({
        "apiVersion": "dbaas.io/v1", "kind": "DatabaseEngine",
        "metadata": {"name": engine_type},
        "spec": {"type": engine_type, "operator": {"olm": olm}},
    }))
    .unwrap()
}

/// An InstallPlan as OLM makes it for a Subscription: manual, not approved,
/// owned by the Subscription, waiting for approval.
async fn olm_install_plan(api: &Api<InstallPlan>, name: &str, csv: &str, owner: &Subscription) {
    let plan: InstallPlan = serde_json::from_value(json!({
        "apiVersion": OLM, "kind": "InstallPlan",
        "metadata": {"name": name, "ownerReferences": [{
            "apiVersion": OLM, "kind": "Subscription",
            "name": owner.name_any(), "uid": owner.uid().unwrap(),
            "blockOwnerDeletion": false, "controller": false}]},
        "spec": {"approval": "Manual", "approved": false, "clusterServiceVersionNames": [csv],
                 "generation": 1},
    }))
    .unwrap();
    api.create(&PostParams::default(), &plan).await.unwrap();
    api.patch_status(
        name,
        &PatchParams::default(),
        &Patch::Merge(json!({"status": {"phase": "RequiresApproval", "catalogSources": []}})),
    )
    .await
    .unwrap();
}

/// The Subscription status OLM writes.
async fn olm_subscription_status(api: &Api<Subscription>, name: &str, status: Value) {
    let mut status = status;
    status["lastUpdated"] = json!("2026-01-01T00:00:00Z");
    api.patch_status(
        name,
        &PatchParams::default(),
        &Patch::Merge(json!({ "status": status })),
    )
    .await
    .unwrap();
}

fn plan_ref(ns: &str, name: &str) -> Value {
    json!({"apiVersion": OLM, "kind": "InstallPlan", "name": name, "namespace": ns})
}

async fn approved(api: &Api<InstallPlan>, name: &str) -> bool {
    api.get(name).await.unwrap().spec.approved
}

async fn engine_where(
    api: &Api<DatabaseEngine>,
    name: &str,
    what: &str,
    check: impl Fn(&DatabaseEngine) -> bool + Send + 'static,
) -> DatabaseEngine {
    wait_for(
        api,
        name,
        TIMEOUT,
        what,
        move |e: Option<&DatabaseEngine>| e.is_some_and(&check),
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"))
}

fn ready_message(engine: &DatabaseEngine) -> String {
    engine
        .status
        .as_ref()
        .and_then(|s| s.conditions.iter().find(|c| c.type_ == "Ready"))
        .map(|c| c.message.clone())
        .unwrap_or_default()
}

fn ready_reason(engine: &DatabaseEngine) -> Option<&str> {
    engine
        .status
        .as_ref()?
        .conditions
        .iter()
        .find(|c| c.type_ == "Ready")
        .map(|c| c.reason.as_str())
}

/// A client authenticating as a ServiceAccount bound (cluster-wide) to
/// exactly the shipped operator ClusterRole.
async fn shipped_role_client(admin: &Client, ns: &str) -> Client {
    let token = service_account_token(admin, ns, "operator").await.unwrap();
    let mut role = shipped_operator_role().unwrap();
    let name = format!("dbaas-operator-{ns}");
    role.metadata.name = Some(name.clone());
    Api::<ClusterRole>::all(admin.clone())
        .create(&PostParams::default(), &role)
        .await
        .unwrap();
    let binding: ClusterRoleBinding = serde_json::from_value(json!({
        "metadata": {"name": name},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name},
        "subjects": [{"kind": "ServiceAccount", "name": "operator", "namespace": ns}],
    }))
    .unwrap();
    Api::<ClusterRoleBinding>::all(admin.clone())
        .create(&PostParams::default(), &binding)
        .await
        .unwrap();
    let mut kubeconfig = Kubeconfig::read_from(dbaas_testkit::shared().kubeconfig()).unwrap();
    for user in &mut kubeconfig.auth_infos {
        if let Some(auth) = user.auth_info.as_mut() {
            auth.client_certificate_data = None;
            auth.client_key_data = None;
            auth.token = Some(token.clone().into());
        }
    }
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .unwrap();
    Client::try_from(config).unwrap()
}

#[tokio::test]
async fn olm_install_and_manual_upgrade() {
    // The operator runs with exactly the shipped RBAC: what the OLM path
    // needs is in deploy/rbac/operator.yaml.
    let client = dbaas_testkit::shared().client().await.unwrap();
    let ns = dbaas_testkit::TestNamespace::create(&client, "olm")
        .await
        .unwrap();
    let operator_client = shipped_role_client(&client, &ns.name).await;
    let _operator = start_operator(&operator_client, &ns.name);
    let engines: Api<DatabaseEngine> = ns.api();
    let subscriptions: Api<Subscription> = ns.api();
    let plans: Api<InstallPlan> = ns.api();
    let groups: Api<OperatorGroup> = ns.api();
    // The operator runs with the default allowlist: CloudNativePG from
    // OperatorHub's catalog, in its own namespace, installs out of the box.
    default_catalog(&client).await;

    // The SRE asks for CloudNativePG from the catalog.
    engines
        .create(
            &PostParams::default(),
            &engine_with_operator(
                "postgresql",
                json!({"catalogSource": "operatorhubio-catalog", "catalogSourceNamespace": "olm",
                       "package": "cloudnative-pg", "channel": "stable-v1"}),
            ),
        )
        .await
        .unwrap();
    let subscription = engine_object(
        &subscriptions,
        "cloudnative-pg",
        "our Subscription with manual approval",
        |s: &Subscription| s.spec.install_plan_approval.as_deref() == Some("Manual"),
    )
    .await;
    assert_eq!(subscription.spec.name, "cloudnative-pg");
    assert_eq!(subscription.spec.channel.as_deref(), Some("stable-v1"));
    assert_eq!(subscription.spec.source, "operatorhubio-catalog");
    assert_eq!(subscription.spec.source_namespace, "olm");
    let group = groups.get("dbaas-engine-operators").await.unwrap();
    assert_eq!(
        group.spec.target_namespaces,
        Some(vec![ns.name.clone()]),
        "OwnNamespace OperatorGroup"
    );

    // A foreign Subscription with its own waiting plan: never ours to approve.
    let foreign: Subscription = serde_json::from_value(json!({
        "apiVersion": OLM, "kind": "Subscription", "metadata": {"name": "someone-else"},
        "spec": {"name": "other-operator", "source": "operatorhubio", "sourceNamespace": ns.name,
                 "installPlanApproval": "Manual"},
    }))
    .unwrap();
    let foreign = subscriptions
        .create(&PostParams::default(), &foreign)
        .await
        .unwrap();
    olm_install_plan(&plans, "install-foreign", "other-operator.v1.0.0", &foreign).await;
    olm_subscription_status(
        &subscriptions,
        "someone-else",
        json!({"installPlanRef": plan_ref(&ns.name, "install-foreign"),
               "currentCSV": "other-operator.v1.0.0", "state": "UpgradePending"}),
    )
    .await;

    // The DatabaseEngine warns about it: OLM installs what it asks for
    // (automatically: no installPlanApproval is OLM's Automatic), whatever
    // the allowlist says.
    let warned = engine_where(
        &engines,
        "postgresql",
        "ForeignSubscriptions naming someone-else",
        |e| {
            e.status.as_ref().is_some_and(|s| {
                s.conditions.iter().any(|c| {
                    c.type_ == "ForeignSubscriptions"
                        && c.status == "True"
                        && c.message
                            .contains("someone-else (not made by dbaas-operator")
                })
            })
        },
    )
    .await;
    let foreign_condition = warned
        .status
        .unwrap()
        .conditions
        .into_iter()
        .find(|c| c.type_ == "ForeignSubscriptions")
        .unwrap();
    assert!(
        !foreign_condition.message.contains("cloudnative-pg ("),
        "ours is not foreign: {}",
        foreign_condition.message
    );

    // OLM resolves ours: an InstallPlan for the first install. We approve it.
    olm_install_plan(&plans, "install-1", "cloudnative-pg.v1.27.1", &subscription).await;
    olm_subscription_status(
        &subscriptions,
        "cloudnative-pg",
        json!({"installPlanRef": plan_ref(&ns.name, "install-1"),
               "currentCSV": "cloudnative-pg.v1.27.1", "state": "UpgradePending"}),
    )
    .await;
    engine_object(&plans, "install-1", "the first InstallPlan approved", |p| {
        p.spec.approved
    })
    .await;
    let installing = engines.get("postgresql").await.unwrap();
    let status = installing.status.clone().unwrap();
    assert_eq!(status.install_source, Some(OperatorInstallSource::Olm));
    assert_ne!(status.status, Some(EngineOperatorStatus::Installed));

    // OLM installs the CSV; the version comes from it.
    let csvs = dynamic(
        &client,
        &ns.name,
        "ClusterServiceVersion",
        "clusterserviceversions",
    );
    let csv: DynamicObject = serde_json::from_value(json!({
        "apiVersion": OLM, "kind": "ClusterServiceVersion",
        "metadata": {"name": "cloudnative-pg.v1.27.1"},
        "spec": {"displayName": "CloudNativePG", "version": "1.27.1",
                 "install": {"strategy": "deployment", "spec": {"deployments": []}}},
    }))
    .unwrap();
    csvs.create(&PostParams::default(), &csv).await.unwrap();
    csvs.patch_status(
        "cloudnative-pg.v1.27.1",
        &PatchParams::default(),
        &Patch::Merge(json!({"status": {"phase": "Succeeded", "reason": "InstallSucceeded"}})),
    )
    .await
    .unwrap();
    olm_subscription_status(
        &subscriptions,
        "cloudnative-pg",
        json!({"installPlanRef": plan_ref(&ns.name, "install-1"),
               "currentCSV": "cloudnative-pg.v1.27.1", "installedCSV": "cloudnative-pg.v1.27.1",
               "state": "AtLatestKnown"}),
    )
    .await;
    let installed = engine_where(&engines, "postgresql", "Installed 1.27.1 from OLM", |e| {
        e.status.as_ref().is_some_and(|s| {
            s.status == Some(EngineOperatorStatus::Installed)
                && s.operator_version.as_deref() == Some("1.27.1")
        })
    })
    .await;
    let status = installed.status.unwrap();
    assert_eq!(
        status.installed_csv.as_deref(),
        Some("cloudnative-pg.v1.27.1")
    );
    assert_eq!(status.upgrade_available, None);
    assert_eq!(
        ready_reason(&installed_engine(&engines).await),
        Some("OperatorInstalled")
    );

    // A new version in the channel: OLM makes an upgrade plan. It waits.
    olm_install_plan(&plans, "upgrade-1", "cloudnative-pg.v1.28.0", &subscription).await;
    olm_subscription_status(
        &subscriptions,
        "cloudnative-pg",
        json!({"installPlanRef": plan_ref(&ns.name, "upgrade-1"),
               "currentCSV": "cloudnative-pg.v1.28.0", "installedCSV": "cloudnative-pg.v1.27.1",
               "state": "UpgradePending"}),
    )
    .await;
    let offered = engine_where(&engines, "postgresql", "upgradeAvailable 1.28.0", |e| {
        e.status
            .as_ref()
            .and_then(|s| s.upgrade_available.as_ref())
            .is_some_and(|u| u.version.as_deref() == Some("1.28.0"))
    })
    .await;
    let upgrade = offered.status.as_ref().unwrap();
    assert_eq!(
        upgrade.upgrade_available.as_ref().unwrap().install_plan,
        "upgrade-1"
    );
    let condition = upgrade
        .conditions
        .iter()
        .find(|c| c.type_ == "UpgradeAvailable")
        .unwrap();
    assert_eq!(
        (condition.status.as_str(), condition.reason.as_str()),
        ("True", "UpgradeAvailable")
    );
    assert!(
        condition.message.contains("approvedVersion"),
        "{condition:?}"
    );
    // Several reconciles later (1 s detection interval) it is still waiting.
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert!(
        !approved(&plans, "upgrade-1").await,
        "upgrade approved without the SRE"
    );

    // Approving another version changes nothing.
    engines
        .patch(
            "postgresql",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"operator": {"approvedVersion": "1.29.0"}}})),
        )
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(!approved(&plans, "upgrade-1").await);

    // The SRE approves 1.28.0: the plan is approved.
    engines
        .patch(
            "postgresql",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"operator": {"approvedVersion": "1.28.0"}}})),
        )
        .await
        .unwrap();
    engine_object(&plans, "upgrade-1", "the upgrade approved", |p| {
        p.spec.approved
    })
    .await;

    // Never touched: the foreign plan, and the managedFields of ours show
    // one writer of `approved` besides the test: us.
    let foreign_plan = plans.get("install-foreign").await.unwrap();
    assert!(!foreign_plan.spec.approved);
    assert!(
        foreign_plan
            .managed_fields()
            .iter()
            .all(|f| f.manager.as_deref() != Some("dbaas-operator")),
        "{:?}",
        foreign_plan.managed_fields()
    );
    let ours = plans.get("upgrade-1").await.unwrap();
    assert!(
        ours.managed_fields()
            .iter()
            .any(|f| f.manager.as_deref() == Some("dbaas-operator"))
    );

    // The package cannot change under a running install.
    let err = engines
        .patch(
            "postgresql",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"operator": {"olm": {"package": "other"}}}})),
        )
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("olm.package is immutable"),
        "{err}"
    );
}

async fn installed_engine(engines: &Api<DatabaseEngine>) -> DatabaseEngine {
    engines.get("postgresql").await.unwrap()
}

#[tokio::test]
async fn bad_olm_input_is_refused_or_named_and_changes_nothing() {
    let client = dbaas_testkit::shared().client().await.unwrap();
    let ns = dbaas_testkit::TestNamespace::create(&client, "olm-bad")
        .await
        .unwrap();
    // The SRE allows this namespace's catalogs: what is named below is
    // about them being missing or conflicting, not about the allowlist.
    let _operator = start_operator_with(
        &client,
        OperatorConfig {
            namespaces: vec![ns.name.clone()],
            concurrency: 4,
            detection_interval: Duration::from_secs(1),
            olm_allowlist: OlmAllowlist {
                packages: vec!["percona-xtradb-cluster-operator".into()],
                catalogs: ["missing", "present"]
                    .map(|name| CatalogRef {
                        name: name.into(),
                        namespace: ns.name.clone(),
                    })
                    .to_vec(),
                install_modes: vec![InstallMode::OwnNamespace],
            },
            ..OperatorConfig::default()
        },
    );
    let engines: Api<DatabaseEngine> = ns.api();
    let subscriptions: Api<Subscription> = ns.api();

    // Schema: names that cannot be Kubernetes names, a missing channel.
    let raw_engines: Api<DynamicObject> = Api::namespaced_with(
        client.clone(),
        &ns.name,
        &ApiResource::erase::<DatabaseEngine>(&()),
    );
    for (olm, expected) in [
        (
            json!({"catalogSource": "Not_A_Name", "catalogSourceNamespace": "olm",
                   "package": "cloudnative-pg", "channel": "stable"}),
            "catalogSource",
        ),
        (
            json!({"catalogSource": "ok", "catalogSourceNamespace": "olm",
                   "package": "cloudnative-pg"}),
            "channel",
        ),
        (
            json!({"catalogSource": "ok", "catalogSourceNamespace": "olm",
                   "package": "cloudnative-pg", "channel": "stable", "installMode": "Everywhere"}),
            "installMode",
        ),
    ] {
        // Sent untyped: our own types would refuse some of it first.
        let raw: DynamicObject = serde_json::from_value(json!({
            "apiVersion": "dbaas.io/v1", "kind": "DatabaseEngine",
            "metadata": {"name": "postgresql"},
            "spec": {"type": "postgresql", "operator": {"olm": olm}},
        }))
        .unwrap();
        let err = raw_engines
            .create(&PostParams::default(), &raw)
            .await
            .unwrap_err();
        assert!(err.to_string().contains(expected), "{olm}: {err}");
    }

    // A catalog that does not exist: a clear condition, no Subscription.
    engines
        .create(
            &PostParams::default(),
            &engine_with_operator(
                "mysql",
                json!({"catalogSource": "missing", "catalogSourceNamespace": ns.name,
                       "package": "percona-xtradb-cluster-operator", "channel": "stable"}),
            ),
        )
        .await
        .unwrap();
    let refused = engine_where(&engines, "mysql", "CatalogSourceMissing", |e| {
        ready_reason(e) == Some("CatalogSourceMissing")
    })
    .await;
    let status = refused.status.unwrap();
    assert_eq!(status.status, Some(EngineOperatorStatus::NotInstalled));
    let ready = status
        .conditions
        .iter()
        .find(|c| c.type_ == "Ready")
        .unwrap();
    assert!(ready.message.contains("missing"), "{}", ready.message);
    assert!(
        subscriptions
            .list(&Default::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );
    assert!(
        ns.api::<OperatorGroup>()
            .list(&Default::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );

    // Two OperatorGroups in the namespace: OLM would install nothing; we
    // say so and subscribe to nothing. (They serve this namespace only:
    // one serving all namespaces is refused by the allowlist.)
    create_catalog_source(&client, &ns.name, "present").await;
    for name in ["group-a", "group-b"] {
        let group: OperatorGroup = serde_json::from_value(json!({
            "apiVersion": "operators.coreos.com/v1", "kind": "OperatorGroup",
            "metadata": {"name": name}, "spec": {"targetNamespaces": [ns.name]},
        }))
        .unwrap();
        ns.api::<OperatorGroup>()
            .create(&PostParams::default(), &group)
            .await
            .unwrap();
    }
    engines
        .patch(
            "mysql",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"operator": {"olm": {"catalogSource": "present"}}}})),
        )
        .await
        .unwrap();
    let conflict = engine_where(&engines, "mysql", "OperatorGroupConflict", |e| {
        ready_reason(e) == Some("OperatorGroupConflict")
    })
    .await;
    let ready = conflict
        .status
        .unwrap()
        .conditions
        .into_iter()
        .find(|c| c.type_ == "Ready")
        .unwrap();
    assert!(
        ready.message.contains("group-a, group-b"),
        "{}",
        ready.message
    );
    assert!(
        subscriptions
            .list(&Default::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );

    // One left (someone else's): reused as it is, not replaced by ours.
    ns.api::<OperatorGroup>()
        .delete("group-b", &Default::default())
        .await
        .unwrap();
    engine_object(
        &subscriptions,
        "percona-xtradb-cluster-operator",
        "the Subscription once one OperatorGroup is left",
        |_| true,
    )
    .await;
    let groups: Vec<String> = ns
        .api::<OperatorGroup>()
        .list(&Default::default())
        .await
        .unwrap()
        .items
        .iter()
        .map(|g| g.name_any())
        .collect();
    assert_eq!(groups, vec!["group-a".to_owned()]);
}

async fn assert_nothing_subscribed(ns: &dbaas_testkit::TestNamespace, what: &str) {
    let subscriptions = ns
        .api::<Subscription>()
        .list(&Default::default())
        .await
        .unwrap()
        .items;
    assert!(
        subscriptions.is_empty(),
        "{what}: {:?}",
        subscriptions
            .iter()
            .map(|s| s.name_any())
            .collect::<Vec<_>>()
    );
}

async fn assert_no_operator_group_of_ours(ns: &dbaas_testkit::TestNamespace, what: &str) {
    let groups = ns
        .api::<OperatorGroup>()
        .list(&Default::default())
        .await
        .unwrap()
        .items;
    assert!(
        groups
            .iter()
            .all(|g| g.name_any() != "dbaas-engine-operators"),
        "{what}"
    );
}

/// Waits for Ready=False OperatorInstallNotAllowed with a message holding
/// every part of `parts`, and checks the rest of the status.
async fn refused_with(engines: &Api<DatabaseEngine>, name: &str, parts: &[&str]) {
    let wanted: Vec<String> = parts.iter().map(|p| (*p).to_owned()).collect();
    let refused = engine_where(
        engines,
        name,
        &format!("{name}: OperatorInstallNotAllowed naming {parts:?}"),
        move |e| {
            ready_reason(e) == Some("OperatorInstallNotAllowed")
                && wanted.iter().all(|p| ready_message(e).contains(p.as_str()))
        },
    )
    .await;
    let message = ready_message(&refused);
    assert!(message.contains("an SRE must allow it"), "{message}");
    let status = refused.status.unwrap();
    assert_eq!(status.status, Some(EngineOperatorStatus::NotInstalled));
    assert_eq!(status.install_source, Some(OperatorInstallSource::Olm));
    let ready = status
        .conditions
        .iter()
        .find(|c| c.type_ == "Ready")
        .unwrap();
    assert_eq!(ready.status, "False");
}

#[tokio::test]
async fn olm_installs_only_what_the_sre_allows() {
    // The operator runs with the default allowlist: the engine operators'
    // packages from olm/operatorhubio-catalog, OwnNamespace only.
    let (client, ns, _operator) = setup("olm-allow").await;
    let engines: Api<DatabaseEngine> = ns.api();
    let subscriptions: Api<Subscription> = ns.api();
    let plans: Api<InstallPlan> = ns.api();
    default_catalog(&client).await;
    // A catalog that exists, in the user's namespace: existing is not enough.
    create_catalog_source(&client, &ns.name, "private").await;

    // A package not on the list, from the allowed catalog.
    engines
        .create(
            &PostParams::default(),
            &engine_with_operator(
                "postgresql",
                json!({"catalogSource": "operatorhubio-catalog", "catalogSourceNamespace": "olm",
                       "package": "cluster-admin-operator", "channel": "stable"}),
            ),
        )
        .await
        .unwrap();
    // An allowed package from a catalog not on the list.
    engines
        .create(
            &PostParams::default(),
            &engine_with_operator(
                "mysql",
                json!({"catalogSource": "private", "catalogSourceNamespace": ns.name,
                       "package": "percona-xtradb-cluster-operator", "channel": "stable"}),
            ),
        )
        .await
        .unwrap();
    // An allowed package and catalog, for every namespace.
    engines
        .create(
            &PostParams::default(),
            &engine_with_operator(
                "mongodb",
                json!({"catalogSource": "operatorhubio-catalog", "catalogSourceNamespace": "olm",
                       "package": "percona-server-mongodb-operator", "channel": "stable",
                       "installMode": "AllNamespaces"}),
            ),
        )
        .await
        .unwrap();
    refused_with(&engines, "postgresql", &["package cluster-admin-operator"]).await;
    refused_with(
        &engines,
        "mysql",
        &[&format!("CatalogSource {}/private", ns.name)],
    )
    .await;
    refused_with(&engines, "mongodb", &["installMode AllNamespaces"]).await;
    // Only what was refused is named.
    let mysql = ready_message(&engines.get("mysql").await.unwrap());
    assert!(!mysql.contains("package"), "{mysql}");
    // Several reconciles later (1 s detection interval): still nothing.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_nothing_subscribed(&ns, "refused installs subscribe to nothing").await;
    assert_no_operator_group_of_ours(&ns, "refused installs create no OperatorGroup").await;

    // OwnNamespace asked for, but the namespace's (foreign) OperatorGroup
    // serves every namespace: that is the install mode OLM would use.
    let everyone: OperatorGroup = serde_json::from_value(json!({
        "apiVersion": "operators.coreos.com/v1", "kind": "OperatorGroup",
        "metadata": {"name": "everyone"}, "spec": {},
    }))
    .unwrap();
    ns.api::<OperatorGroup>()
        .create(&PostParams::default(), &everyone)
        .await
        .unwrap();
    engines
        .patch(
            "mongodb",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"operator": {"olm": {"installMode": "OwnNamespace"}}}})),
        )
        .await
        .unwrap();
    refused_with(
        &engines,
        "mongodb",
        &["OperatorGroup everyone serves all namespaces"],
    )
    .await;
    assert_nothing_subscribed(&ns, "an all-namespaces OperatorGroup subscribes to nothing").await;

    // Nor may it target other namespaces: OLM would grant the operator RBAC
    // there (SingleNamespace, MultiNamespace; a label selector counts as
    // MultiNamespace, whatever it selects today).
    for (spec, parts) in [
        (
            json!({"targetNamespaces": ["other-tenant"]}),
            vec![
                "targets namespaces [other-tenant]".to_owned(),
                "installMode SingleNamespace".to_owned(),
            ],
        ),
        (
            json!({"targetNamespaces": [ns.name, "kube-system"]}),
            vec![
                format!("targets namespaces [{}, kube-system]", ns.name),
                "installMode MultiNamespace".to_owned(),
            ],
        ),
        (
            json!({"targetNamespaces": null, "selector": {"matchLabels": {"tenant": "team-a"}}}),
            vec![
                "with a label selector".to_owned(),
                "installMode MultiNamespace".to_owned(),
            ],
        ),
    ] {
        ns.api::<OperatorGroup>()
            .patch(
                "everyone",
                &PatchParams::default(),
                &Patch::Merge(json!({ "spec": spec })),
            )
            .await
            .unwrap();
        let parts: Vec<&str> = parts.iter().map(String::as_str).collect();
        refused_with(&engines, "mongodb", &parts).await;
        assert_nothing_subscribed(&ns, &format!("OperatorGroup {spec}")).await;
    }

    // The group serves this namespace only: what is allowed installs.
    ns.api::<OperatorGroup>()
        .patch(
            "everyone",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"targetNamespaces": [ns.name], "selector": null}})),
        )
        .await
        .unwrap();
    let subscription = engine_object(
        &subscriptions,
        "percona-server-mongodb-operator",
        "the Subscription once everything asked for is allowed",
        |s: &Subscription| s.spec.install_plan_approval.as_deref() == Some("Manual"),
    )
    .await;
    assert_eq!(
        (
            subscription.spec.source.as_str(),
            subscription.spec.source_namespace.as_str()
        ),
        ("operatorhubio-catalog", "olm")
    );

    // Checked again at approval: a plan for our allowed Subscription that
    // would also install a CSV of another package is never approved.
    let csvs = "percona-server-mongodb-operator.v1.20.1";
    let plan: InstallPlan = serde_json::from_value(json!({
        "apiVersion": OLM, "kind": "InstallPlan",
        "metadata": {"name": "install-1", "ownerReferences": [{
            "apiVersion": OLM, "kind": "Subscription",
            "name": subscription.name_any(), "uid": subscription.uid().unwrap(),
            "blockOwnerDeletion": false, "controller": false}]},
        "spec": {"approval": "Manual", "approved": false,
                 "clusterServiceVersionNames": [csvs, "cluster-admin.v1.0.0"], "generation": 1},
    }))
    .unwrap();
    plans.create(&PostParams::default(), &plan).await.unwrap();
    plans
        .patch_status(
            "install-1",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"phase": "RequiresApproval", "catalogSources": []}})),
        )
        .await
        .unwrap();
    olm_subscription_status(
        &subscriptions,
        "percona-server-mongodb-operator",
        json!({"installPlanRef": plan_ref(&ns.name, "install-1"),
               "currentCSV": csvs, "state": "UpgradePending"}),
    )
    .await;
    engine_where(
        &engines,
        "mongodb",
        "OperatorInstallNotAllowed naming the foreign CSV",
        |e| {
            ready_reason(e) == Some("OperatorInstallNotAllowed")
                && ready_message(e).contains("cluster-admin.v1.0.0")
        },
    )
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(
        !approved(&plans, "install-1").await,
        "a plan with a CSV off the allowlist was approved"
    );

    // The refused engines still have nothing.
    for name in ["postgresql", "mysql"] {
        assert_eq!(
            ready_reason(&engines.get(name).await.unwrap()),
            Some("OperatorInstallNotAllowed"),
            "{name}"
        );
    }
    let names: Vec<String> = subscriptions
        .list(&Default::default())
        .await
        .unwrap()
        .items
        .iter()
        .map(|s| s.name_any())
        .collect();
    assert_eq!(names, vec!["percona-server-mongodb-operator".to_owned()]);
}
