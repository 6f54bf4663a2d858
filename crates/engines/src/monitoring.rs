//! Monitoring: what a cluster's MonitoringConfig asks of its engine, in terms
//! every provider shares. Each provider then wires what its engine operator
//! supports and reports the rest as not applied.

use dbaas_api::DatabaseClusterSpec;
use dbaas_api::monitoring::{CREDENTIALS_KEY, MonitoringType};
use k8s_openapi::api::core::v1::ResourceRequirements;
use kube::ResourceExt;

use crate::provider::{BuildError, BuildInput, SecretKeyCopy, Unapplied};

/// The PMM client image when the MonitoringConfig names none: the PMM 3
/// client certified with Percona Operator for MongoDB 1.23.0 (its release
/// notes, "Percona certified images"). PMM 3 clients need a PMM 3 server.
pub const DEFAULT_PMM_CLIENT_IMAGE: &str = "percona/pmm-client:3.8.1";

/// What the cluster's monitoring comes down to.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Wiring {
    /// No monitoring asked for.
    None,
    /// A PMM client next to every database pod.
    Pmm(Pmm),
    /// Metrics scraped by Prometheus.
    Prometheus { pod_monitor: bool },
    /// Asked for, but nothing can be wired (the reason is reported).
    NotApplied(Unapplied),
}

/// PMM client settings.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Pmm {
    /// `host[:port]` of the PMM server, from its URL.
    pub server_host: String,
    pub image: String,
    /// A PMM 3 client (service account token) rather than a PMM 2 one (API key).
    pub pmm3: bool,
    pub resources: Option<ResourceRequirements>,
    /// Namespace and name of the MonitoringConfig's credentials Secret.
    pub credentials: Option<(String, String)>,
}

impl Pmm {
    /// The copy of the PMM credentials into the engine's Secret under
    /// `target_key`: the engine operator reads it there and gives it to the
    /// PMM client, so it never appears in a spec.
    pub fn credentials_copy(
        &self,
        target_secret: String,
        target_key: &'static str,
    ) -> Option<SecretKeyCopy> {
        self.credentials
            .as_ref()
            .map(|(namespace, secret)| SecretKeyCopy {
                source_namespace: namespace.clone(),
                source_secret: secret.clone(),
                source_key: CREDENTIALS_KEY,
                target_secret,
                target_key,
            })
    }
}

/// Reads what the cluster's MonitoringConfig asks for.
pub(crate) fn wiring(
    spec: &DatabaseClusterSpec,
    input: &BuildInput<'_>,
) -> Result<Wiring, BuildError> {
    let Some(monitoring) = &spec.monitoring else {
        return Ok(Wiring::None);
    };
    let Some(config) = input.monitoring else {
        return Ok(Wiring::NotApplied(Unapplied {
            field: "monitoring",
            why: "the MonitoringConfig was not looked up, so nothing was wired",
        }));
    };
    let name = config.name_any();
    let invalid = |why: &str| BuildError::Monitoring {
        config: name.clone(),
        why: why.to_owned(),
    };
    Ok(match config.spec.type_ {
        MonitoringType::Pmm => {
            let pmm = config
                .spec
                .pmm
                .as_ref()
                .ok_or_else(|| invalid("type pmm needs the pmm section"))?;
            let server_host = server_host(&pmm.url).ok_or_else(|| {
                invalid("pmm.url has no host; use a URL such as https://pmm.example.com")
            })?;
            let image = pmm
                .image
                .clone()
                .unwrap_or_else(|| DEFAULT_PMM_CLIENT_IMAGE.to_owned());
            Wiring::Pmm(Pmm {
                server_host,
                pmm3: !is_pmm2_client(&image),
                image,
                resources: monitoring.resources.clone(),
                credentials: config
                    .spec
                    .credentials_secret_name
                    .as_ref()
                    .map(|secret| (config.namespace().unwrap_or_default(), secret.clone())),
            })
        }
        MonitoringType::Prometheus => Wiring::Prometheus {
            pod_monitor: config
                .spec
                .prometheus
                .as_ref()
                .is_some_and(|p| p.pod_monitor),
        },
        MonitoringType::Datadog => Wiring::NotApplied(Unapplied {
            field: "monitoring",
            why: "Datadog monitoring is not wired by this operator version (no engine operator has a Datadog agent setting); nothing was configured",
        }),
        MonitoringType::Newrelic => Wiring::NotApplied(Unapplied {
            field: "monitoring",
            why: "New Relic monitoring is not wired by this operator version (no engine operator has a New Relic agent setting); nothing was configured",
        }),
    })
}

/// `host[:port]` of a URL: what Percona's `pmm.serverHost` takes. Any user
/// info is dropped (credentials come from the Secret only).
pub(crate) fn server_host(url: &str) -> Option<String> {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    (!host.is_empty() && !host.starts_with(':')).then(|| host.to_owned())
}

