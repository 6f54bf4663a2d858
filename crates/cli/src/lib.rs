//! `dbaasctl`: database clusters, claims and engines through the Kubernetes
//! API, with the kubeconfig's identity (so the cluster's RBAC decides).

pub mod build;
pub mod cli;
pub mod edit;
pub mod engine_operator;
pub mod error;
pub mod install;
pub mod render;
pub mod rest;
pub mod run;

pub use cli::Cli;
pub use error::CliError;
