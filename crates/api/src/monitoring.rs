//! `MonitoringConfig`: where metrics go, reusable by many clusters.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

/// The key of the credentials Secret that holds the API key or token.
pub const CREDENTIALS_KEY: &str = "apiKey";

/// Where a cluster's metrics go: PMM, Prometheus, Datadog or New Relic.
/// Credentials stay in the referenced Secret; they are never copied into a
/// cluster spec.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[kube(
    group = "dbaas.io",
    version = "v1",
    kind = "MonitoringConfig",
    namespaced,
    status = "MonitoringConfigStatus",
    shortname = "dbmc",
    category = "dbaas",
    doc = "Where metrics go, reusable by many clusters.",
    printcolumn(name = "Type", type_ = "string", json_path = ".spec.type"),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("self.type != 'pmm' || has(self.pmm)").message("type pmm needs the pmm section").reason(Reason::FieldValueRequired).field_path(".pmm"),
    validation = Rule::new("self.type == 'prometheus' || has(self.credentialsSecretName)").message("credentialsSecretName is required for pmm, datadog and newrelic").reason(Reason::FieldValueRequired).field_path(".credentialsSecretName")
)]
pub struct MonitoringConfigSpec {
    /// pmm, prometheus, datadog or newrelic.
    #[serde(rename = "type")]
    pub type_: MonitoringType,
    /// PMM server settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pmm: Option<PmmSpec>,
    /// Prometheus settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prometheus: Option<PrometheusSpec>,
    /// Secret in this namespace with the credentials under the key `apiKey`
    /// (PMM: the PMM 3 service account token, or the PMM 2 API key when the
    /// PMM client image is a 2.x one; Datadog / New Relic: the API key). The
    /// operator copies it into the engine's own Secret, never into a spec.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials_secret_name: Option<String>,
    /// Namespaces whose clusters may use this config; empty means only this one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowed_namespaces: Vec<String>,
    /// Verify the monitoring server's TLS certificate.
    #[serde(default = "default_true", rename = "verifyTLS")]
    pub verify_tls: bool,
}

fn default_true() -> bool {
    true
}

/// Monitoring back ends.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum MonitoringType {
    Pmm,
    Prometheus,
    Datadog,
    Newrelic,
}

/// PMM server settings.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct PmmSpec {
    /// URL of the PMM server.
    #[x_kube(validation = Rule::new("isURL(self)").message("pmm.url must be a URL"))]
    pub url: String,
    /// PMM client image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
}

/// Prometheus settings.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct PrometheusSpec {
    /// Create PodMonitors (prometheus-operator) for the clusters.
    #[serde(default)]
    pub pod_monitor: bool,
}

/// Observed state of a MonitoringConfig.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct MonitoringConfigStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Clusters using this config.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub in_use_by: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}