/// Whether a PMM client image is a PMM 2 one (tag `2.x`): those
/// authenticate with an API key, PMM 3 clients with a service account
/// token. Untagged or digest-pinned images count as PMM 3, the current one.
pub(crate) fn is_pmm2_client(image: &str) -> bool {
    if image.contains('@') {
        return false;
    }
    let last_segment = image.rsplit('/').next().unwrap_or(image);
    last_segment
        .split_once(':')
        .is_some_and(|(_, tag)| tag == "2" || tag.starts_with("2."))
}

/// Reported when `monitoring.resources` has no agent to size.
pub(crate) const NO_AGENT_RESOURCES: Unapplied = Unapplied {
    field: "monitoring.resources",
    why: "there is no monitoring agent container to size for this engine and monitoring type",
};

#[cfg(test)]
mod tests {
    use dbaas_api::{DatabaseCluster, EngineType, MonitoringConfig};
    use serde_json::{Value, json};

    use super::*;
    use crate::provider::{BuiltEngine, provider_for};

    fn cluster(engine: EngineType, monitoring: &str) -> DatabaseCluster {
        serde_saphyr::from_str(&format!(
            "apiVersion: dbaas.io/v1\nkind: DatabaseCluster\nmetadata: {{name: db, namespace: team, uid: u1}}\nspec: {{engine: {{type: {engine}}}, clusterSize: 3, storage: {{size: 1Gi}}, monitoring: {monitoring}}}"
        ))
        .unwrap()
    }

    fn config(namespace: &str, spec: &str) -> MonitoringConfig {
        serde_saphyr::from_str(&format!(
            "apiVersion: dbaas.io/v1\nkind: MonitoringConfig\nmetadata: {{name: mon, namespace: {namespace}}}\nspec: {spec}"
        ))
        .unwrap()
    }

    const PMM: &str = "{type: pmm, pmm: {url: 'https://pmm.example.com:8443/'}, credentialsSecretName: pmm-creds}";

    fn build(engine: EngineType, monitoring: &str, config: &MonitoringConfig) -> BuiltEngine {
        let provider = provider_for(engine).unwrap();
        let version = crate::resolve_version(provider, None, None).unwrap();
        provider
            .build(
                &cluster(engine, monitoring),
                &version,
                &BuildInput {
                    monitoring: Some(config),
                    ..Default::default()
                },
            )
            .unwrap()
    }

