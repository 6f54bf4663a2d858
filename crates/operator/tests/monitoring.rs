//! MonitoringConfig against the real control plane with the real engine
//! CRDs: PMM wired into the Percona resources with the token copied into the
//! engine's Secret (and nowhere else), Prometheus into CloudNativePG, the
//! rest refused with a reason; edits of the config or its Secret reach the
//! clusters; a missing or forbidden config is a condition.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests state their expectations by unwrapping

mod common;

use std::collections::BTreeMap;

use common::*;
use dbaas_api::common::FIELD_MANAGER;
use dbaas_api::{DatabaseCluster, MonitoringConfig};
use dbaas_engine_crds::cnpg_cluster::Cluster as CnpgCluster;
use dbaas_engine_crds::psmdb_cluster::PerconaServerMongoDb;
use dbaas_engine_crds::pxc_cluster::PerconaXtraDbCluster;
use dbaas_engines::{BuildInput, EngineProvider};
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Patch, PatchParams, PostParams};
use kube::core::{ApiResource, DynamicObject};
use kube::{Api, Client, Resource};
use serde_json::{Value, json};

/// A Secret holding `apiKey`, as an SRE would create it.
async fn create_credentials(api: &Api<Secret>, name: &str, token: &str) {
    let secret = Secret {
        metadata: from_yaml(&format!("name: {name}")),
        data: Some(BTreeMap::from([(
            "apiKey".to_owned(),
            ByteString(token.as_bytes().to_vec()),
        )])),
        ..Default::default()
    };
    api.create(&PostParams::default(), &secret).await.unwrap();
}

async fn set_token(api: &Api<Secret>, name: &str, token: &str) {
    api.patch(
        name,
        &PatchParams::default(),
        &Patch::Merge(json!({ "stringData": { "apiKey": token } })),
    )
    .await
    .unwrap();
}

async fn create_config(api: &Api<MonitoringConfig>, yaml: &str) {
    let config: MonitoringConfig = from_yaml(yaml);
    api.create(&PostParams::default(), &config).await.unwrap();
}

/// The value of `key` in Secret `name`, once `check` holds for it.
async fn secret_key_where(
    api: &Api<Secret>,
    name: &str,
    key: &str,
    what: &str,
    check: impl Fn(Option<&str>) -> bool,
) -> Secret {
    let key = key.to_owned();
    dbaas_testkit::wait_for(api, name, TIMEOUT, what, move |s: Option<&Secret>| {
        let value = s
            .and_then(|s| s.data.as_ref())
            .and_then(|d| d.get(&key))
            .map(|v| String::from_utf8_lossy(&v.0).into_owned());
        check(value.as_deref())
    })
    .await
    .unwrap_or_else(|e| panic!("{e}"))
}

fn key_of(secret: &Secret, key: &str) -> Option<String> {
    secret
        .data
        .as_ref()
        .and_then(|d| d.get(key))
        .map(|v| String::from_utf8_lossy(&v.0).into_owned())
}

/// The engine object as the API server stores it, untyped (a field the
/// schema pruned is missing, not defaulted).
async fn raw<K: Resource<DynamicType = ()>>(
    client: &Client,
    ns: &str,
    name: &str,
) -> DynamicObject {
    Api::<DynamicObject>::namespaced_with(client.clone(), ns, &ApiResource::erase::<K>(&()))
        .get(name)
        .await
        .unwrap()
}

/// What the provider sends for the stored cluster with this MonitoringConfig.
async fn sent_spec(
    provider: &dyn EngineProvider,
    clusters: &Api<DatabaseCluster>,
    name: &str,
    config: &MonitoringConfig,
) -> Value {
    let cluster = clusters.get(name).await.unwrap();
    let version =
        dbaas_engines::resolve_version(provider, cluster.spec.engine.version.as_deref(), None)
            .unwrap();
    let built = provider
        .build(
            &cluster,
            &version,
            &BuildInput {
                monitoring: Some(config),
                ..BuildInput::default()
            },
        )
        .unwrap();
    built.object.data["spec"].clone()
}

