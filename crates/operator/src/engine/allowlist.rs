//! The SRE's allowlist of what a DatabaseEngine may have installed through
//! OLM: packages, catalogs (CatalogSource name and namespace) and install
//! modes. Anyone who may write a DatabaseEngine can ask for an operator;
//! the operator subscribes and approves with its own cluster-wide account,
//! so only what the SRE put on this list (the operator's
//! `--olm-allowlist` / `--olm-allowlist-file` configuration) is installed.
//! Pure: parsing and decisions only.

use std::fmt::Write as _;

use dbaas_api::engine::{OlmInstallMode, OlmSource};
use dbaas_engine_crds::olm_installplan::InstallPlan;
use dbaas_engine_crds::olm_operatorgroup::OperatorGroup;
use dbaas_engine_crds::olm_subscription::Subscription;
use serde::{Deserialize, Serialize};

use super::olm::version_from_csv_name;

/// The Ready condition's reason when the allowlist refuses an install.
pub const NOT_ALLOWED: &str = "OperatorInstallNotAllowed";

/// Where an SRE changes the allowlist (named in refusals).
const WHERE_TO_ALLOW: &str = "an SRE must allow it in the dbaas-operator's OLM allowlist (--olm-allowlist / DBAAS_OLM_ALLOWLIST, Helm value operator.olmAllowlist)";

/// A CatalogSource: its name and namespace.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CatalogRef {
    pub name: String,
    pub namespace: String,
}

impl std::fmt::Display for CatalogRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// What DatabaseEngines may install through OLM. Every key is required: a
/// given allowlist replaces the default as a whole, and an empty list
/// allows nothing of that kind.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OlmAllowlist {
    /// OLM packages (`spec.operator.olm.package`, the Subscription's
    /// `spec.name`). An InstallPlan is approved only when every
    /// ClusterServiceVersion it would install is named after one of them
    /// (`<package>.v<version>`, OLM's convention).
    pub packages: Vec<String>,
    /// CatalogSources, by name and namespace.
    pub catalogs: Vec<CatalogRef>,
    /// Install modes: `OwnNamespace`, `AllNamespaces`.
    pub install_modes: Vec<OlmInstallMode>,
}

/// The packages the product installs by default: the engine operators it
/// drives (CloudNativePG, Percona XtraDB Cluster, Percona Server for
/// MongoDB), as OperatorHub names them.
pub const DEFAULT_PACKAGES: &[&str] = &[
    "cloudnative-pg",
    "percona-xtradb-cluster-operator",
    "percona-server-mongodb-operator",
];

/// The catalog the documentation and `dbaasctl engines install` use:
/// OperatorHub's, as OLM's own install creates it.
pub const DEFAULT_CATALOG: (&str, &str) = ("operatorhubio-catalog", "olm");

impl Default for OlmAllowlist {
    /// The engine operators' packages from OperatorHub's catalog
    /// (`olm/operatorhubio-catalog`), each serving its own namespace only.
    fn default() -> Self {
        Self {
            packages: DEFAULT_PACKAGES.iter().map(|p| (*p).to_owned()).collect(),
            catalogs: vec![CatalogRef {
                name: DEFAULT_CATALOG.0.to_owned(),
                namespace: DEFAULT_CATALOG.1.to_owned(),
            }],
            install_modes: vec![OlmInstallMode::OwnNamespace],
        }
    }
}

/// An allowlist that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum AllowlistError {
    #[error("reading the OLM allowlist file {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "the OLM allowlist is not valid YAML/JSON of the form {{packages: [...], catalogs: [{{name, namespace}}], installModes: [OwnNamespace|AllNamespaces]}}: {0}"
    )]
    Parse(String),
    #[error("the OLM allowlist has an empty {0}")]
    Empty(&'static str),
}

/// What an allowlist refused, for the condition's message.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Refusal {
    pub package: Option<String>,
    pub catalog: Option<CatalogRef>,
    pub install_mode: Option<OlmInstallMode>,
}

impl Refusal {
    fn is_empty(&self) -> bool {
        self.package.is_none() && self.catalog.is_none() && self.install_mode.is_none()
    }

