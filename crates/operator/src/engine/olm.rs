//! Engine operators installed through OLM: the OperatorGroup and Subscription
//! a DatabaseEngine asks for, which InstallPlans to approve, and what OLM's
//! objects say about the installed operator. Pure: the controller fetches,
//! these functions decide.

use dbaas_api::common::{LABEL_ENGINE, LABEL_MANAGED_BY, MANAGED_BY_VALUE};
use dbaas_api::engine::{
    DatabaseEngine, EngineOperatorInstall, EngineOperatorStatus, OlmInstallMode, OperatorUpgrade,
};
use dbaas_engine_crds::olm_installplan::InstallPlan;
use dbaas_engine_crds::olm_operatorgroup::{OperatorGroup, OperatorGroupSpec};
use dbaas_engine_crds::olm_subscription::{Subscription, SubscriptionSpec};
use kube::ResourceExt;
use kube::api::ObjectMeta;
use kube::core::ApiResource;

use super::allowlist::{self, OlmAllowlist};

/// The OperatorGroup we create in a namespace that has none.
pub const OPERATOR_GROUP_NAME: &str = "dbaas-engine-operators";

/// The approval mode we subscribe with: OLM installs nothing until approved.
pub const MANUAL: &str = "Manual";

/// The CSV phase of an installed, running operator.
const CSV_SUCCEEDED: &str = "Succeeded";

/// `operators.coreos.com/v1alpha1` ClusterServiceVersion: read through a
/// small typed view ([`CsvView`]) of a `DynamicObject`; the CRD (814 KB,
/// a whole Deployment schema inside) is too large to be worth generating.
pub fn csv_resource() -> ApiResource {
    ApiResource {
        group: "operators.coreos.com".into(),
        version: "v1alpha1".into(),
        api_version: "operators.coreos.com/v1alpha1".into(),
        kind: "ClusterServiceVersion".into(),
        plural: "clusterserviceversions".into(),
    }
}

/// `operators.coreos.com/v1alpha1` CatalogSource: only its existence matters.
pub fn catalog_source_resource() -> ApiResource {
    ApiResource {
        group: "operators.coreos.com".into(),
        version: "v1alpha1".into(),
        api_version: "operators.coreos.com/v1alpha1".into(),
        kind: "CatalogSource".into(),
        plural: "catalogsources".into(),
    }
}

/// The few ClusterServiceVersion fields we read.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CsvView {
    pub name: String,
    /// `spec.version`.
    pub version: Option<String>,
    /// `status.phase`: Pending, InstallReady, Installing, Succeeded, Failed, ...
    pub phase: Option<String>,
    /// `status.message`.
    pub message: Option<String>,
}

impl CsvView {
    /// The view of a CSV read as a `DynamicObject`.
    pub fn from_object(object: &kube::core::DynamicObject) -> Self {
        let text = |pointer: &str| {
            object
                .data
                .pointer(pointer)
                .and_then(|v| v.as_str())
                .map(str::to_owned)
        };
        Self {
            name: object.name_any(),
            version: text("/spec/version"),
            phase: text("/status/phase"),
            message: text("/status/message"),
        }
    }
}

/// Which OperatorGroup the namespace uses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OperatorGroupChoice {
    /// None there: we create ours.
    Create,
    /// Exactly one there (ours or someone else's): used as it is.
    Reuse(String),
    /// OLM allows one per namespace; with several it installs nothing.
    Conflict(Vec<String>),
}

/// Chooses the OperatorGroup from those in the namespace.
pub fn choose_operator_group(existing: &[OperatorGroup]) -> OperatorGroupChoice {
    match existing {
        [] => OperatorGroupChoice::Create,
        [one] => OperatorGroupChoice::Reuse(one.name_any()),
        several => OperatorGroupChoice::Conflict(several.iter().map(|g| g.name_any()).collect()),
    }
}