const PXC_CLUSTER: &str = r#"
apiVersion: dbaas.io/v1
kind: DatabaseCluster
metadata: {name: pxc-mon}
spec:
  engine: {type: mysql}
  clusterSize: 3
  storage: {size: 1Gi}
  monitoring:
    monitoringConfigName: pmm
    resources: {requests: {cpu: 100m, memory: 128Mi}}
"#;

#[tokio::test]
async fn pmm_reaches_the_pxc_cluster_and_its_token_only_the_secrets_secret() {
    let (client, ns, _operator) = setup("mon-pxc").await;
    let clusters: Api<DatabaseCluster> = ns.api();
    let engines: Api<PerconaXtraDbCluster> = ns.api();
    let secrets: Api<Secret> = ns.api();
    let configs: Api<MonitoringConfig> = ns.api();
    create_credentials(&secrets, "pmm-token", "glsa_first_token").await;
    create_config(
        &configs,
        "apiVersion: dbaas.io/v1\nkind: MonitoringConfig\nmetadata: {name: pmm}\nspec: {type: pmm, pmm: {url: 'https://pmm.example.com/graph'}, credentialsSecretName: pmm-token}",
    )
    .await;
    create_cluster(&clusters, PXC_CLUSTER).await;

    // The PXC object carries Percona's own PMM settings.
    let pxc = engine_object(&engines, "pxc-mon", "PMM in the PXC spec", |c| {
        c.spec.pmm.as_ref().and_then(|p| p.enabled) == Some(true)
    })
    .await;
    let spec = serde_json::to_value(&pxc.spec).unwrap();
    assert_eq!(
        spec["pmm"],
        json!({
            "enabled": true,
            "serverHost": "pmm.example.com",
            "image": dbaas_engines::monitoring::DEFAULT_PMM_CLIENT_IMAGE,
            "resources": { "requests": { "cpu": "100m", "memory": "128Mi" } },
        })
    );
    let config = configs.get("pmm").await.unwrap();
    let stored = raw::<PerconaXtraDbCluster>(&client, &ns.name, "pxc-mon").await;
    assert_not_pruned(
        &sent_spec(&dbaas_engines::pxc::Pxc, &clusters, "pxc-mon", &config).await,
        &stored.data["spec"],
    );

    // The token is in the secrets Secret Percona reads, under its PMM 3 key,
    // owned by our field manager; nowhere in any spec.
    let copied = secret_key_where(
        &secrets,
        "pxc-mon-secrets",
        "pmmservertoken",
        "the token copied",
        |v| v == Some("glsa_first_token"),
    )
    .await;
    let owners: Vec<_> = copied
        .metadata
        .managed_fields
        .iter()
        .flatten()
        .filter(|m| m.manager.as_deref() == Some(FIELD_MANAGER))
        .map(|m| m.fields_v1.as_ref().unwrap().0.to_string())
        .collect();
    assert_eq!(owners.len(), 1, "{owners:?}");
    assert!(owners[0].contains("f:pmmservertoken"), "{owners:?}");
    // The status is written after the apply and the Secret copy.
    let cluster = cluster_where(&clusters, "pxc-mon", "AllSettingsApplied", |c| {
        c.and_then(|c| c.status.as_ref()).is_some_and(|s| {
            s.conditions
                .iter()
                .any(|c| c.type_ == "AllSettingsApplied" && c.status == "True")
        })
    })
    .await;
    for (what, text) in [
        ("the PXC object", serde_json::to_string(&stored).unwrap()),
        (
            "the DatabaseCluster",
            serde_json::to_string(&cluster).unwrap(),
        ),
    ] {
        assert!(!text.contains("glsa_first_token"), "token in {what}");
    }

    // Percona adds its system users to the same Secret; a new token reaches
    // the engine's Secret without touching them.
    let system_users = Secret {
        metadata: from_yaml("name: pxc-mon-secrets"),
        data: Some(BTreeMap::from([
            ("root".to_owned(), ByteString(b"root-password".to_vec())),
            (
                "monitor".to_owned(),
                ByteString(b"monitor-password".to_vec()),
            ),
        ])),
        ..Default::default()
    };
    secrets
        .patch(
            "pxc-mon-secrets",
            &PatchParams::apply("percona-xtradb-cluster-operator"),
            &Patch::Apply(&system_users),
        )
        .await
        .unwrap();
    set_token(&secrets, "pmm-token", "glsa_second_token").await;
    let rotated = secret_key_where(
        &secrets,
        "pxc-mon-secrets",
        "pmmservertoken",
        "the new token copied",
        |v| v == Some("glsa_second_token"),
    )
    .await;
    assert_eq!(key_of(&rotated, "root").as_deref(), Some("root-password"));

    // A MonitoringConfig edit reaches the engine object.
    configs
        .patch(
            "pmm",
            &PatchParams::default(),
            &Patch::Merge(json!({ "spec": { "pmm": {
                "url": "https://pmm.monitoring.svc:8443",
                "image": "percona/pmm-client:2.44.1-1",
            } } })),
        )
        .await
        .unwrap();
    engine_object(&engines, "pxc-mon", "the config edit", |c| {
        c.spec.pmm.as_ref().and_then(|p| p.server_host.as_deref())
            == Some("pmm.monitoring.svc:8443")
    })
    .await;
    // A PMM 2 client reads the API key: ours moves to that key.
    let pmm2 = secret_key_where(
        &secrets,
        "pxc-mon-secrets",
        "pmmserverkey",
        "the PMM 2 key",
        |v| v == Some("glsa_second_token"),
    )
    .await;
    assert_eq!(key_of(&pmm2, "pmmservertoken"), None);

    // Monitoring off: PMM leaves the spec, our key leaves the Secret,
    // Percona's keys stay.
    clusters
        .patch(
            "pxc-mon",
            &PatchParams::default(),
            &Patch::Merge(json!({ "spec": { "monitoring": null } })),
        )
        .await
        .unwrap();
    engine_object(&engines, "pxc-mon", "PMM removed", |c| c.spec.pmm.is_none()).await;
    let cleaned = secret_key_where(
        &secrets,
        "pxc-mon-secrets",
        "pmmserverkey",
        "our key removed",
        |v| v.is_none(),
    )
    .await;
    assert_eq!(key_of(&cleaned, "root").as_deref(), Some("root-password"));
    ns.delete().await.unwrap();
}

