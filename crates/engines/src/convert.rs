//! Conversion between Kubernetes core types (k8s-openapi) and the engine
//! CRDs' own copies of them (kopium generates a struct per embedded schema,
//! e.g. `ClusterAffinityTolerations` for a `Toleration`). The JSON shapes are
//! the same by construction, so a round trip through `serde_json::Value` is
//! exact.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::provider::BuildError;

/// Re-types `value` as `T` through its JSON form. `field` names the spec
/// field for the error message.
pub(crate) fn retype<S: Serialize, T: DeserializeOwned>(
    field: &'static str,
    value: &S,
) -> Result<T, BuildError> {
    serde_json::to_value(value)
        .and_then(serde_json::from_value)
        .map_err(|source| BuildError::Convert { field, source })
}
