//! DatabaseEngine status from what was detected. Pure.

use dbaas_api::common::condition;
use dbaas_api::engine::{
    DatabaseEngine, DatabaseEngineStatus, EngineOperatorStatus, EngineVersion,
    OperatorInstallSource,
};
use dbaas_engines::EngineProvider;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

/// What the controller found in the cluster about an engine operator.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Detection {
    /// The engine operator's CRD is served.
    pub crd_installed: bool,
    /// The engine operator's image, if its Deployment was found.
    pub operator_image: Option<String>,
}

/// Image repositories (without registry) of each engine operator, as its
/// provider declares them.
pub fn operator_image_repositories(engine: dbaas_api::EngineType) -> &'static [&'static str] {
    dbaas_engines::provider_for(engine).map_or(&[], |p| p.operator_images())
}

/// Whether `image` is one of the engine operator's images.
pub fn is_operator_image(engine: dbaas_api::EngineType, image: &str) -> bool {
    let repository = image_repository(image);
    operator_image_repositories(engine)
        .iter()
        .any(|known| repository == *known || repository.ends_with(&format!("/{known}")))
}

/// `registry/org/name:tag@digest` -> `registry/org/name`.
fn image_repository(image: &str) -> &str {
    let without_digest = image.split('@').next().unwrap_or(image);
    match without_digest.rfind(':') {
        // A colon after the last slash is a tag; before it, a registry port.
        Some(colon) if colon > without_digest.rfind('/').unwrap_or(0) => &without_digest[..colon],
        _ => without_digest,
    }
}

/// The operator version from its image tag: `.../cloudnative-pg:1.27.1` ->
/// `1.27.1` (a leading `v` dropped). None for digests only or `latest`.
pub fn version_from_image(image: &str) -> Option<String> {
    let without_digest = image.split('@').next().unwrap_or(image);
    let tag = &without_digest[image_repository(without_digest).len()..];
    let tag = tag.strip_prefix(':')?;
    let tag = tag.strip_prefix('v').unwrap_or(tag);
    (tag.chars().next().is_some_and(|c| c.is_ascii_digit())).then(|| tag.to_owned())
}

/// The status of `engine` given what was detected.
pub fn compose(
    engine: &DatabaseEngine,
    provider: &dyn EngineProvider,
    detection: &Detection,
    olm: Option<&super::olm::Judgement>,
    now: &Time,
) -> DatabaseEngineStatus {
    let spec = &engine.spec;
    let previous = engine.status.clone().unwrap_or_default();
    let mut offered = provider.versions();
    for (version, image) in &spec.images {
        match offered.iter_mut().find(|v| &v.version == version) {
            Some(existing) => existing.image.clone_from(image),
            None => offered.push(dbaas_engines::ResolvedVersion {
                version: version.clone(),
                image: image.clone(),
            }),
        }
    }
    let default_version = Some(dbaas_engines::default_version(provider, Some(spec)));
    let available_versions = offered
        .into_iter()
        .map(|v| EngineVersion {
            allowed: spec.allows(&v.version),
            default: default_version.as_deref() == Some(v.version.as_str()),
            version: v.version,
            image: v.image,
        })
        .collect();

    let (status, reason, message) = match olm {
        Some(judgement) => (
            judgement.status,
            judgement.reason,
            judgement.message.clone(),
        ),
        None => manifest_state(provider, detection),
    };
    let ready = status == EngineOperatorStatus::Installed;
    let since = |type_: &str, value: bool| {
        previous
            .conditions
            .iter()
            .find(|c| c.type_ == type_ && (c.status == "True") == value)
            .map(|c| c.last_transition_time.clone())
            .unwrap_or_else(|| now.clone())
    };
    let make = |type_: &str, value: bool, reason: &str, message: String| Condition {
        type_: type_.to_owned(),
        status: if value { "True" } else { "False" }.to_owned(),
        reason: reason.to_owned(),
        message,
        observed_generation: engine.metadata.generation,
        last_transition_time: since(type_, value),
    };
    let mut conditions = vec![make(condition::READY, ready, reason, message)];
    let (install_source, operator_version, installed_csv, upgrade_available) = match olm {
        Some(judgement) => {
            let (value, reason, message) = judgement.upgrade_condition.clone();
            conditions.push(make(UPGRADE_AVAILABLE, value, reason, message));
            if let Some((value, reason, message)) = judgement.subscriptions_condition.clone() {
                conditions.push(make(
                    super::olm::FOREIGN_SUBSCRIPTIONS,
                    value,
                    reason,
                    message,
                ));
            }
            (
                Some(OperatorInstallSource::Olm),
                judgement.operator_version.clone(),
                judgement.installed_csv.clone(),
                judgement.upgrade.clone(),
            )
        }
        None => (
            ready.then_some(OperatorInstallSource::Manifest),
            detection
                .operator_image
                .as_deref()
                .and_then(version_from_image),
            None,
            None,
        ),
    };
    DatabaseEngineStatus {
        observed_generation: engine.metadata.generation,
        status: Some(status),
        operator_version,
        install_source,
        installed_csv,
        upgrade_available,
        available_versions,
        default_version,
        conditions,
    }
}

/// The condition saying whether an operator upgrade waits for the SRE.
pub const UPGRADE_AVAILABLE: &str = "UpgradeAvailable";