    fn notes(built: &BuiltEngine) -> Vec<&'static str> {
        built.unapplied.iter().map(|u| u.field).collect()
    }

    fn spec_text(built: &BuiltEngine) -> String {
        built.object.data["spec"].to_string()
    }

    /// Every engine and every monitoring type: what is wired, what is
    /// refused with a note, and that no credential ends up in any object.
    #[test]
    fn every_engine_and_monitoring_type() {
        let reference = "{monitoringConfigName: mon}";
        let pmm = config("team", PMM);
        let prometheus = config("team", "{type: prometheus, prometheus: {podMonitor: true}}");
        let datadog = config("team", "{type: datadog, credentialsSecretName: dd}");
        let newrelic = config("team", "{type: newrelic, credentialsSecretName: nr}");

        // PMM: the Percona CRs get their pmm section and a key copy; CNPG refuses.
        for (engine, key, secret) in [
            (EngineType::Mysql, "pmmservertoken", "db-secrets"),
            (EngineType::Mongodb, "PMM_SERVER_TOKEN", "db-secrets"),
        ] {
            let built = build(engine, reference, &pmm);
            assert_eq!(
                built.object.data["spec"]["pmm"],
                json!({
                    "enabled": true,
                    "serverHost": "pmm.example.com:8443",
                    "image": DEFAULT_PMM_CLIENT_IMAGE,
                }),
                "{engine}"
            );
            assert_eq!(
                built.secret_keys,
                vec![SecretKeyCopy {
                    source_namespace: "team".into(),
                    source_secret: "pmm-creds".into(),
                    source_key: CREDENTIALS_KEY,
                    target_secret: secret.into(),
                    target_key: key,
                }],
                "{engine}"
            );
            assert!(notes(&built).is_empty(), "{engine}: {:?}", built.unapplied);
        }
        let built = build(EngineType::Postgresql, reference, &pmm);
        assert_eq!(notes(&built), vec!["monitoring"]);
        assert!(built.unapplied[0].why.contains("no PMM client"));
        assert!(built.secret_keys.is_empty());
        assert_eq!(built.object.data["spec"].get("monitoring"), None);

        // Prometheus: CNPG's PodMonitor; the Percona operators have only PMM.
        let built = build(EngineType::Postgresql, reference, &prometheus);
        assert_eq!(
            built.object.data["spec"]["monitoring"],
            json!({ "enablePodMonitor": true })
        );
        assert!(notes(&built).is_empty());
        let plain = config("team", "{type: prometheus}");
        let built = build(EngineType::Postgresql, reference, &plain);
        assert_eq!(built.object.data["spec"].get("monitoring"), None);
        assert!(notes(&built).is_empty(), "metrics are exported anyway");
        for engine in [EngineType::Mysql, EngineType::Mongodb] {
            let built = build(engine, reference, &prometheus);
            assert_eq!(notes(&built), vec!["monitoring"], "{engine}");
            assert!(built.unapplied[0].why.contains("PMM only"), "{engine}");
            assert_eq!(built.object.data["spec"].get("pmm"), None);
        }

        // Datadog and New Relic: refused with a reason, for every engine.
        for engine in EngineType::ALL {
            for (config, name) in [(&datadog, "Datadog"), (&newrelic, "New Relic")] {
                let built = build(engine, reference, config);
                assert_eq!(notes(&built), vec!["monitoring"], "{engine} {name}");
                assert!(built.unapplied[0].why.starts_with(name), "{engine} {name}");
                assert!(built.secret_keys.is_empty());
                assert_eq!(built.object.data["spec"].get("pmm"), None);
            }
        }

        // Nothing of the MonitoringConfig's Secret is ever in a spec.
        for engine in EngineType::ALL {
            let built = build(engine, reference, &pmm);
            assert!(!spec_text(&built).contains("pmm-creds"), "{engine}");
        }
    }

    #[test]
    fn pmm_resources_and_pmm2_clients() {
        let with_resources =
            "{monitoringConfigName: mon, resources: {requests: {cpu: 100m, memory: 128Mi}}}";
        let pmm2 = config(
            "shared",
            "{type: pmm, pmm: {url: 'http://pmm2', image: 'percona/pmm-client:2.44.1-1'}, credentialsSecretName: key}",
        );
        let built = build(EngineType::Mysql, with_resources, &pmm2);
        assert_eq!(
            built.object.data["spec"]["pmm"],
            json!({
                "enabled": true,
                "serverHost": "pmm2",
                "image": "percona/pmm-client:2.44.1-1",
                "resources": { "requests": { "cpu": "100m", "memory": "128Mi" } },
            })
        );
        assert_eq!(built.secret_keys[0].target_key, "pmmserverkey");
        assert_eq!(built.secret_keys[0].source_namespace, "shared");
        let built = build(EngineType::Mongodb, with_resources, &pmm2);
        assert_eq!(built.secret_keys[0].target_key, "PMM_SERVER_API_KEY");
        assert_eq!(
            built.object.data["spec"]["pmm"]["resources"],
            json!({ "requests": { "cpu": "100m", "memory": "128Mi" } })
        );
        // CNPG has no agent whose resources could be set.
        let prometheus = config("team", "{type: prometheus}");
        let built = build(EngineType::Postgresql, with_resources, &prometheus);
        assert_eq!(notes(&built), vec!["monitoring.resources"]);
    }

    #[test]
    fn a_pmm_config_without_a_host_is_refused() {
        let provider = provider_for(EngineType::Mysql).unwrap();
        let version = crate::resolve_version(provider, None, None).unwrap();
        let broken = config(
            "team",
            "{type: pmm, pmm: {url: 'https://'}, credentialsSecretName: k}",
        );
        let err = provider
            .build(
                &cluster(EngineType::Mysql, "{monitoringConfigName: mon}"),
                &version,
                &BuildInput {
                    monitoring: Some(&broken),
                    ..Default::default()
                },
            )
            .unwrap_err();
        assert_eq!(err.reason(), "InvalidMonitoringConfig");
        assert!(err.to_string().contains("\"mon\""), "{err}");
    }

    #[test]
    fn monitoring_that_was_not_looked_up_is_reported() {
        for engine in EngineType::ALL {
            let provider = provider_for(engine).unwrap();
            let version = crate::resolve_version(provider, None, None).unwrap();
            let built = provider
                .build(
                    &cluster(engine, "{monitoringConfigName: mon}"),
                    &version,
                    &BuildInput::default(),
                )
                .unwrap();
            assert_eq!(notes(&built), vec!["monitoring"], "{engine}");
            let spec: &Value = &built.object.data["spec"];
            assert_eq!(spec.get("pmm"), None);
        }
    }

    #[test]
    fn server_host_is_the_url_authority() {
        assert_eq!(
            server_host("https://pmm.example.com").as_deref(),
            Some("pmm.example.com")
        );
        assert_eq!(
            server_host("https://admin:secret@pmm.monitoring.svc:8443/graph?x=1").as_deref(),
            Some("pmm.monitoring.svc:8443")
        );
        assert_eq!(server_host("pmm-server").as_deref(), Some("pmm-server"));
        assert_eq!(server_host("https://"), None);
        assert_eq!(server_host("https://:443/"), None);
    }

    #[test]
    fn pmm_generation_comes_from_the_client_image_tag() {
        assert!(is_pmm2_client("percona/pmm-client:2.44.1-1"));
        assert!(is_pmm2_client(
            "registry.local:5000/percona/pmm-client:2.41.0"
        ));
        assert!(is_pmm2_client("percona/pmm-client:2"));
        assert!(!is_pmm2_client("percona/pmm-client:20.1"));
        assert!(!is_pmm2_client("percona/pmm-client:3.8.1"));
        assert!(!is_pmm2_client("registry.local:5000/percona/pmm-client"));
        assert!(!is_pmm2_client("percona/pmm-client@sha256:2abc"));
        assert!(!is_pmm2_client(DEFAULT_PMM_CLIENT_IMAGE));
    }
}