fn our_labels(engine: &DatabaseEngine) -> std::collections::BTreeMap<String, String> {
    [
        (LABEL_MANAGED_BY.to_owned(), MANAGED_BY_VALUE.to_owned()),
        (
            LABEL_ENGINE.to_owned(),
            engine.spec.type_.as_str().to_owned(),
        ),
    ]
    .into()
}

/// The OperatorGroup we create in the engine's namespace.
pub fn operator_group(engine: &DatabaseEngine, install: &EngineOperatorInstall) -> OperatorGroup {
    let namespace = engine.namespace().unwrap_or_default();
    let target_namespaces = match install.olm.install_mode {
        OlmInstallMode::OwnNamespace => Some(vec![namespace.clone()]),
        // No target namespaces and no selector: every namespace.
        OlmInstallMode::AllNamespaces => None,
    };
    OperatorGroup {
        metadata: ObjectMeta {
            name: Some(OPERATOR_GROUP_NAME.to_owned()),
            namespace: Some(namespace),
            labels: Some(our_labels(engine)),
            ..ObjectMeta::default()
        },
        spec: OperatorGroupSpec {
            target_namespaces,
            ..OperatorGroupSpec::default()
        },
        status: None,
    }
}

/// The Subscription's name: the package's (one Subscription per package
/// and namespace, as OLM expects).
pub fn subscription_name(install: &EngineOperatorInstall) -> &str {
    &install.olm.package
}

/// The Subscription we apply: manual approval, so nothing installs or
/// upgrades without us.
pub fn subscription(engine: &DatabaseEngine, install: &EngineOperatorInstall) -> Subscription {
    let olm = &install.olm;
    Subscription {
        metadata: ObjectMeta {
            name: Some(subscription_name(install).to_owned()),
            namespace: engine.namespace(),
            labels: Some(our_labels(engine)),
            ..ObjectMeta::default()
        },
        spec: SubscriptionSpec {
            channel: Some(olm.channel.clone()),
            install_plan_approval: Some(MANUAL.to_owned()),
            name: olm.package.clone(),
            source: olm.catalog_source.clone(),
            source_namespace: olm.catalog_source_namespace.clone(),
            starting_csv: olm.starting_csv.clone(),
            config: None,
        },
        status: None,
    }
}

/// The operator version in a CSV name: `cloudnative-pg.v1.28.0` -> `1.28.0`.
pub fn version_from_csv_name(name: &str) -> Option<String> {
    let bytes = name.as_bytes();
    (0..bytes.len().saturating_sub(2))
        .find(|&i| bytes[i] == b'.' && bytes[i + 1] == b'v' && bytes[i + 2].is_ascii_digit())
        .map(|i| name[i + 2..].to_owned())
}

/// Whether `plan` was made by OLM for `subscription` (an ownerReference to
/// it, matched by UID, as OLM sets them).
pub fn owned_by(plan: &InstallPlan, subscription: &Subscription) -> bool {
    let Some(uid) = subscription.metadata.uid.as_deref() else {
        return false;
    };
    plan.owner_references().iter().any(|owner| {
        owner.kind == "Subscription"
            && owner.api_version.starts_with("operators.coreos.com/")
            && owner.uid == uid
            && Some(owner.name.as_str()) == subscription.metadata.name.as_deref()
    })
}

/// Whether `plan` waits for a manual approval.
pub fn waits_for_approval(plan: &InstallPlan) -> bool {
    let phase = plan.status.as_ref().map(|s| s.phase.as_str());
    plan.spec.approval == MANUAL
        && !plan.spec.approved
        && !matches!(phase, Some("Complete" | "Failed"))
}

/// What OLM's objects look like for one DatabaseEngine.
#[derive(Clone, Debug, Default)]
pub struct Observed {
    /// Our Subscription as the API server has it (with OLM's status).
    pub subscription: Option<Subscription>,
    /// The InstallPlans of the namespace (ours and others').
    pub install_plans: Vec<InstallPlan>,
    /// The installed (or installing) ClusterServiceVersion.
    pub csv: Option<CsvView>,
}