    /// The condition message: what was refused, and who may allow it.
    pub fn message(&self) -> String {
        let mut parts = Vec::new();
        if let Some(package) = &self.package {
            parts.push(format!("package {package}"));
        }
        if let Some(catalog) = &self.catalog {
            parts.push(format!("CatalogSource {catalog}"));
        }
        if let Some(mode) = self.install_mode {
            parts.push(format!("installMode {mode:?}"));
        }
        format!(
            "spec.operator.olm asks for {}, which the operator's OLM allowlist does not allow; nothing was subscribed or approved: {WHERE_TO_ALLOW}",
            parts.join(", ")
        )
    }
}

impl OlmAllowlist {
    /// An allowlist from YAML or JSON text; empty (or blank) text is the
    /// default.
    pub fn parse(text: &str) -> Result<Self, AllowlistError> {
        if text.trim().is_empty() {
            return Ok(Self::default());
        }
        let list: Self =
            serde_saphyr::from_str(text).map_err(|e| AllowlistError::Parse(e.to_string()))?;
        if list.packages.iter().any(|p| p.trim().is_empty()) {
            return Err(AllowlistError::Empty("package name"));
        }
        if list
            .catalogs
            .iter()
            .any(|c| c.name.trim().is_empty() || c.namespace.trim().is_empty())
        {
            return Err(AllowlistError::Empty("catalog name or namespace"));
        }
        Ok(list)
    }

    /// The allowlist from the operator's configuration: the inline value,
    /// else the file, else the default.
    pub fn from_config(inline: Option<&str>, file: Option<&str>) -> Result<Self, AllowlistError> {
        match (inline.filter(|t| !t.trim().is_empty()), file) {
            (Some(text), _) => Self::parse(text),
            (None, Some(path)) if !path.is_empty() => {
                let text =
                    std::fs::read_to_string(path).map_err(|source| AllowlistError::Read {
                        path: path.to_owned(),
                        source,
                    })?;
                Self::parse(&text)
            }
            _ => Ok(Self::default()),
        }
    }

    fn package_allowed(&self, package: &str) -> bool {
        self.packages.iter().any(|p| p == package)
    }

    fn catalog_allowed(&self, name: &str, namespace: &str) -> bool {
        self.catalogs
            .iter()
            .any(|c| c.name == name && c.namespace == namespace)
    }

    fn mode_allowed(&self, mode: OlmInstallMode) -> bool {
        self.install_modes.contains(&mode)
    }

    /// What of a DatabaseEngine's `spec.operator.olm` is not allowed; `None`
    /// when all of it is.
    pub fn refuse(&self, source: &OlmSource) -> Option<Refusal> {
        let refusal = Refusal {
            package: (!self.package_allowed(&source.package)).then(|| source.package.clone()),
            catalog: (!self
                .catalog_allowed(&source.catalog_source, &source.catalog_source_namespace))
            .then(|| CatalogRef {
                name: source.catalog_source.clone(),
                namespace: source.catalog_source_namespace.clone(),
            }),
            install_mode: (!self.mode_allowed(source.install_mode)).then_some(source.install_mode),
        };
        (!refusal.is_empty()).then_some(refusal)
    }

    /// Refuses an existing OperatorGroup (reused as it is) that serves every
    /// namespace when `AllNamespaces` is not allowed: the install mode that
    /// counts is the one OLM will use.
    pub fn refuse_group(&self, group: &OperatorGroup) -> Option<String> {
        if self.mode_allowed(OlmInstallMode::AllNamespaces) || !serves_all_namespaces(group) {
            return None;
        }
        Some(format!(
            "the namespace's OperatorGroup {} serves all namespaces, so OLM would install the operator with installMode AllNamespaces, which the operator's OLM allowlist does not allow; nothing was subscribed or approved: {WHERE_TO_ALLOW}, or the OperatorGroup must target this namespace only",
            kube::ResourceExt::name_any(group)
        ))
    }