/// Installed / Installing / NotInstalled from the CRD and Deployment found.
fn manifest_state(
    provider: &dyn EngineProvider,
    detection: &Detection,
) -> (EngineOperatorStatus, &'static str, String) {
    match (detection.crd_installed, &detection.operator_image) {
        (false, _) => (
            EngineOperatorStatus::NotInstalled,
            "CRDNotServed",
            format!(
                "the {} CRD {} is not served",
                provider.operator_name(),
                provider.resource().plural
            ),
        ),
        (true, None) => (
            EngineOperatorStatus::Installing,
            "DeploymentNotFound",
            format!(
                "the {} CRDs are installed but no operator Deployment running {} was found",
                provider.operator_name(),
                operator_image_repositories(provider.engine()).join(" or ")
            ),
        ),
        (true, Some(image)) => (
            EngineOperatorStatus::Installed,
            "OperatorInstalled",
            format!("{} runs {image}", provider.operator_name()),
        ),
    }
}

#[cfg(test)]
mod tests {
    use dbaas_api::EngineType;
    use dbaas_engines::cnpg::Cnpg;
    use k8s_openapi::jiff::Timestamp;

    use super::*;

    fn now() -> Time {
        Time("2026-01-01T00:00:00Z".parse::<Timestamp>().unwrap())
    }

    fn engine(yaml_spec: &str) -> DatabaseEngine {
        serde_saphyr::from_str(&format!(
            "apiVersion: dbaas.io/v1\nkind: DatabaseEngine\nmetadata: {{name: postgresql, namespace: ns, generation: 2}}\nspec: {yaml_spec}"
        ))
        .unwrap()
    }

    #[test]
    fn operator_version_comes_from_the_image_tag() {
        assert_eq!(
            version_from_image("ghcr.io/cloudnative-pg/cloudnative-pg:1.27.1").as_deref(),
            Some("1.27.1")
        );
        assert_eq!(
            version_from_image("percona/percona-xtradb-cluster-operator:v1.18.0").as_deref(),
            Some("1.18.0")
        );
        assert_eq!(
            version_from_image("registry:5000/cloudnative-pg/cloudnative-pg:1.26.0@sha256:abc")
                .as_deref(),
            Some("1.26.0")
        );
        assert_eq!(
            version_from_image("ghcr.io/cloudnative-pg/cloudnative-pg:latest"),
            None
        );
        assert_eq!(
            version_from_image("ghcr.io/cloudnative-pg/cloudnative-pg@sha256:abc"),
            None
        );
    }

    #[test]
    fn operator_images_are_recognised_whatever_the_registry() {
        assert!(is_operator_image(
            EngineType::Postgresql,
            "ghcr.io/cloudnative-pg/cloudnative-pg:1.27.1"
        ));
        assert!(is_operator_image(
            EngineType::Postgresql,
            "registry:5000/mirror/cloudnative-pg/cloudnative-pg:1"
        ));
        assert!(!is_operator_image(
            EngineType::Postgresql,
            "ghcr.io/cloudnative-pg/postgresql:16.4"
        ));
        assert!(is_operator_image(
            EngineType::Mongodb,
            "percona/percona-server-mongodb-operator:1.20.1"
        ));
    }

    #[test]
    fn installed_operator_with_policy() {
        let e =
            engine("{type: postgresql, allowedVersions: ['16.4', '17.6'], defaultVersion: '16.4'}");
        let detection = Detection {
            crd_installed: true,
            operator_image: Some("ghcr.io/cloudnative-pg/cloudnative-pg:1.27.1".into()),
        };
        let s = compose(&e, &Cnpg, &detection, None, &now());
        assert_eq!(s.status, Some(EngineOperatorStatus::Installed));
        assert_eq!(s.operator_version.as_deref(), Some("1.27.1"));
        assert_eq!(s.install_source, Some(OperatorInstallSource::Manifest));
        assert_eq!(s.default_version.as_deref(), Some("16.4"));
        let allowed: Vec<_> = s
            .available_versions
            .iter()
            .filter(|v| v.allowed)
            .map(|v| v.version.as_str())
            .collect();
        assert_eq!(allowed, vec!["17.6", "16.4"]);
        assert!(
            s.available_versions
                .iter()
                .any(|v| v.version == "16.4" && v.default)
        );
        assert_eq!(s.conditions[0].status, "True");
        assert_eq!(s.observed_generation, Some(2));
    }

    #[test]
    fn default_falls_back_to_an_allowed_version() {
        // The built-in default (17.6) is not allowed: the newest allowed one is the default.
        let e = engine("{type: postgresql, allowedVersions: ['15.3', '16.2']}");
        let s = compose(&e, &Cnpg, &Detection::default(), None, &now());
        assert_eq!(s.default_version.as_deref(), Some("16.2"));
    }

    #[test]
    fn missing_crd_and_missing_deployment_are_told_apart() {
        let e = engine("{type: postgresql}");
        let s = compose(&e, &Cnpg, &Detection::default(), None, &now());
        assert_eq!(
            (s.status, s.conditions[0].reason.as_str()),
            (Some(EngineOperatorStatus::NotInstalled), "CRDNotServed")
        );
        let s = compose(
            &e,
            &Cnpg,
            &Detection {
                crd_installed: true,
                operator_image: None,
            },
            None,
            &now(),
        );
        assert_eq!(
            (s.status, s.conditions[0].reason.as_str()),
            (Some(EngineOperatorStatus::Installing), "DeploymentNotFound")
        );
        assert_eq!(s.default_version.as_deref(), Some("17.6"));
    }

    #[test]
    fn extra_images_are_offered() {
        let e = engine("{type: postgresql, images: {'17.99': 'mirror/pg:17.99'}}");
        let s = compose(&e, &Cnpg, &Detection::default(), None, &now());
        assert!(
            s.available_versions
                .iter()
                .any(|v| v.version == "17.99" && v.image == "mirror/pg:17.99" && v.allowed)
        );
    }
}