/// Where the OLM install stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Judgement {
    /// InstallPlans to approve now.
    pub approve: Vec<String>,
    pub status: EngineOperatorStatus,
    /// The Ready condition's reason and message.
    pub reason: &'static str,
    pub message: String,
    pub installed_csv: Option<String>,
    pub operator_version: Option<String>,
    pub upgrade: Option<OperatorUpgrade>,
    /// The UpgradeAvailable condition: status, reason, message.
    pub upgrade_condition: (bool, &'static str, String),
    /// The ForeignSubscriptions condition (status, reason, message), once
    /// the namespace's Subscriptions were read.
    pub subscriptions_condition: Option<(bool, &'static str, String)>,
}

/// A Ready=False judgement before anything is installed (OLM missing,
/// catalog missing, several OperatorGroups).
pub fn blocked(reason: &'static str, message: String) -> Judgement {
    Judgement {
        approve: Vec::new(),
        status: EngineOperatorStatus::NotInstalled,
        reason,
        message,
        installed_csv: None,
        operator_version: None,
        upgrade: None,
        upgrade_condition: (false, reason, "nothing is installed yet".into()),
        subscriptions_condition: None,
    }
}

/// The condition warning about Subscriptions of the namespace that the
/// operator does not control.
pub const FOREIGN_SUBSCRIPTIONS: &str = "ForeignSubscriptions";

/// A Subscription of the namespace as read (a foreign one may not parse).
pub enum SeenSubscription {
    Read(Box<Subscription>),
    Unreadable(String),
}

/// The Subscriptions of the namespace the operator does not control, each
/// with why: not labelled as ours, `installPlanApproval` not `Manual` (OLM's
/// default is `Automatic`: it installs and upgrades without anyone
/// approving), or a package or catalog off the allowlist. OLM installs
/// them with its own cluster-wide account, whatever our allowlist says.
pub fn foreign_subscriptions(seen: &[SeenSubscription], allowed: &OlmAllowlist) -> Vec<String> {
    seen.iter()
        .filter_map(|s| {
            let subscription = match s {
                SeenSubscription::Read(subscription) => subscription,
                SeenSubscription::Unreadable(name) => return Some(format!("{name} (unreadable)")),
            };
            let mut why = Vec::new();
            let ours = subscription
                .labels()
                .get(LABEL_MANAGED_BY)
                .is_some_and(|v| v == MANAGED_BY_VALUE);
            if !ours {
                why.push("not made by dbaas-operator".to_owned());
            }
            let approval = subscription.spec.install_plan_approval.as_deref();
            if approval != Some(MANUAL) {
                why.push(format!(
                    "installPlanApproval {}",
                    approval.unwrap_or("Automatic (unset)")
                ));
            }
            if !allowed.allows_subscription(subscription) {
                why.push("package or catalog off the OLM allowlist".to_owned());
            }
            (!why.is_empty()).then(|| format!("{} ({})", subscription.name_any(), why.join(", ")))
        })
        .collect()
}

/// The ForeignSubscriptions condition from [`foreign_subscriptions`].
pub fn subscriptions_condition(foreign: &[String]) -> (bool, &'static str, String) {
    if foreign.is_empty() {
        return (
            false,
            "NoForeignSubscriptions",
            "every Subscription of the namespace is the operator's, with manual approval".into(),
        );
    }
    (
        true,
        "ForeignSubscriptionsFound",
        format!(
            "Subscriptions the operator does not control: {}; OLM installs what they ask for with its own cluster-wide account, outside the operator's OLM allowlist. Tenants must not be able to create or patch Subscriptions (OLM's aggregate-olm-edit ClusterRole gives that to every admin and edit binding)",
            foreign.join(", ")
        ),
    )
}

/// Whether the SRE's `approvedVersion` names this CSV (by name or version).
fn approved(install: &EngineOperatorInstall, csv: &str) -> bool {
    install.approved_version.as_deref().is_some_and(|wanted| {
        wanted == csv || version_from_csv_name(csv).as_deref() == Some(wanted)
    })
}

fn subscription_condition<'a>(
    subscription: &'a Subscription,
    type_: &str,
) -> Option<&'a k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition> {
    subscription
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|c| c.iter().find(|c| c.type_ == type_ && c.status == "True"))
}

