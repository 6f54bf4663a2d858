//! The SRE's allowlist of what a DatabaseEngine may have installed through
//! OLM: packages, catalogs (CatalogSource name and namespace) and install
//! modes. Anyone who may write a DatabaseEngine can ask for an operator;
//! the operator subscribes and approves with its own cluster-wide account,
//! so only what the SRE put on this list (the operator's
//! `--olm-allowlist` / `--olm-allowlist-file` configuration) is installed.
//! Pure: parsing and decisions only.

use std::fmt::Write as _;

use std::collections::BTreeSet;

use dbaas_api::EngineType;
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
    /// Install modes: `OwnNamespace`, `SingleNamespace`, `MultiNamespace`,
    /// `AllNamespaces` (OLM's names). The last three reach namespaces other
    /// than the DatabaseEngine's; only `OwnNamespace` is in the default.
    pub install_modes: Vec<InstallMode>,
}

/// An install mode, as OLM names them: which namespaces the installed
/// operator serves (and gets RBAC in), decided by the namespace's
/// OperatorGroup. A DatabaseEngine asks for `OwnNamespace` or
/// `AllNamespaces` (the OperatorGroup we create); an existing OperatorGroup,
/// reused as it is, may stand for any of them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum InstallMode {
    /// The DatabaseEngine's namespace only.
    OwnNamespace,
    /// One namespace, not the DatabaseEngine's.
    SingleNamespace,
    /// Several namespaces (or a label selector of namespaces).
    MultiNamespace,
    /// Every namespace.
    AllNamespaces,
}

impl From<OlmInstallMode> for InstallMode {
    fn from(mode: OlmInstallMode) -> Self {
        match mode {
            OlmInstallMode::OwnNamespace => Self::OwnNamespace,
            OlmInstallMode::AllNamespaces => Self::AllNamespaces,
        }
    }
}

/// The catalog the documentation and `dbaasctl engines install` use:
/// OperatorHub's, as OLM's own install creates it.
pub const DEFAULT_CATALOG: (&str, &str) = ("operatorhubio-catalog", "olm");

