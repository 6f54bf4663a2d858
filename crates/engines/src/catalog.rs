//! Database versions each engine offers, and the choice of one for a cluster
//! under the SRE's policy (a `DatabaseEngine`'s allowed list and default).

use dbaas_api::EngineType;
use dbaas_api::engine::DatabaseEngineSpec;

use crate::provider::EngineProvider;

/// A version chosen for a cluster, with the image that runs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResolvedVersion {
    pub version: String,
    pub image: String,
}

/// Why no version could be chosen.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VersionError {
    #[error("{engine} version {version:?} is not offered; offered versions include {offered}")]
    NotOffered {
        engine: EngineType,
        version: String,
        offered: String,
    },
    #[error(
        "{engine} version {version:?} is not allowed by the DatabaseEngine; allowed: {allowed}"
    )]
    NotAllowed {
        engine: EngineType,
        version: String,
        allowed: String,
    },
}

/// Versions named by their image tags: `<image>:<tag>` for each tag.
pub fn tagged_versions(image: &str, tags: &[&str]) -> Vec<ResolvedVersion> {
    tags.iter()
        .map(|tag| ResolvedVersion {
            version: (*tag).to_owned(),
            image: format!("{image}:{tag}"),
        })
        .collect()
}

/// The version a cluster that names none gets: the SRE's default; else the
/// provider's recommended one if the SRE allows it; else the newest allowed
/// offered version. The DatabaseEngine status shows this same answer.
pub fn default_version(
    provider: &dyn EngineProvider,
    policy: Option<&DatabaseEngineSpec>,
) -> String {
    let allowed = |version: &str| {
        policy.is_none_or(|p| {
            p.allowed_versions.is_empty() || p.allowed_versions.iter().any(|v| v == version)
        })
    };
    if let Some(default) = policy.and_then(|p| p.default_version.clone()) {
        return default;
    }
    let recommended = provider.default_version();
    if allowed(recommended) {
        return recommended.to_owned();
    }
    provider
        .versions()
        .into_iter()
        .map(|v| v.version)
        .chain(policy.into_iter().flat_map(|p| p.images.keys().cloned()))
        .find(|v| allowed(v))
        .unwrap_or_else(|| recommended.to_owned())
}

/// Chooses the version for a cluster: the requested one, or the policy's
/// default, or the built-in default; it must be offered (built in, or added
/// through the policy's `images`) and allowed by the policy.
pub fn resolve_version(
    provider: &dyn EngineProvider,
    requested: Option<&str>,
    policy: Option<&DatabaseEngineSpec>,
) -> Result<ResolvedVersion, VersionError> {
    let engine = provider.engine();
    let version = match requested {
        Some(requested) => requested.to_owned(),
        None => default_version(provider, policy),
    };

    let extra_image = policy.and_then(|p| p.images.get(&version)).cloned();
    let image = match extra_image {
        Some(image) => image,
        None => provider
            .versions()
            .into_iter()
            .find(|v| v.version == version)
            .map(|v| v.image)
            .ok_or_else(|| VersionError::NotOffered {
                engine,
                version: version.clone(),
                offered: summarize_offered(provider),
            })?,
    };

    if let Some(policy) = policy
        && !policy.allowed_versions.is_empty()
        && !policy.allowed_versions.contains(&version)
    {
        return Err(VersionError::NotAllowed {
            engine,
            version,
            allowed: policy.allowed_versions.join(", "),
        });
    }
    Ok(ResolvedVersion { version, image })
}

/// A short human list: the newest release of each major.
fn summarize_offered(provider: &dyn EngineProvider) -> String {
    let mut majors: Vec<String> = Vec::new();
    for v in provider.versions() {
        let major = v.version.split('.').next().unwrap_or_default().to_owned();
        if !majors
            .iter()
            .any(|m| m.split('.').next() == Some(major.as_str()))
        {
            majors.push(v.version);
        }
    }
    format!("{} (and earlier minors)", majors.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cnpg::{Cnpg, POSTGRESQL_DEFAULT};

    fn policy(allowed: &[&str], default: Option<&str>) -> DatabaseEngineSpec {
        DatabaseEngineSpec {
            type_: EngineType::Postgresql,
            allowed_versions: allowed.iter().map(|s| s.to_string()).collect(),
            default_version: default.map(str::to_owned),
            images: Default::default(),
            operator: None,
        }
    }

    #[test]
    fn requested_version_maps_to_cnpg_image() {
        let v = resolve_version(&Cnpg, Some("16.0"), None).unwrap();
        assert_eq!(v.image, "ghcr.io/cloudnative-pg/postgresql:16.0");
    }

    #[test]
    fn no_version_uses_policy_default_then_builtin_default() {
        let p = policy(&[], Some("15.3"));
        assert_eq!(
            resolve_version(&Cnpg, None, Some(&p)).unwrap().version,
            "15.3"
        );
        assert_eq!(
            resolve_version(&Cnpg, None, None).unwrap().version,
            POSTGRESQL_DEFAULT
        );
    }

    #[test]
    fn unknown_version_is_refused_with_the_offer() {
        let err = resolve_version(&Cnpg, Some("9.6"), None).unwrap_err();
        let text = err.to_string();
        assert!(matches!(err, VersionError::NotOffered { .. }));
        assert!(text.contains("\"9.6\"") && text.contains("17.6"), "{text}");
    }

    #[test]
    fn version_outside_allowed_list_is_refused() {
        let p = policy(&["16.4", "17.6"], None);
        let err = resolve_version(&Cnpg, Some("15.3"), Some(&p)).unwrap_err();
        assert_eq!(
            err,
            VersionError::NotAllowed {
                engine: EngineType::Postgresql,
                version: "15.3".into(),
                allowed: "16.4, 17.6".into()
            }
        );
        assert!(resolve_version(&Cnpg, Some("16.4"), Some(&p)).is_ok());
    }

    #[test]
    fn without_a_default_the_newest_allowed_version_is_used() {
        let p = policy(&["15.3", "16.2"], None);
        assert_eq!(
            resolve_version(&Cnpg, None, Some(&p)).unwrap().version,
            "16.2"
        );
    }

    #[test]
    fn policy_images_add_versions() {
        let mut p = policy(&[], None);
        p.images
            .insert("17.99".into(), "registry.local/pg:17.99".into());
        let v = resolve_version(&Cnpg, Some("17.99"), Some(&p)).unwrap();
        assert_eq!(v.image, "registry.local/pg:17.99");
    }
}