#[tokio::test]
async fn a_shared_config_of_another_namespace_must_allow_the_cluster() {
    let (client, ns, _operator) = setup("mon-psmdb").await;
    let shared = dbaas_testkit::TestNamespace::create(&client, "mon-shared")
        .await
        .unwrap();
    let clusters: Api<DatabaseCluster> = ns.api();
    let engines: Api<PerconaServerMongoDb> = ns.api();
    let shared_configs: Api<MonitoringConfig> = shared.api();
    create_credentials(&shared.api(), "pmm-token", "glsa_shared").await;
    create_config(
        &shared_configs,
        "apiVersion: dbaas.io/v1\nkind: MonitoringConfig\nmetadata: {name: private}\nspec: {type: pmm, pmm: {url: 'https://pmm.shared'}, credentialsSecretName: pmm-token}",
    )
    .await;
    create_config(
        &shared_configs,
        &format!(
            "apiVersion: dbaas.io/v1\nkind: MonitoringConfig\nmetadata: {{name: open}}\nspec: {{type: pmm, pmm: {{url: 'https://pmm.shared'}}, credentialsSecretName: pmm-token, allowedNamespaces: [{}]}}",
            ns.name
        ),
    )
    .await;
    let mongo = |name: &str, config: &str| {
        format!(
            "apiVersion: dbaas.io/v1\nkind: DatabaseCluster\nmetadata: {{name: {name}}}\nspec: {{engine: {{type: mongodb}}, clusterSize: 3, storage: {{size: 1Gi}}, monitoring: {{monitoringConfigName: {config}, monitoringConfigNamespace: {}}}}}",
            shared.name
        )
    };

    // Not listed in allowedNamespaces: refused, nothing created.
    create_cluster(&clusters, &mongo("denied", "private")).await;
    let refused = cluster_where(
        &clusters,
        "denied",
        "MonitoringConfigNotAllowed",
        has_condition("Valid", "False", "MonitoringConfigNotAllowed"),
    )
    .await;
    assert!(
        condition(&refused, "Valid")
            .message
            .contains("allowedNamespaces"),
        "{}",
        condition(&refused, "Valid").message
    );
    assert!(engines.get_opt("denied").await.unwrap().is_none());
    assert!(
        ns.api::<Secret>()
            .get_opt("denied-secrets")
            .await
            .unwrap()
            .is_none(),
        "no credentials copied for a refused config"
    );

    // Listed: PMM wired, the token copied across namespaces under PSMDB's key.
    create_cluster(&clusters, &mongo("allowed", "open")).await;
    let psmdb = engine_object(&engines, "allowed", "PMM in the PSMDB spec", |c| {
        c.spec.pmm.is_some()
    })
    .await;
    let pmm = serde_json::to_value(&psmdb.spec.pmm).unwrap();
    assert_eq!(
        (&pmm["enabled"], &pmm["serverHost"]),
        (&json!(true), &json!("pmm.shared"))
    );
    let config = shared_configs.get("open").await.unwrap();
    let stored = raw::<PerconaServerMongoDb>(&client, &ns.name, "allowed").await;
    assert_not_pruned(
        &sent_spec(&dbaas_engines::psmdb::Psmdb, &clusters, "allowed", &config).await,
        &stored.data["spec"],
    );
    secret_key_where(
        &ns.api(),
        "allowed-secrets",
        "PMM_SERVER_TOKEN",
        "the token copied",
        |v| v == Some("glsa_shared"),
    )
    .await;
    assert!(
        !serde_json::to_string(&stored)
            .unwrap()
            .contains("glsa_shared")
    );
    shared.delete().await.unwrap();
    ns.delete().await.unwrap();
}