/// Decides which InstallPlans to approve and what to report. Nothing the
/// allowlist refuses is approved (the Subscription as stored and every CSV
/// of the plan are checked again here).
pub fn judge(
    install: &EngineOperatorInstall,
    observed: &Observed,
    allowed: &OlmAllowlist,
) -> Judgement {
    let Some(subscription) = &observed.subscription else {
        return Judgement {
            status: EngineOperatorStatus::Installing,
            ..blocked(
                "InstallPending",
                "waiting for the Subscription to be stored".into(),
            )
        };
    };
    let sub_status = subscription.status.clone().unwrap_or_default();
    let installed_csv = sub_status.installed_csv.clone();
    // The plan OLM made last for our Subscription: named by its status and
    // owned by it. Any other plan is never touched.
    let current_plan = sub_status
        .install_plan_ref
        .as_ref()
        .and_then(|r| r.name.as_deref())
        .and_then(|name| observed.install_plans.iter().find(|p| p.name_any() == name))
        .filter(|p| owned_by(p, subscription));
    let waiting = current_plan.filter(|p| waits_for_approval(p));
    let plan_csv = |plan: &InstallPlan| {
        plan.spec
            .cluster_service_version_names
            .iter()
            .find(|csv| Some(csv.as_str()) != installed_csv.as_deref())
            .or_else(|| plan.spec.cluster_service_version_names.first())
            .cloned()
            .unwrap_or_default()
    };

    let mut approve = Vec::new();
    let mut upgrade = None;
    let refused = waiting.and_then(|plan| allowed.refuse_plan(subscription, plan));
    match (waiting, &installed_csv) {
        // Not on the SRE's allowlist: never approved.
        (Some(_), _) if refused.is_some() => {}
        // Nothing installed yet: the SRE asked for the install.
        (Some(plan), None) => approve.push(plan.name_any()),
        (Some(plan), Some(_)) => {
            let csv = plan_csv(plan);
            if approved(install, &csv) {
                approve.push(plan.name_any());
            } else {
                upgrade = Some(OperatorUpgrade {
                    version: version_from_csv_name(&csv),
                    csv,
                    install_plan: plan.name_any(),
                });
            }
        }
        (None, _) => {}
    }

    let csv = observed
        .csv
        .as_ref()
        .filter(|c| Some(&c.name) == installed_csv.as_ref());
    let running = csv.filter(|c| c.phase.as_deref() == Some(CSV_SUCCEEDED));
    let plan_failed = current_plan
        .filter(|p| p.status.as_ref().is_some_and(|s| s.phase == "Failed"))
        .map(|p| {
            let detail = p
                .status
                .as_ref()
                .and_then(|s| s.message.clone())
                .unwrap_or_default();
            format!("InstallPlan {} failed {detail}", p.name_any())
                .trim_end()
                .to_owned()
        })
        .or_else(|| {
            subscription_condition(subscription, "InstallPlanFailed").map(|c| c.message.clone())
        });
    let resolution_failed = subscription_condition(subscription, "ResolutionFailed")
        .or_else(|| subscription_condition(subscription, "CatalogSourcesUnhealthy"))
        .map(|c| c.message.clone());

    let (status, reason, message) = if let Some(csv) = running {
        (
            EngineOperatorStatus::Installed,
            "OperatorInstalled",
            format!(
                "OLM installed {} ({})",
                csv.name,
                csv.version.as_deref().unwrap_or("no version")
            ),
        )
    } else if let Some(message) = refused.clone() {
        (
            EngineOperatorStatus::Installing,
            allowlist::NOT_ALLOWED,
            message,
        )
    } else if let Some(message) = resolution_failed {
        (
            EngineOperatorStatus::Installing,
            "SubscriptionFailed",
            format!("OLM cannot resolve the Subscription: {message}"),
        )
    } else if let Some(message) = plan_failed.clone() {
        (
            EngineOperatorStatus::Installing,
            "InstallPlanFailed",
            message,
        )
    } else if let Some(csv) = csv.filter(|c| c.phase.as_deref() == Some("Failed")) {
        (
            EngineOperatorStatus::Installing,
            "CSVFailed",
            format!(
                "ClusterServiceVersion {} failed: {}",
                csv.name,
                csv.message.as_deref().unwrap_or("no message")
            ),
        )
    } else {
        let what = match (&installed_csv, &sub_status.current_csv, current_plan) {
            (Some(csv), _, _) => format!("waiting for ClusterServiceVersion {csv} to succeed"),
            (None, _, Some(plan)) => {
                format!("waiting for OLM to run InstallPlan {}", plan.name_any())
            }
            (None, Some(csv), None) => format!("waiting for OLM to plan {csv}"),
            (None, None, None) => "waiting for OLM to resolve the Subscription".into(),
        };
        (EngineOperatorStatus::Installing, "InstallPending", what)
    };

    let upgrade_condition = match (&upgrade, running.is_some()) {
        (None, true) if refused.is_some() => {
            (false, allowlist::NOT_ALLOWED, refused.unwrap_or_default())
        }
        (Some(u), _) => (
            true,
            "UpgradeAvailable",
            format!(
                "InstallPlan {} would install {}; set spec.operator.approvedVersion to {} to approve it",
                u.install_plan,
                u.csv,
                u.version.as_deref().unwrap_or(&u.csv)
            ),
        ),
        (None, true) if plan_failed.is_some() => {
            (false, "InstallPlanFailed", plan_failed.unwrap_or_default())
        }
        (None, true)
            if sub_status.current_csv.is_some() && sub_status.current_csv != installed_csv =>
        {
            (
                false,
                "Upgrading",
                format!(
                    "upgrading to {}",
                    sub_status.current_csv.clone().unwrap_or_default()
                ),
            )
        }
        (None, true) => (false, "UpToDate", "no upgrade waits for approval".into()),
        (None, false) => (false, reason, "nothing is installed yet".into()),
    };

    Judgement {
        approve,
        status,
        reason,
        message,
        operator_version: running.and_then(|c| c.version.clone()),
        installed_csv: running.map(|c| c.name.clone()),
        upgrade,
        upgrade_condition,
        subscriptions_condition: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn engine(operator: serde_json::Value) -> DatabaseEngine {
        serde_json::from_value(json!({
            "apiVersion": "dbaas.io/v1", "kind": "DatabaseEngine",
            "metadata": {"name": "postgresql", "namespace": "team", "generation": 1},
            "spec": {"type": "postgresql", "operator": operator},
        }))
        .unwrap()
    }

    fn install(approved: Option<&str>) -> EngineOperatorInstall {
        let mut operator = json!({"olm": {
            "catalogSource": "operatorhubio", "catalogSourceNamespace": "olm",
            "package": "cloudnative-pg", "channel": "stable-v1"}});
        if let Some(v) = approved {
            operator["approvedVersion"] = json!(v);
        }
        engine(operator).spec.operator.unwrap()
    }

    /// The tests' catalog and package on the allowlist.
    fn allowed() -> OlmAllowlist {
        OlmAllowlist {
            catalogs: vec![allowlist::CatalogRef {
                name: "operatorhubio".into(),
                namespace: "olm".into(),
            }],
            ..OlmAllowlist::default()
        }
    }

    fn sub(installed: Option<&str>, plan: Option<&str>) -> Subscription {
        serde_json::from_value(json!({
            "apiVersion": "operators.coreos.com/v1alpha1", "kind": "Subscription",
            "metadata": {"name": "cloudnative-pg", "namespace": "team", "uid": "sub-uid"},
            "spec": {"name": "cloudnative-pg", "source": "operatorhubio", "sourceNamespace": "olm"},
            "status": {"lastUpdated": "2026-01-01T00:00:00Z", "installedCSV": installed,
                "installPlanRef": plan.map(|p| json!({"name": p, "namespace": "team"}))},
        }))
        .unwrap()
    }

    fn plan(name: &str, csv: &str, owner_uid: &str, approved: bool) -> InstallPlan {
        serde_json::from_value(json!({
            "apiVersion": "operators.coreos.com/v1alpha1", "kind": "InstallPlan",
            "metadata": {"name": name, "namespace": "team", "ownerReferences": [{
                "apiVersion": "operators.coreos.com/v1alpha1", "kind": "Subscription",
                "name": "cloudnative-pg", "uid": owner_uid}]},
            "spec": {"approval": "Manual", "approved": approved, "clusterServiceVersionNames": [csv]},
        }))
        .unwrap()
    }

    fn csv(name: &str, version: &str, phase: &str) -> CsvView {
        CsvView {
            name: name.into(),
            version: Some(version.into()),
            phase: Some(phase.into()),
            message: None,
        }
    }

    #[test]
    fn subscription_is_manual_and_named_after_the_package() {
        let i = install(None);
        let s = subscription(&engine(serde_json::to_value(&i).unwrap()), &i);
        assert_eq!(s.metadata.name.as_deref(), Some("cloudnative-pg"));
        assert_eq!(s.spec.install_plan_approval.as_deref(), Some("Manual"));
        assert_eq!(
            (s.spec.source.as_str(), s.spec.source_namespace.as_str()),
            ("operatorhubio", "olm")
        );
        assert_eq!(s.spec.channel.as_deref(), Some("stable-v1"));
        let g = operator_group(&engine(serde_json::to_value(&i).unwrap()), &i);
        assert_eq!(g.spec.target_namespaces, Some(vec!["team".to_owned()]));
    }

    #[test]
    fn one_operator_group_per_namespace() {
        let og = |name: &str| -> OperatorGroup {
            serde_json::from_value(json!({"metadata": {"name": name}, "spec": {}})).unwrap()
        };
        assert_eq!(choose_operator_group(&[]), OperatorGroupChoice::Create);
        assert_eq!(
            choose_operator_group(&[og("theirs")]),
            OperatorGroupChoice::Reuse("theirs".into())
        );
        assert_eq!(
            choose_operator_group(&[og("a"), og("b")]),
            OperatorGroupChoice::Conflict(vec!["a".into(), "b".into()])
        );
    }

    #[test]
    fn csv_names_carry_the_version() {
        assert_eq!(
            version_from_csv_name("cloudnative-pg.v1.28.0").as_deref(),
            Some("1.28.0")
        );
        assert_eq!(
            version_from_csv_name("percona-server-mongodb-operator.v1.20.1").as_deref(),
            Some("1.20.1")
        );
        assert_eq!(version_from_csv_name("no-version"), None);
    }

    #[test]
    fn the_first_install_plan_is_approved() {
        let observed = Observed {
            subscription: Some(sub(None, Some("install-1"))),
            install_plans: vec![plan(
                "install-1",
                "cloudnative-pg.v1.27.1",
                "sub-uid",
                false,
            )],
            csv: None,
        };
        let j = judge(&install(None), &observed, &allowed());
        assert_eq!(j.approve, vec!["install-1".to_owned()]);
        assert_eq!(j.status, EngineOperatorStatus::Installing);
        assert_eq!(j.reason, "InstallPending");
    }

    #[test]
    fn foreign_and_unreferenced_plans_are_never_approved() {
        let observed = Observed {
            subscription: Some(sub(None, Some("foreign"))),
            install_plans: vec![
                plan("foreign", "other.v1.0.0", "other-uid", false),
                plan("stale", "cloudnative-pg.v1.0.0", "sub-uid", false),
            ],
            csv: None,
        };
        assert!(
            judge(&install(None), &observed, &allowed())
                .approve
                .is_empty()
        );
    }

    #[test]
    fn upgrades_wait_for_the_sres_approval() {
        let observed = Observed {
            subscription: Some(sub(Some("cloudnative-pg.v1.27.1"), Some("upgrade-1"))),
            install_plans: vec![
                plan("install-1", "cloudnative-pg.v1.27.1", "sub-uid", true),
                plan("upgrade-1", "cloudnative-pg.v1.28.0", "sub-uid", false),
            ],
            csv: Some(csv("cloudnative-pg.v1.27.1", "1.27.1", "Succeeded")),
        };
        let j = judge(&install(None), &observed, &allowed());
        assert!(j.approve.is_empty());
        assert_eq!(j.status, EngineOperatorStatus::Installed);
        assert_eq!(j.operator_version.as_deref(), Some("1.27.1"));
        assert_eq!(
            j.upgrade,
            Some(OperatorUpgrade {
                version: Some("1.28.0".into()),
                csv: "cloudnative-pg.v1.28.0".into(),
                install_plan: "upgrade-1".into(),
            })
        );
        assert_eq!(j.upgrade_condition.1, "UpgradeAvailable");
        // Another version approved: still waits.
        assert!(
            judge(&install(Some("1.29.0")), &observed, &allowed())
                .approve
                .is_empty()
        );
        for approval in ["1.28.0", "cloudnative-pg.v1.28.0"] {
            let j = judge(&install(Some(approval)), &observed, &allowed());
            assert_eq!(j.approve, vec!["upgrade-1".to_owned()], "{approval}");
            assert_eq!(j.upgrade, None);
        }
    }

    #[test]
    fn plans_off_the_allowlist_are_never_approved() {
        // The first install, but the Subscription as stored names a catalog
        // (or package) the allowlist does not hold: not approved, and said.
        let observed = Observed {
            subscription: Some(sub(None, Some("install-1"))),
            install_plans: vec![plan(
                "install-1",
                "cloudnative-pg.v1.27.1",
                "sub-uid",
                false,
            )],
            csv: None,
        };
        let j = judge(&install(None), &observed, &OlmAllowlist::default());
        assert!(j.approve.is_empty());
        assert_eq!(
            (j.status, j.reason),
            (EngineOperatorStatus::Installing, allowlist::NOT_ALLOWED)
        );
        assert!(
            j.message.contains("CatalogSource olm/operatorhubio")
                && j.message.contains("an SRE must allow it"),
            "{}",
            j.message
        );
        let no_packages = OlmAllowlist {
            packages: Vec::new(),
            ..allowed()
        };
        assert!(
            judge(&install(None), &observed, &no_packages)
                .approve
                .is_empty()
        );

        // A plan that would also install a CSV of another package (a
        // dependency OLM resolved): not approved.
        let observed = Observed {
            install_plans: vec![serde_json::from_value(json!({
                "apiVersion": "operators.coreos.com/v1alpha1", "kind": "InstallPlan",
                "metadata": {"name": "install-1", "namespace": "team", "ownerReferences": [{
                    "apiVersion": "operators.coreos.com/v1alpha1", "kind": "Subscription",
                    "name": "cloudnative-pg", "uid": "sub-uid"}]},
                "spec": {"approval": "Manual", "approved": false,
                         "clusterServiceVersionNames": ["cloudnative-pg.v1.27.1", "cluster-admin.v1.0.0"]},
            }))
            .unwrap()],
            ..observed
        };
        let j = judge(&install(None), &observed, &allowed());
        assert!(j.approve.is_empty());
        assert_eq!(j.reason, allowlist::NOT_ALLOWED);
        assert!(j.message.contains("cluster-admin.v1.0.0"), "{}", j.message);

        // An upgrade the SRE approved, to a CSV of another package: still
        // not approved; the running operator stays Ready.
        let observed = Observed {
            subscription: Some(sub(Some("cloudnative-pg.v1.27.1"), Some("upgrade-1"))),
            install_plans: vec![plan("upgrade-1", "other.v2.0.0", "sub-uid", false)],
            csv: Some(csv("cloudnative-pg.v1.27.1", "1.27.1", "Succeeded")),
        };
        let j = judge(&install(Some("other.v2.0.0")), &observed, &allowed());
        assert!(j.approve.is_empty());
        assert_eq!(j.status, EngineOperatorStatus::Installed);
        assert_eq!(j.upgrade, None);
        assert_eq!(
            (j.upgrade_condition.0, j.upgrade_condition.1),
            (false, allowlist::NOT_ALLOWED)
        );
    }

    #[test]
    fn subscriptions_the_operator_does_not_control_are_named() {
        let labelled = |name: &str, approval: Option<&str>, ours: bool| {
            let mut s = sub(None, None);
            s.metadata.name = Some(name.into());
            s.spec.install_plan_approval = approval.map(str::to_owned);
            if ours {
                s.metadata.labels =
                    Some([(LABEL_MANAGED_BY.to_owned(), MANAGED_BY_VALUE.to_owned())].into());
            }
            SeenSubscription::Read(Box::new(s))
        };
        let seen = [
            labelled("cloudnative-pg", Some("Manual"), true),
            labelled("someone-else", None, false),
            labelled("patched", Some("Automatic"), true),
            SeenSubscription::Unreadable("broken".into()),
        ];
        let foreign = foreign_subscriptions(&seen, &allowed());
        assert_eq!(
            foreign,
            vec![
                "someone-else (not made by dbaas-operator, installPlanApproval Automatic (unset))"
                    .to_owned(),
                "patched (installPlanApproval Automatic)".to_owned(),
                "broken (unreadable)".to_owned(),
            ]
        );
        let (status, reason, message) = subscriptions_condition(&foreign);
        assert!(status);
        assert_eq!(reason, "ForeignSubscriptionsFound");
        assert!(message.contains("aggregate-olm-edit"), "{message}");
        // Ours, but its catalog is off the list.
        assert_eq!(
            foreign_subscriptions(&seen[..1], &OlmAllowlist::default()),
            vec!["cloudnative-pg (package or catalog off the OLM allowlist)".to_owned()]
        );
        assert!(foreign_subscriptions(&seen[..1], &allowed()).is_empty());
        assert!(!subscriptions_condition(&[]).0);
    }

    #[test]
    fn failures_are_named() {
        let mut s = sub(None, None);
        s.status.as_mut().unwrap().conditions = Some(vec![serde_json::from_value(json!({
            "type": "ResolutionFailed", "status": "True", "reason": "ConstraintsNotSatisfiable",
            "message": "no operators found in package cloudnative-pg", "lastTransitionTime": "2026-01-01T00:00:00Z"}))
        .unwrap()]);
        let j = judge(
            &install(None),
            &Observed {
                subscription: Some(s),
                ..Observed::default()
            },
            &allowed(),
        );
        assert_eq!(j.reason, "SubscriptionFailed");
        assert!(j.message.contains("no operators found"), "{}", j.message);
        let j = judge(
            &install(None),
            &Observed {
                subscription: Some(sub(Some("cloudnative-pg.v1.27.1"), None)),
                csv: Some(csv("cloudnative-pg.v1.27.1", "1.27.1", "Failed")),
                ..Observed::default()
            },
            &allowed(),
        );
        assert_eq!(
            (j.status, j.reason),
            (EngineOperatorStatus::Installing, "CSVFailed")
        );
    }
}
