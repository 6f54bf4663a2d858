//! The `dbaas.io/v1` API: custom resource types, their validation rules and
//! defaults. This crate does no I/O; the operator, the REST API and the CLI all
//! share it.
//!
//! Validation lives in two places on purpose:
//! - what the API server can judge alone (shapes, ranges, immutability, scale
//!   steps) is written as OpenAPI constraints and CEL rules on the types, so a
//!   bad object is rejected at `kubectl apply` time;
//! - what needs other objects (is the version allowed, is the engine operator
//!   installed) is judged by the operator and reported as a status condition.

// kube-derive's `printcolumn(name = .., type_ = ..)` repeats keys across
// columns, which this lint mistakes for duplicated attributes.
#![allow(clippy::duplicated_attributes)]

pub mod backup;
pub mod backup_storage;
pub mod claim;
pub mod cluster;
pub mod common;
pub mod connection;
pub mod crds;
pub mod engine;
pub mod lenient;
pub mod manifests;
pub mod monitoring;
pub mod ops;
pub mod rbac;
pub mod reference;
pub mod server;
pub mod template;
pub mod version;

pub use backup::{DatabaseBackup, DatabaseBackupSpec};
pub use backup_storage::{BackupStorage, BackupStorageSpec};
pub use claim::{DatabaseClaim, DatabaseClaimSpec};
pub use cluster::{DatabaseCluster, DatabaseClusterSpec, DatabaseClusterStatus};
pub use common::EngineType;
pub use engine::{DatabaseEngine, DatabaseEngineSpec};
pub use monitoring::{MonitoringConfig, MonitoringConfigSpec};
pub use ops::{OpsRequest, OpsRequestSpec};
pub use server::{DatabaseServer, DatabaseServerSpec};
pub use template::{
    BackupScheduleTemplate, BackupScheduleTemplateSpec, DatabaseClusterTemplate,
    DatabaseClusterTemplateSpec,
};

/// The API group of every kind in this crate.
pub const GROUP: &str = "dbaas.io";
/// The one served and stored version.
pub const VERSION: &str = "v1";