#[tokio::test]
async fn missing_configs_and_credentials_are_conditions_until_they_exist() {
    let (_client, ns, _operator) = setup("mon-missing").await;
    let clusters: Api<DatabaseCluster> = ns.api();
    let engines: Api<PerconaXtraDbCluster> = ns.api();
    let secrets: Api<Secret> = ns.api();
    let configs: Api<MonitoringConfig> = ns.api();

    create_cluster(&clusters, PXC_CLUSTER).await;
    let refused = cluster_where(
        &clusters,
        "pxc-mon",
        "MonitoringConfigNotFound",
        has_condition("Valid", "False", "MonitoringConfigNotFound"),
    )
    .await;
    assert!(
        condition(&refused, "Valid")
            .message
            .contains("\"pmm\" does not exist"),
        "{}",
        condition(&refused, "Valid").message
    );
    assert!(engines.get_opt("pxc-mon").await.unwrap().is_none());

    // The config appears, its Secret not yet: still refused, now naming it.
    create_config(
        &configs,
        "apiVersion: dbaas.io/v1\nkind: MonitoringConfig\nmetadata: {name: pmm}\nspec: {type: pmm, pmm: {url: 'https://pmm'}, credentialsSecretName: pmm-token}",
    )
    .await;
    let refused = cluster_where(
        &clusters,
        "pxc-mon",
        "MonitoringCredentialsNotFound",
        has_condition("Valid", "False", "MonitoringCredentialsNotFound"),
    )
    .await;
    assert!(
        condition(&refused, "Valid")
            .message
            .contains("\"pmm-token\""),
        "{}",
        condition(&refused, "Valid").message
    );
    assert!(engines.get_opt("pxc-mon").await.unwrap().is_none());

    // The Secret appears (watched): the cluster is created with PMM.
    create_credentials(&secrets, "pmm-token", "glsa_late").await;
    engine_object(
        &engines,
        "pxc-mon",
        "the PXC object once the Secret exists",
        |c| c.spec.pmm.is_some(),
    )
    .await;
    secret_key_where(
        &secrets,
        "pxc-mon-secrets",
        "pmmservertoken",
        "the token copied",
        |v| v == Some("glsa_late"),
    )
    .await;
    cluster_where(
        &clusters,
        "pxc-mon",
        "Valid again",
        has_condition("Valid", "True", "Accepted"),
    )
    .await;
    ns.delete().await.unwrap();
}

