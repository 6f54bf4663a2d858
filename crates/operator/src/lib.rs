//! The dbaas-operator controllers.
//!
//! Every controller runs the same pipeline: dereference what the object
//! refers to -> validate -> build the desired engine objects (pure, in
//! `dbaas-engines`) -> apply them with server-side apply under one field
//! manager -> write status (conditions, observedGeneration).

pub mod backup;
pub mod claim;
pub mod cluster;
pub mod context;
pub mod engine;
pub mod events;
pub mod leader;
pub mod metrics;
pub mod ops;
pub mod preflight;
pub mod run;
pub mod server;
pub mod tolerant;
pub mod trigger;

pub use run::{OperatorConfig, run};

/// The `reportingController` of our Kubernetes Events.
pub const EVENT_REPORTER: &str = "dbaas-operator";
