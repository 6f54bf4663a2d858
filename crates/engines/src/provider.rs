//! What every engine provider produces: a built engine resource (or a
//! refusal), and an observation of the engine resource's status in our
//! vocabulary.

use dbaas_api::cluster::ClusterPhase;

/// Why a provider refuses to build the engine resource. Every variant is a
/// user error that shows as the `Valid=False` condition; nothing is created
/// or changed while it holds.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("{feature} is not supported for {engine} clusters yet: {why}")]
    Unsupported {
        engine: &'static str,
        feature: &'static str,
        why: &'static str,
    },
    #[error("spec.{field} cannot be converted for the engine: {source}")]
    Convert {
        field: &'static str,
        #[source]
        source: serde_json::Error,
    },
}

impl BuildError {
    /// The condition reason for this refusal.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Unsupported { .. } => "UnsupportedFeature",
            Self::Convert { .. } => "InvalidSpec",
        }
    }
}

/// A part of the spec the provider accepted but does not apply yet. The
/// cluster is still built; the operator reports these so nobody believes a
/// setting took effect when it did not.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unapplied {
    pub field: &'static str,
    pub why: &'static str,
}

/// Phase in our vocabulary plus the engine's own words for it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObservedPhase {
    pub phase: ClusterPhase,
    /// Machine-readable reason for conditions, e.g. `EngineHealthy`.
    pub reason: &'static str,
    /// The engine operator's own phase text, for people.
    pub message: String,
}

/// What the engine resource's status says about the cluster.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EngineObservation {
    pub phase: ObservedPhase,
    /// Whether the engine has reported on the spec we last applied. Engine
    /// operators without observedGeneration only count once they wrote
    /// status after our apply.
    pub saw_latest_spec: bool,
    pub ready_instances: i32,
    pub host: Option<String>,
    pub port: Option<i32>,
}