#[tokio::test]
async fn prometheus_reaches_cloudnativepg_and_other_back_ends_are_refused_with_reasons() {
    let (client, ns, _operator) = setup("mon-pg").await;
    let clusters: Api<DatabaseCluster> = ns.api();
    let engines: Api<CnpgCluster> = ns.api();
    let configs: Api<MonitoringConfig> = ns.api();
    create_config(
        &configs,
        "apiVersion: dbaas.io/v1\nkind: MonitoringConfig\nmetadata: {name: prom}\nspec: {type: prometheus, prometheus: {podMonitor: true}}",
    )
    .await;
    create_config(
        &configs,
        "apiVersion: dbaas.io/v1\nkind: MonitoringConfig\nmetadata: {name: dd}\nspec: {type: datadog, credentialsSecretName: dd-key}",
    )
    .await;
    create_config(
        &configs,
        "apiVersion: dbaas.io/v1\nkind: MonitoringConfig\nmetadata: {name: pmm}\nspec: {type: pmm, pmm: {url: 'https://pmm'}, credentialsSecretName: pmm-token}",
    )
    .await;
    let pg = |name: &str, config: &str| {
        format!(
            "apiVersion: dbaas.io/v1\nkind: DatabaseCluster\nmetadata: {{name: {name}}}\nspec: {{engine: {{type: postgresql}}, storage: {{size: 1Gi}}, proxy: {{type: pgbouncer}}, monitoring: {{monitoringConfigName: {config}}}}}"
        )
    };

    create_cluster(&clusters, &pg("scraped", "prom")).await;
    let cnpg = engine_object(&engines, "scraped", "the PodMonitor switch", |c| {
        c.spec
            .monitoring
            .as_ref()
            .and_then(|m| m.enable_pod_monitor)
            == Some(true)
    })
    .await;
    let config = configs.get("prom").await.unwrap();
    let stored = raw::<CnpgCluster>(&client, &ns.name, "scraped").await;
    assert_not_pruned(
        &sent_spec(&dbaas_engines::cnpg::Cnpg, &clusters, "scraped", &config).await,
        &stored.data["spec"],
    );
    assert!(cnpg.spec.monitoring.is_some());
    let pooler =
        raw::<dbaas_engine_crds::cnpg_pooler::Pooler>(&client, &ns.name, "scraped-pooler-rw").await;
    assert_eq!(
        pooler.data["spec"]["monitoring"],
        json!({ "enablePodMonitor": true })
    );
    cluster_where(
        &clusters,
        "scraped",
        "all settings applied",
        has_condition("AllSettingsApplied", "True", "AllApplied"),
    )
    .await;

    // Datadog (no Secret needed: nothing is copied) and PMM on CloudNativePG
    // are applied without monitoring and say why.
    for (name, config, says) in [
        ("dogged", "dd", "Datadog monitoring is not wired"),
        ("pmm-pg", "pmm", "CloudNativePG has no PMM client"),
    ] {
        create_cluster(&clusters, &pg(name, config)).await;
        let noted = cluster_where(
            &clusters,
            name,
            "monitoring not applied",
            has_condition("AllSettingsApplied", "False", "SettingsNotApplied"),
        )
        .await;
        let message = condition(&noted, "AllSettingsApplied").message;
        assert!(message.contains(says), "{message}");
        let cnpg = engines.get(name).await.unwrap();
        assert_eq!(cnpg.spec.monitoring, None);
    }
    ns.delete().await.unwrap();
}