impl Default for OlmAllowlist {
    /// The engine operators' packages from OperatorHub's catalog
    /// (`olm/operatorhubio-catalog`), each serving its own namespace only.
    fn default() -> Self {
        Self {
            packages: EngineType::ALL
                .map(|engine| engine.olm_package().to_owned())
                .to_vec(),
            catalogs: vec![CatalogRef {
                name: DEFAULT_CATALOG.0.to_owned(),
                namespace: DEFAULT_CATALOG.1.to_owned(),
            }],
            install_modes: vec![InstallMode::OwnNamespace],
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
        "the OLM allowlist is not valid YAML/JSON of the form {{packages: [...], catalogs: [{{name, namespace}}], installModes: [OwnNamespace|SingleNamespace|MultiNamespace|AllNamespaces]}}: {0}"
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
    pub install_mode: Option<InstallMode>,
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

    fn mode_allowed(&self, mode: InstallMode) -> bool {
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
            install_mode: Some(InstallMode::from(source.install_mode))
                .filter(|mode| !self.mode_allowed(*mode)),
        };
        (!refusal.is_empty()).then_some(refusal)
    }

    /// Refuses an existing OperatorGroup of `namespace` (reused as it is)
    /// whose install mode is not allowed: the install mode that counts is
    /// the one OLM will use, and OLM grants the operator RBAC in every
    /// namespace the group targets.
    pub fn refuse_group(&self, group: &OperatorGroup, namespace: &str) -> Option<String> {
        let mode = group_install_mode(group, namespace);
        if self.mode_allowed(mode) {
            return None;
        }
        Some(format!(
            "the namespace's OperatorGroup {} {}, so OLM would install the operator with installMode {mode:?}, which the operator's OLM allowlist does not allow; nothing was subscribed or approved: {WHERE_TO_ALLOW}, or the OperatorGroup must target this namespace only",
            kube::ResourceExt::name_any(group),
            group_reach(group, mode)
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

    /// What `plan` would install from a CatalogSource not on the list, as
    /// `<bundle or step> (CatalogSource <namespace>/<name>)`: the bundles
    /// OLM looks up (`status.bundleLookups[].catalogSourceRef`) and the
    /// steps it planned (`status.plan[].resource.sourceName` /
    /// `sourceNamespace`). Empty when OLM recorded neither: then only the
    /// CSV names can be checked.
    pub fn refused_bundle_catalogs(&self, plan: &InstallPlan) -> Vec<String> {
        let Some(status) = plan.status.as_ref() else {
            return Vec::new();
        };
        let lookups = status.bundle_lookups.as_deref().unwrap_or_default();
        let steps = status.plan.as_deref().unwrap_or_default();
        let mut refused: Vec<String> = lookups
            .iter()
            .filter_map(|lookup| {
                let catalog = &lookup.catalog_source_ref;
                let name = catalog.name.as_deref().unwrap_or_default();
                let namespace = catalog.namespace.as_deref().unwrap_or_default();
                // A lookup without a catalog cannot be checked: refused.
                (name.is_empty() || namespace.is_empty() || !self.catalog_allowed(name, namespace))
                    .then(|| format!("{} (CatalogSource {namespace}/{name})", lookup.identifier))
            })
            .collect();
        for step in steps {
            let resource = &step.resource;
            let (name, namespace) = (&resource.source_name, &resource.source_namespace);
            // OLM names the catalog of every step it resolved; one it did
            // not name is judged by the lookups and the CSV names.
            if name.is_empty() || namespace.is_empty() || self.catalog_allowed(name, namespace) {
                continue;
            }
            let what = format!(
                "{} {} (CatalogSource {namespace}/{name})",
                resource.kind, resource.name
            );
            if !refused.contains(&what) {
                refused.push(what);
            }
        }
        refused
    }

    /// Why `plan`, waiting for approval for `subscription`, may not be
    /// approved; `None` when it may. Checked at approval time, whatever the
    /// DatabaseEngine says: the stored Subscription must ask for an allowed
    /// package from an allowed catalog, and every ClusterServiceVersion of
    /// the plan must belong to an allowed package and, where OLM recorded
    /// them (`status.bundleLookups`, `status.plan`), every bundle and step
    /// must come from an allowed catalog (a CSV name proves nothing: any catalog can name a
    /// bundle after an allowed package).
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
        let catalogs = self.refused_bundle_catalogs(plan);
        if !catalogs.is_empty() {
            return Some(format!(
                "InstallPlan {plan_name} is not approved: it would install {}, from no CatalogSource on the operator's OLM allowlist; {WHERE_TO_ALLOW}",
                catalogs.join(", ")
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

/// The install mode OLM uses for an OperatorGroup of `namespace`:
/// - a target namespace `""` (OLM's "all namespaces"), or neither target
///   namespaces nor a selector (or a selector that selects everything):
///   `AllNamespaces`;
/// - a selector that selects something: `MultiNamespace` (which namespaces
///   it selects, now or later, cannot be judged here), whatever the target
///   namespaces;
/// - target namespaces `[namespace]`: `OwnNamespace`; one other namespace:
///   `SingleNamespace`; several: `MultiNamespace`.
pub fn group_install_mode(group: &OperatorGroup, namespace: &str) -> InstallMode {
    let spec = &group.spec;
    let targets = spec.target_namespaces.as_deref().unwrap_or_default();
    if targets.iter().any(String::is_empty) {
        return InstallMode::AllNamespaces;
    }
    if selects_by_label(group) {
        return InstallMode::MultiNamespace;
    }
    let targets: BTreeSet<&str> = targets.iter().map(String::as_str).collect();
    match targets.len() {
        0 => InstallMode::AllNamespaces,
        1 if targets.contains(namespace) => InstallMode::OwnNamespace,
        1 => InstallMode::SingleNamespace,
        _ => InstallMode::MultiNamespace,
    }
}

/// Whether an OperatorGroup has a selector that selects by something (an
/// empty selector selects every namespace).
fn selects_by_label(group: &OperatorGroup) -> bool {
    group.spec.selector.as_ref().is_some_and(|selector| {
        selector
            .match_labels
            .as_ref()
            .is_some_and(|l| !l.is_empty())
            || selector
                .match_expressions
                .as_ref()
                .is_some_and(|e| !e.is_empty())
    })
}

/// What an OperatorGroup reaches, for a refusal's message.
fn group_reach(group: &OperatorGroup, mode: InstallMode) -> String {
    let targets = group.spec.target_namespaces.as_deref().unwrap_or_default();
    match mode {
        InstallMode::AllNamespaces => "serves all namespaces".to_owned(),
        InstallMode::MultiNamespace if selects_by_label(group) => {
            "selects its target namespaces with a label selector".to_owned()
        }
        _ => format!("targets namespaces [{}]", targets.join(", ")),
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
            "mariadb-operator",
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
        assert_eq!(refused.install_mode, Some(InstallMode::AllNamespaces));
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
                install_mode: Some(InstallMode::AllNamespaces),
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
            install_modes: vec![InstallMode::OwnNamespace, InstallMode::AllNamespaces],
        };
        assert_eq!(OlmAllowlist::parse(yaml).unwrap(), expected);
        // The modes only an existing OperatorGroup can stand for parse too.
        assert_eq!(
            OlmAllowlist::parse(
                "{packages: [], catalogs: [], installModes: [SingleNamespace, MultiNamespace]}"
            )
            .unwrap()
            .install_modes,
            vec![InstallMode::SingleNamespace, InstallMode::MultiNamespace]
        );
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

    fn group(spec: serde_json::Value) -> OperatorGroup {
        serde_json::from_value(json!({"metadata": {"name": "g"}, "spec": spec})).unwrap()
    }

    #[test]
    fn an_operator_groups_install_mode_is_what_it_targets() {
        use InstallMode::*;
        for (spec, mode) in [
            (json!({}), AllNamespaces),
            (json!({"targetNamespaces": []}), AllNamespaces),
            (json!({"targetNamespaces": [""]}), AllNamespaces),
            (json!({"targetNamespaces": ["team", ""]}), AllNamespaces),
            (json!({"selector": {}}), AllNamespaces),
            (
                json!({"selector": {"matchLabels": {}, "matchExpressions": []}}),
                AllNamespaces,
            ),
            (json!({"targetNamespaces": ["team"]}), OwnNamespace),
            (json!({"targetNamespaces": ["team", "team"]}), OwnNamespace),
            (
                json!({"targetNamespaces": ["team"], "selector": {}}),
                OwnNamespace,
            ),
            (
                json!({"targetNamespaces": ["other-tenant"]}),
                SingleNamespace,
            ),
            (
                json!({"targetNamespaces": ["team", "kube-system"]}),
                MultiNamespace,
            ),
            (json!({"targetNamespaces": ["a", "b"]}), MultiNamespace),
            (
                json!({"selector": {"matchLabels": {"tenant": "team"}}}),
                MultiNamespace,
            ),
            (
                json!({"selector": {"matchExpressions": [
                    {"key": "tenant", "operator": "Exists"}]}}),
                MultiNamespace,
            ),
            // A selector next to the target namespaces: judged by the selector.
            (
                json!({"targetNamespaces": ["team"], "selector": {"matchLabels": {"a": "b"}}}),
                MultiNamespace,
            ),
        ] {
            assert_eq!(
                group_install_mode(&group(spec.clone()), "team"),
                mode,
                "{spec}"
            );
        }
    }

    #[test]
    fn operator_groups_reaching_other_namespaces_are_refused_unless_allowed() {
        let list = OlmAllowlist::default();
        assert_eq!(
            list.refuse_group(&group(json!({"targetNamespaces": ["team"]})), "team"),
            None
        );
        for (spec, parts) in [
            (
                json!({}),
                vec![
                    "OperatorGroup g serves all namespaces",
                    "installMode AllNamespaces",
                ],
            ),
            (
                json!({"targetNamespaces": ["other-tenant"]}),
                vec![
                    "targets namespaces [other-tenant]",
                    "installMode SingleNamespace",
                ],
            ),
            (
                json!({"targetNamespaces": ["team", "kube-system"]}),
                vec![
                    "targets namespaces [team, kube-system]",
                    "installMode MultiNamespace",
                ],
            ),
            (
                json!({"selector": {"matchLabels": {"tenant": "x"}}}),
                vec!["with a label selector", "installMode MultiNamespace"],
            ),
        ] {
            let refused = list
                .refuse_group(&group(spec.clone()), "team")
                .unwrap_or_else(|| panic!("{spec} was not refused"));
            for part in parts.iter().chain(&["an SRE must allow it"]) {
                assert!(refused.contains(part), "{spec}: {refused}");
            }
        }
        // Each mode the SRE allows, and only it, passes.
        for (spec, mode) in [
            (json!({}), InstallMode::AllNamespaces),
            (
                json!({"targetNamespaces": ["other-tenant"]}),
                InstallMode::SingleNamespace,
            ),
            (
                json!({"targetNamespaces": ["a", "b"]}),
                InstallMode::MultiNamespace,
            ),
        ] {
            let allowing = OlmAllowlist {
                install_modes: vec![mode],
                ..OlmAllowlist::default()
            };
            assert_eq!(allowing.refuse_group(&group(spec.clone()), "team"), None);
            assert!(
                allowing
                    .refuse_group(&group(json!({"targetNamespaces": ["team"]})), "team")
                    .is_some(),
                "{mode:?} alone does not allow OwnNamespace"
            );
        }
        // A DatabaseEngine asks for OwnNamespace or AllNamespaces only: the
        // other modes never come from its spec.
        assert_eq!(
            InstallMode::from(OlmInstallMode::OwnNamespace),
            InstallMode::OwnNamespace
        );
        assert_eq!(
            InstallMode::from(OlmInstallMode::AllNamespaces),
            InstallMode::AllNamespaces
        );
    }

    #[test]
    fn bundles_from_catalogs_off_the_list_are_refused() {
        let sub: Subscription = serde_json::from_value(json!({
            "metadata": {"name": "cloudnative-pg"},
            "spec": {"name": "cloudnative-pg", "source": "operatorhubio-catalog", "sourceNamespace": "olm"},
        }))
        .unwrap();
        let plan = |csvs: Vec<&str>, lookups: Option<serde_json::Value>| -> InstallPlan {
            let mut status = json!({"phase": "RequiresApproval", "catalogSources": []});
            if let Some(lookups) = lookups {
                status["bundleLookups"] = lookups;
            }
            serde_json::from_value(json!({
                "metadata": {"name": "p"},
                "spec": {"approval": "Manual", "approved": false, "clusterServiceVersionNames": csvs},
                "status": status,
            }))
            .unwrap()
        };
        let lookup = |csv: &str, name: &str, namespace: &str| {
            json!({"identifier": csv, "path": "quay.io/x/bundle:1", "replaces": "",
                   "catalogSourceRef": {"name": name, "namespace": namespace}})
        };
        let list = OlmAllowlist::default();
        // Named after the allowed package, unpacked from another catalog.
        let spoofed = plan(
            vec!["cloudnative-pg.v9-x"],
            Some(json!([lookup("cloudnative-pg.v9-x", "evil", "tenant")])),
        );
        assert_eq!(csv_package("cloudnative-pg.v9-x"), "cloudnative-pg");
        assert!(list.refused_csvs(&spoofed).is_empty());
        let refused = list.refuse_plan(&sub, &spoofed).unwrap();
        assert!(
            refused.contains("cloudnative-pg.v9-x (CatalogSource tenant/evil)")
                && refused.contains("an SRE must allow it"),
            "{refused}"
        );
        // One bundle of several from elsewhere is enough; so is a lookup
        // that names no catalog.
        let mixed = plan(
            vec!["cloudnative-pg.v1.27.1", "cloudnative-pg.v1.27.2"],
            Some(json!([
                lookup("cloudnative-pg.v1.27.1", "operatorhubio-catalog", "olm"),
                lookup("cloudnative-pg.v1.27.2", "operatorhubio-catalog", "team"),
            ])),
        );
        assert_eq!(
            list.refused_bundle_catalogs(&mixed),
            vec!["cloudnative-pg.v1.27.2 (CatalogSource team/operatorhubio-catalog)".to_owned()]
        );
        let unnamed = plan(
            vec!["cloudnative-pg.v1.27.1"],
            Some(
                json!([{"identifier": "cloudnative-pg.v1.27.1", "path": "", "replaces": "",
                         "catalogSourceRef": {}}]),
            ),
        );
        assert!(list.refuse_plan(&sub, &unnamed).is_some());
        // Every bundle from an allowed catalog: approved.
        let good = plan(
            vec!["cloudnative-pg.v1.27.1"],
            Some(json!([lookup(
                "cloudnative-pg.v1.27.1",
                "operatorhubio-catalog",
                "olm"
            )])),
        );
        assert_eq!(list.refuse_plan(&sub, &good), None);
        // The package check still applies to bundles from an allowed catalog.
        let dependency = plan(
            vec!["cloudnative-pg.v1.27.1", "etcd.v0.9.4"],
            Some(json!([
                lookup("cloudnative-pg.v1.27.1", "operatorhubio-catalog", "olm"),
                lookup("etcd.v0.9.4", "operatorhubio-catalog", "olm"),
            ])),
        );
        assert!(
            list.refuse_plan(&sub, &dependency)
                .unwrap()
                .contains("etcd.v0.9.4")
        );
        // No lookups recorded: only the CSV names are checked.
        assert_eq!(
            list.refuse_plan(&sub, &plan(vec!["cloudnative-pg.v1.27.1"], None)),
            None
        );
        // The steps OLM planned name their catalog too.
        let mut stepped = plan(vec!["cloudnative-pg.v1.27.1"], None);
        let step = |catalog: &str, namespace: &str| -> serde_json::Value {
            json!({"resolving": "cloudnative-pg.v1.27.1", "status": "Unknown", "resource": {
                "group": "operators.coreos.com", "version": "v1alpha1",
                "kind": "ClusterServiceVersion", "name": "cloudnative-pg.v1.27.1",
                "sourceName": catalog, "sourceNamespace": namespace}})
        };
        if let Some(status) = stepped.status.as_mut() {
            status.plan = Some(vec![
                serde_json::from_value(step("operatorhubio-catalog", "olm")).unwrap(),
                serde_json::from_value(step("evil", "tenant")).unwrap(),
            ]);
        }
        assert_eq!(
            list.refused_bundle_catalogs(&stepped),
            vec![
                "ClusterServiceVersion cloudnative-pg.v1.27.1 (CatalogSource tenant/evil)"
                    .to_owned()
            ]
        );
    }
}
