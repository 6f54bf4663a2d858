//! Database versions each engine offers, and the choice of one for a cluster
//! under the SRE's policy (a `DatabaseEngine`'s allowed list and default).

use dbaas_api::EngineType;
use dbaas_api::engine::DatabaseEngineSpec;
use dbaas_api::version::{Choice, VersionMatch, choose, nearest_versions};

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
    #[error("{engine} version {detail}")]
    NotOffered {
        engine: EngineType,
        version: String,
        /// Why, naming the offered versions nearest to it.
        detail: String,
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
    let allowed = |version: &str| policy.is_none_or(|p| p.allows(version));
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

    // Built-in versions and the policy's own images; an upstream version
    // resolves to the one build of it on offer.
    let mut offered: Vec<ResolvedVersion> = provider.versions();
    if let Some(policy) = policy {
        offered.retain(|v| !policy.images.contains_key(&v.version));
        offered.extend(
            policy
                .images
                .iter()
                .map(|(version, image)| ResolvedVersion {
                    version: version.clone(),
                    image: image.clone(),
                }),
        );
    }
    let judged: Vec<(&str, bool)> = offered
        .iter()
        .map(|v| {
            (
                v.version.as_str(),
                policy.is_none_or(|p| p.allows(&v.version)),
            )
        })
        .collect();
    let chosen = match choose(&version, &judged) {
        Choice::Use(chosen) => chosen,
        Choice::NotAllowed(_) => {
            return Err(VersionError::NotAllowed {
                engine,
                version,
                allowed: policy
                    .map(|p| p.allowed_versions.join(", "))
                    .unwrap_or_default(),
            });
        }
        Choice::Ambiguous(builds) => {
            return Err(VersionError::NotOffered {
                engine,
                detail: VersionMatch::Ambiguous(builds)
                    .refusal(&version)
                    .unwrap_or_default(),
                version,
            });
        }
        Choice::NotOffered => {
            let near = nearest_versions(&version, offered.iter().map(|v| v.version.as_str()));
            return Err(VersionError::NotOffered {
                engine,
                detail: VersionMatch::Unknown(near)
                    .refusal(&version)
                    .unwrap_or_default(),
                version,
            });
        }
    };
    offered
        .into_iter()
        .find(|v| v.version == chosen)
        .ok_or_else(|| VersionError::NotOffered {
            engine,
            detail: format!("{version:?} is not offered"),
            version: version.clone(),
        })
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
    fn an_upstream_version_resolves_to_the_offered_build() {
        use crate::pxc::Pxc;
        let build = Pxc
            .versions()
            .into_iter()
            .find(|v| v.version.contains('-'))
            .expect("Percona offers builds");
        let (upstream, _) = build.version.split_once('-').unwrap();
        let resolved = resolve_version(&Pxc, Some(upstream), None).unwrap();
        assert_eq!(resolved, build);
        // An SRE who allows the upstream version allows its build.
        let mut p = policy(&[upstream], None);
        p.type_ = EngineType::Mysql;
        assert_eq!(
            resolve_version(&Pxc, Some(upstream), Some(&p)).unwrap(),
            build
        );
        // Through the policy's images too, with the nearest named otherwise.
        let mut p = policy(&[], None);
        p.images
            .insert("17.99-1".into(), "registry.local/pg:17.99-1".into());
        assert_eq!(
            resolve_version(&Cnpg, Some("17.99"), Some(&p))
                .unwrap()
                .version,
            "17.99-1"
        );
        let err = resolve_version(&Cnpg, Some("17.98"), Some(&p)).unwrap_err();
        assert!(err.to_string().contains("nearest offered"), "{err}");
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
