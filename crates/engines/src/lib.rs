//! Engine providers. Everything here is pure: a DatabaseCluster (plus the
//! resolved version) goes in, the engine operator's resource comes out; the
//! engine resource's status goes in, our unified status vocabulary comes out.
//! The operator crate does all the I/O around these functions.

pub mod backup;
pub mod capabilities;
pub mod catalog;
pub mod cnpg;
mod convert;
pub mod mariadb;
pub mod monitoring;
pub mod provider;
pub mod psmdb;
pub mod pxc;
pub mod restore;
mod shared;

pub use catalog::{ResolvedVersion, VersionError, default_version, resolve_version};
pub use provider::{
    BuildError, BuildInput, BuiltEngine, EngineObservation, EngineProvider, ObserveInput,
    ObservedPhase, SecretKeyCopy, Unapplied, provider_for,
};