    /// Whether a stored Subscription asks for an allowed package from an
    /// allowed catalog (checked again when approving: the Subscription may
    /// have been changed since we applied it).
    pub fn allows_subscription(&self, subscription: &Subscription) -> bool {
        let spec = &subscription.spec;
        self.package_allowed(&spec.name)
            && self.catalog_allowed(&spec.source, &spec.source_namespace)
    }

    /// The ClusterServiceVersions of `plan` that belong to no allowed
    /// package (dependencies OLM resolved from other packages, or a plan
    /// for another package).
    pub fn refused_csvs(&self, plan: &InstallPlan) -> Vec<String> {
        let names = &plan.spec.cluster_service_version_names;
        if names.is_empty() {
            // A plan that names nothing cannot be checked: never approved.
            return vec!["(no ClusterServiceVersion named)".to_owned()];
        }
        names
            .iter()
            .filter(|csv| !self.package_allowed(csv_package(csv)))
            .cloned()
            .collect()
    }

    /// Why `plan`, waiting for approval for `subscription`, may not be
    /// approved; `None` when it may. Checked at approval time, whatever the
    /// DatabaseEngine says: the stored Subscription must ask for an allowed
    /// package from an allowed catalog, and every ClusterServiceVersion of
    /// the plan must belong to an allowed package.
    pub fn refuse_plan(&self, subscription: &Subscription, plan: &InstallPlan) -> Option<String> {
        let plan_name = kube::ResourceExt::name_any(plan);
        if !self.allows_subscription(subscription) {
            let spec = &subscription.spec;
            return Some(format!(
                "InstallPlan {plan_name} is not approved: its Subscription {} asks for package {} from CatalogSource {}/{}, which the operator's OLM allowlist does not allow; {WHERE_TO_ALLOW}",
                kube::ResourceExt::name_any(subscription),
                spec.name,
                spec.source_namespace,
                spec.source
            ));
        }
        let refused = self.refused_csvs(plan);
        (!refused.is_empty()).then(|| {
            format!(
                "InstallPlan {plan_name} is not approved: it would install {}, of no package on the operator's OLM allowlist; {WHERE_TO_ALLOW}",
                refused.join(", ")
            )
        })
    }

    /// One line for the log at start.
    pub fn summary(&self) -> String {
        let mut out = format!("packages [{}]", self.packages.join(", "));
        let catalogs: Vec<String> = self.catalogs.iter().map(ToString::to_string).collect();
        let _ = write!(out, ", catalogs [{}]", catalogs.join(", "));
        let modes: Vec<String> = self
            .install_modes
            .iter()
            .map(|m| format!("{m:?}"))
            .collect();
        let _ = write!(out, ", install modes [{}]", modes.join(", "));
        out
    }
}

/// The package a ClusterServiceVersion name stands for:
/// `cloudnative-pg.v1.27.1` -> `cloudnative-pg`; a name without a version
/// is taken whole.
pub fn csv_package(csv: &str) -> &str {
    match version_from_csv_name(csv) {
        // `<package>.v<version>`: the version and `.v` cut off.
        Some(version) => csv
            .get(..csv.len().saturating_sub(version.len() + 2))
            .unwrap_or(csv),
        None => csv,
    }
}

