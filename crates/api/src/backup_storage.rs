//! `BackupStorage`: where backups go, and who may use it.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

/// A place backups are written to: S3-compatible, GCS, Azure Blob, or a
/// filesystem volume (NFS / PVC), with the Secret holding its credentials.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[kube(
    group = "dbaas.io",
    version = "v1",
    kind = "BackupStorage",
    namespaced,
    status = "BackupStorageStatus",
    shortname = "dbbs",
    category = "dbaas",
    doc = "Where backups go and the Secret holding the credentials.",
    printcolumn(name = "Type", type_ = "string", json_path = ".spec.type"),
    printcolumn(name = "Bucket", type_ = "string", json_path = ".spec.bucket"),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("self.type == 'filesystem' || has(self.bucket)").message("bucket is required for s3, gcs and azure").reason(Reason::FieldValueRequired).field_path(".bucket"),
    validation = Rule::new("self.type == 'filesystem' || has(self.credentialsSecretName)").message("credentialsSecretName is required for s3, gcs and azure").reason(Reason::FieldValueRequired).field_path(".credentialsSecretName"),
    validation = Rule::new("self.type != 'filesystem' || has(self.persistentVolumeClaim)").message("persistentVolumeClaim is required for filesystem").reason(Reason::FieldValueRequired).field_path(".persistentVolumeClaim")
)]
pub struct BackupStorageSpec {
    /// s3, gcs, azure or filesystem.
    #[serde(rename = "type")]
    pub type_: BackupStorageType,
    /// Bucket (S3, GCS) or container (Azure).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bucket: Option<String>,
    /// Region (S3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// Endpoint URL of an S3-compatible service (or the Azure blob endpoint).
    #[serde(
        default,
        rename = "endpointURL",
        skip_serializing_if = "Option::is_none"
    )]
    #[x_kube(validation = Rule::new("isURL(self)").message("endpointURL must be a URL"))]
    pub endpoint_url: Option<String>,
    /// Use path-style addressing (needed by most S3-compatible services).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub force_path_style: Option<bool>,
    /// Verify the endpoint's TLS certificate.
    #[serde(default = "default_true", rename = "verifyTLS")]
    pub verify_tls: bool,
    /// Prefix inside the bucket.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    /// Secret with the credentials: S3 `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`,
    /// GCS `GCS_CREDENTIALS`, Azure `AZURE_STORAGE_ACCOUNT_NAME`/`AZURE_STORAGE_ACCOUNT_KEY`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials_secret_name: Option<String>,
    /// PVC holding backups (filesystem type).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub persistent_volume_claim: Option<String>,
    /// Namespaces whose clusters may use this storage; empty means only this one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowed_namespaces: Vec<String>,
}

fn default_true() -> bool {
    true
}

/// Backup storage types.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum BackupStorageType {
    S3,
    Gcs,
    Azure,
    Filesystem,
}

/// Observed state of a BackupStorage.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct BackupStorageStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}