/// Whether an OperatorGroup serves every namespace: no target namespaces
/// and no selector, or a selector that selects everything.
pub fn serves_all_namespaces(group: &OperatorGroup) -> bool {
    let spec = &group.spec;
    let targets = spec
        .target_namespaces
        .as_ref()
        .is_some_and(|t| t.iter().any(|ns| !ns.is_empty()));
    if targets {
        return false;
    }
    match &spec.selector {
        None => true,
        Some(selector) => {
            selector.match_labels.as_ref().is_none_or(|l| l.is_empty())
                && selector
                    .match_expressions
                    .as_ref()
                    .is_none_or(|e| e.is_empty())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn source(package: &str, catalog: &str, namespace: &str, mode: &str) -> OlmSource {
        serde_json::from_value(json!({
            "catalogSource": catalog, "catalogSourceNamespace": namespace,
            "package": package, "channel": "stable", "installMode": mode,
        }))
        .unwrap()
    }

    #[test]
    fn the_default_covers_the_engine_operators_from_operatorhub_in_their_own_namespace() {
        let list = OlmAllowlist::default();
        for package in [
            "cloudnative-pg",
            "percona-xtradb-cluster-operator",
            "percona-server-mongodb-operator",
        ] {
            assert_eq!(
                list.refuse(&source(
                    package,
                    "operatorhubio-catalog",
                    "olm",
                    "OwnNamespace"
                )),
                None,
                "{package}"
            );
        }
        let refused = list
            .refuse(&source(
                "cluster-admin-operator",
                "evil",
                "team",
                "AllNamespaces",
            ))
            .unwrap();
        assert_eq!(refused.package.as_deref(), Some("cluster-admin-operator"));
        assert_eq!(refused.catalog.as_ref().unwrap().to_string(), "team/evil");
        assert_eq!(refused.install_mode, Some(OlmInstallMode::AllNamespaces));
        let message = refused.message();
        for part in [
            "package cluster-admin-operator",
            "CatalogSource team/evil",
            "installMode AllNamespaces",
            "an SRE must allow it",
        ] {
            assert!(message.contains(part), "{message}");
        }
        // Only what is refused is named.
        let refused = list
            .refuse(&source(
                "cloudnative-pg",
                "operatorhubio-catalog",
                "olm",
                "AllNamespaces",
            ))
            .unwrap();
        assert_eq!(
            refused,
            Refusal {
                install_mode: Some(OlmInstallMode::AllNamespaces),
                ..Refusal::default()
            }
        );
        // The same catalog name in another namespace is another catalog.
        assert!(
            list.refuse(&source(
                "cloudnative-pg",
                "operatorhubio-catalog",
                "team",
                "OwnNamespace"
            ))
            .unwrap()
            .catalog
            .is_some()
        );
    }

    #[test]
    fn allowlists_parse_from_yaml_and_json_and_replace_the_default() {
        let yaml = "packages: [my-operator]\ncatalogs:\n  - {name: internal, namespace: olm-catalogs}\ninstallModes: [OwnNamespace, AllNamespaces]\n";
        let json_text = r#"{"packages": ["my-operator"], "catalogs": [{"name": "internal", "namespace": "olm-catalogs"}], "installModes": ["OwnNamespace", "AllNamespaces"]}"#;
        let expected = OlmAllowlist {
            packages: vec!["my-operator".into()],
            catalogs: vec![CatalogRef {
                name: "internal".into(),
                namespace: "olm-catalogs".into(),
            }],
            install_modes: vec![OlmInstallMode::OwnNamespace, OlmInstallMode::AllNamespaces],
        };
        assert_eq!(OlmAllowlist::parse(yaml).unwrap(), expected);
        assert_eq!(OlmAllowlist::parse(json_text).unwrap(), expected);
        assert_eq!(
            OlmAllowlist::from_config(Some(""), None).unwrap(),
            OlmAllowlist::default()
        );
        assert_eq!(
            OlmAllowlist::from_config(None, None).unwrap(),
            OlmAllowlist::default()
        );
        // The default round-trips through its own JSON (what the chart renders).
        let default_json = serde_json::to_string(&OlmAllowlist::default()).unwrap();
        assert_eq!(
            OlmAllowlist::parse(&default_json).unwrap(),
            OlmAllowlist::default()
        );
        // Nothing is allowed by an empty list; a missing key, a typo or a
        // bad mode is refused at start, not read as "allow everything".
        let empty = OlmAllowlist::parse("{packages: [], catalogs: [], installModes: []}").unwrap();
        assert!(
            empty
                .refuse(&source(
                    "cloudnative-pg",
                    "operatorhubio-catalog",
                    "olm",
                    "OwnNamespace"
                ))
                .is_some()
        );
        for bad in [
            "{packages: [a]}",
            "{packages: [a], catalogs: [], installModes: [], extra: 1}",
            "{packages: [a], catalogs: [], installModes: [Everywhere]}",
            "{packages: [a], catalogs: [{name: x}], installModes: []}",
            "{packages: [''], catalogs: [], installModes: []}",
            "[1, 2]",
        ] {
            assert!(OlmAllowlist::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_packaged_default_is_the_built_in_default() {
        // The Helm chart, `dbaasctl install` and the OLM bundle render the
        // default from dbaas-api: it must say what the operator does unset.
        let packaged = dbaas_api::manifests::default_olm_allowlist();
        assert_eq!(
            serde_json::to_value(OlmAllowlist::default()).unwrap(),
            packaged
        );
        assert_eq!(
            dbaas_api::manifests::helm::values()["operator"]["olmAllowlist"],
            packaged
        );
        let settings = dbaas_api::manifests::Settings::from_options(
            &dbaas_api::manifests::InstallOptions::default(),
        );
        assert_eq!(
            OlmAllowlist::parse(settings.olm_allowlist.as_str().unwrap()).unwrap(),
            OlmAllowlist::default()
        );
    }

    #[test]
    fn the_allowlist_file_is_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("allowlist.yaml");
        std::fs::write(
            &path,
            "packages: [cloudnative-pg]\ncatalogs: [{name: c, namespace: n}]\ninstallModes: [OwnNamespace]\n",
        )
        .unwrap();
        let list = OlmAllowlist::from_config(None, path.to_str()).unwrap();
        assert_eq!(list.packages, vec!["cloudnative-pg".to_owned()]);
        // The inline value wins over the file.
        let inline = OlmAllowlist::from_config(
            Some("{packages: [x], catalogs: [], installModes: []}"),
            path.to_str(),
        )
        .unwrap();
        assert_eq!(inline.packages, vec!["x".to_owned()]);
        let missing = OlmAllowlist::from_config(None, Some("/nonexistent/allowlist.yaml"));
        assert!(matches!(missing, Err(AllowlistError::Read { .. })));
    }

    #[test]
    fn csvs_belong_to_their_package() {
        assert_eq!(csv_package("cloudnative-pg.v1.27.1"), "cloudnative-pg");
        assert_eq!(
            csv_package("percona-server-mongodb-operator.v1.20.1"),
            "percona-server-mongodb-operator"
        );
        assert_eq!(csv_package("no-version"), "no-version");
        let plan = |csvs: Vec<&str>| -> InstallPlan {
            serde_json::from_value(json!({
                "metadata": {"name": "p"},
                "spec": {"approval": "Manual", "approved": false, "clusterServiceVersionNames": csvs},
            }))
            .unwrap()
        };
        let list = OlmAllowlist::default();
        assert!(
            list.refused_csvs(&plan(vec!["cloudnative-pg.v1.27.1"]))
                .is_empty()
        );
        assert_eq!(
            list.refused_csvs(&plan(vec!["cloudnative-pg.v1.27.1", "etcd.v0.9.4"])),
            vec!["etcd.v0.9.4".to_owned()]
        );
        assert_eq!(list.refused_csvs(&plan(vec![])).len(), 1);
    }

    #[test]
    fn operator_groups_serving_every_namespace_are_told_apart() {
        let group = |spec: serde_json::Value| -> OperatorGroup {
            serde_json::from_value(json!({"metadata": {"name": "g"}, "spec": spec})).unwrap()
        };
        assert!(serves_all_namespaces(&group(json!({}))));
        assert!(serves_all_namespaces(&group(
            json!({"targetNamespaces": [""]})
        )));
        assert!(serves_all_namespaces(&group(json!({"selector": {}}))));
        assert!(!serves_all_namespaces(&group(
            json!({"targetNamespaces": ["team"]})
        )));
        assert!(!serves_all_namespaces(&group(
            json!({"selector": {"matchLabels": {"a": "b"}}})
        )));
        let list = OlmAllowlist::default();
        let refused = list.refuse_group(&group(json!({}))).unwrap();
        assert!(
            refused.contains("OperatorGroup g serves all namespaces"),
            "{refused}"
        );
        assert_eq!(
            list.refuse_group(&group(json!({"targetNamespaces": ["team"]}))),
            None
        );
        let everywhere = OlmAllowlist {
            install_modes: vec![OlmInstallMode::AllNamespaces],
            ..OlmAllowlist::default()
        };
        assert_eq!(everywhere.refuse_group(&group(json!({}))), None);
    }
}
