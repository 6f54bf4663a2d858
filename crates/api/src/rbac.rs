//! What the operator may do in the API, in one place: the shipped
//! ClusterRole (`deploy/rbac/operator.yaml`), the preflight that checks it
//! with SelfSubjectAccessReviews (`dbaasctl preflight`, and the operator at
//! start) and the least-privilege test are all made from this list.

use std::collections::BTreeMap;

use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec, SubjectAccessReview,
    SubjectAccessReviewSpec,
};
use k8s_openapi::api::core::v1::ServiceAccount;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, PolicyRule, RoleRef, Subject};
use kube::api::ObjectMeta;

/// One resource the operator uses, the verbs it needs and why.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Permission {
    /// API group ("" for the core group).
    pub group: &'static str,
    /// Resource, with `/subresource` where it applies.
    pub resource: &'static str,
    pub verbs: &'static [&'static str],
    /// What breaks without it, for the preflight's report.
    pub why: &'static str,
    /// Whether the operator refuses to start without it; the others only
    /// switch a feature off (and the preflight warns).
    pub required: bool,
}

const READ: &[&str] = &["get", "list", "watch"];
const READ_APPLY: &[&str] = &["get", "list", "watch", "create", "patch"];
const STATUS: &[&str] = &["patch"];

/// Every permission of the operator's ClusterRole.
pub const OPERATOR_PERMISSIONS: &[Permission] = &[
    Permission {
        group: "dbaas.io",
        resource: "databaseclusters",
        verbs: READ_APPLY,
        why: "watch DatabaseClusters; create the ones claims provision",
        required: true,
    },
    Permission {
        group: "dbaas.io",
        resource: "databaseclusters/status",
        verbs: STATUS,
        why: "report each cluster's phase and conditions",
        required: true,
    },
    Permission {
        group: "dbaas.io",
        resource: "databaseengines",
        verbs: &["get", "list", "watch", "create"],
        why: "create one DatabaseEngine per engine and namespace; read the SRE's version policy",
        required: true,
    },
    Permission {
        group: "dbaas.io",
        resource: "databaseengines/status",
        verbs: STATUS,
        why: "report whether each engine operator is installed and its versions",
        required: true,
    },
    Permission {
        group: "dbaas.io",
        resource: "databaseclustertemplates",
        verbs: READ,
        why: "fill in what a cluster's spec leaves to its template",
        required: true,
    },
    Permission {
        group: "dbaas.io",
        resource: "backupscheduletemplates",
        verbs: READ,
        why: "run the backup schedules of the template a cluster selects",
        required: true,
    },
    Permission {
        group: "dbaas.io",
        resource: "monitoringconfigs",
        verbs: READ,
        why: "wire the monitoring a cluster refers to",
        required: true,
    },
    Permission {
        group: "dbaas.io",
        resource: "databaseservers",
        verbs: READ_APPLY,
        why: "watch DatabaseServers; create the ones claims provision",
        required: true,
    },
    Permission {
        group: "dbaas.io",
        resource: "databaseservers/status",
        verbs: STATUS,
        why: "report whether each server is reachable",
        required: true,
    },
    Permission {
        group: "dbaas.io",
        resource: "databaseclaims",
        verbs: &["get", "list", "watch", "patch"],
        why: "watch DatabaseClaims and hold their finalizer until the database is dropped",
        required: true,
    },
    Permission {
        group: "dbaas.io",
        resource: "databaseclaims/status",
        verbs: STATUS,
        why: "report each claim's state",
        required: true,
    },
    Permission {
        group: "dbaas.io",
        resource: "opsrequests",
        verbs: &["get", "list", "watch", "patch", "delete"],
        why: "run day-2 operations one at a time per cluster, and delete them after their TTL",
        required: true,
    },
    Permission {
        group: "dbaas.io",
        resource: "opsrequests/status",
        verbs: STATUS,
        why: "report each operation's phase, progress and queue position",
        required: true,
    },
    Permission {
        group: "dbaas.io",
        resource: "backupstorages",
        verbs: READ,
        why: "render the storages a cluster's backups use into its engine resource",
        required: true,
    },
    Permission {
        group: "dbaas.io",
        resource: "backupstorages/status",
        verbs: STATUS,
        why: "report whether each storage's credentials are usable",
        required: true,
    },
    Permission {
        group: "dbaas.io",
        resource: "databasebackups",
        verbs: READ_APPLY,
        why: "take each DatabaseBackup with the engine's backup resource; create them for Backup operations",
        required: true,
    },
    Permission {
        group: "dbaas.io",
        resource: "databasebackups/status",
        verbs: STATUS,
        why: "report each backup's phase, time and location",
        required: true,
    },
    Permission {
        group: "",
        resource: "secrets",
        verbs: &["get", "list", "watch", "create", "patch", "delete"],
        why: "write claims' credentials; read admin and monitoring credentials; copy keys into engine Secrets; copy and remove credentials of BackupStorages shared across namespaces",
        required: true,
    },
    Permission {
        group: "postgresql.cnpg.io",
        resource: "clusters",
        verbs: READ_APPLY,
        why: "run postgresql clusters on CloudNativePG",
        required: false,
    },
    Permission {
        group: "postgresql.cnpg.io",
        resource: "clusters/status",
        verbs: STATUS,
        why: "ask CloudNativePG for a switchover (targetPrimary), as `kubectl cnpg promote` does",
        required: false,
    },
    Permission {
        group: "",
        resource: "pods",
        verbs: &["list"],
        why: "see that a restart or an upgrade reached every instance (evidence for OpsRequests)",
        required: false,
    },
    Permission {
        group: "",
        resource: "persistentvolumeclaims",
        verbs: &["list"],
        why: "see that a volume expansion reached every instance (evidence for OpsRequests)",
        required: false,
    },
    Permission {
        group: "postgresql.cnpg.io",
        resource: "poolers",
        verbs: &["get", "list", "watch", "create", "patch", "delete"],
        why: "run pgbouncer poolers for postgresql clusters, and remove them when the proxy is turned off",
        required: false,
    },
    Permission {
        group: "postgresql.cnpg.io",
        resource: "backups",
        verbs: READ_APPLY,
        why: "take on-demand backups of postgresql clusters",
        required: false,
    },
    Permission {
        group: "postgresql.cnpg.io",
        resource: "scheduledbackups",
        verbs: &["get", "list", "watch", "create", "patch", "delete"],
        why: "run a postgresql cluster's backup schedules, and remove those taken out of its spec",
        required: false,
    },
    Permission {
        group: "pxc.percona.com",
        resource: "perconaxtradbclusterbackups",
        verbs: READ_APPLY,
        why: "take on-demand backups of mysql clusters",
        required: false,
    },
    Permission {
        group: "psmdb.percona.com",
        resource: "perconaservermongodbbackups",
        verbs: READ_APPLY,
        why: "take on-demand backups of mongodb clusters",
        required: false,
    },
    Permission {
        group: "pxc.percona.com",
        resource: "perconaxtradbclusterrestores",
        verbs: READ_APPLY,
        why: "restore backups into mysql clusters (OpsRequest Restore, spec.dataSource)",
        required: false,
    },
    Permission {
        group: "psmdb.percona.com",
        resource: "perconaservermongodbrestores",
        verbs: READ_APPLY,
        why: "restore backups into mongodb clusters (OpsRequest Restore, spec.dataSource)",
        required: false,
    },
    Permission {
        group: "pxc.percona.com",
        resource: "perconaxtradbclusters",
        verbs: READ_APPLY,
        why: "run mysql clusters on the Percona XtraDB Cluster operator",
        required: false,
    },
    Permission {
        group: "psmdb.percona.com",
        resource: "perconaservermongodbs",
        verbs: READ_APPLY,
        why: "run mongodb clusters on the Percona Operator for MongoDB",
        required: false,
    },
    Permission {
        group: "k8s.mariadb.com",
        resource: "mariadbs",
        verbs: READ_APPLY,
        why: "run mariadb clusters on mariadb-operator (and ask it for a switchover: spec.replication.primary.podIndex)",
        required: false,
    },
    Permission {
        group: "k8s.mariadb.com",
        resource: "maxscales",
        verbs: &["get", "list", "watch", "create", "patch", "delete"],
        why: "run MaxScale proxies for mariadb clusters, and remove them when the proxy is turned off",
        required: false,
    },
    Permission {
        group: "k8s.mariadb.com",
        resource: "physicalbackups",
        verbs: &["get", "list", "watch", "create", "patch", "delete"],
        why: "keep the physical-backup template new mariadb replicas are seeded from, and remove it with the replication topology",
        required: false,
    },
    Permission {
        group: "k8s.mariadb.com",
        resource: "backups",
        verbs: READ_APPLY,
        why: "take on-demand backups of mariadb clusters",
        required: false,
    },
    Permission {
        group: "k8s.mariadb.com",
        resource: "restores",
        verbs: READ_APPLY,
        why: "restore backups into mariadb clusters (OpsRequest Restore)",
        required: false,
    },
    Permission {
        group: "apps",
        resource: "deployments",
        verbs: &["list"],
        why: "detect engine operators and their versions from their Deployments",
        required: false,
    },
    Permission {
        group: "events.k8s.io",
        resource: "events",
        verbs: &["create", "patch"],
        why: "publish Kubernetes Events on clusters and operations",
        required: false,
    },
    Permission {
        group: "coordination.k8s.io",
        resource: "leases",
        verbs: &["get", "create", "update"],
        why: "elect one leader among replicas (--leader-elect)",
        required: false,
    },
    Permission {
        group: "operators.coreos.com",
        resource: "operatorgroups",
        verbs: &["list", "create", "patch"],
        why: "install engine operators through OLM: create the namespace's OperatorGroup when it has none",
        required: false,
    },
    Permission {
        group: "operators.coreos.com",
        resource: "subscriptions",
        verbs: READ_APPLY,
        why: "install engine operators through OLM: apply their Subscriptions (manual approval) and follow them",
        required: false,
    },
    Permission {
        group: "operators.coreos.com",
        resource: "installplans",
        verbs: &["get", "list", "watch", "patch"],
        why: "approve the first install and the upgrades the SRE approved (spec.operator.approvedVersion)",
        required: false,
    },
    Permission {
        group: "operators.coreos.com",
        resource: "clusterserviceversions",
        verbs: &["get"],
        why: "read the installed engine operator's version and phase from its ClusterServiceVersion",
        required: false,
    },
    Permission {
        group: "operators.coreos.com",
        resource: "catalogsources",
        verbs: &["get"],
        why: "tell a missing CatalogSource apart before subscribing to it",
        required: false,
    },
];

/// The ClusterRole `name` granting [`OPERATOR_PERMISSIONS`], one rule per
/// permission.
pub fn operator_cluster_role(name: &str) -> ClusterRole {
    ClusterRole {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            labels: Some(BTreeMap::from([(
                crate::common::LABEL_MANAGED_BY.to_owned(),
                crate::common::MANAGED_BY_VALUE.to_owned(),
            )])),
            ..ObjectMeta::default()
        },
        rules: Some(OPERATOR_PERMISSIONS.iter().map(rule).collect()),
        ..ClusterRole::default()
    }
}

/// Where the shipped manifests run the operator.
pub const OPERATOR_NAMESPACE: &str = "dbaas-system";
/// The operator's ServiceAccount, ClusterRole and ClusterRoleBinding name.
pub const OPERATOR_NAME: &str = "dbaas-operator";

/// `deploy/rbac/operator.yaml`: the operator's ServiceAccount, its
/// ClusterRole and the binding, as committed.
pub fn operator_rbac_yaml() -> Result<String, serde_saphyr::ser::Error> {
    let service_account = ServiceAccount {
        metadata: ObjectMeta {
            name: Some(OPERATOR_NAME.to_owned()),
            namespace: Some(OPERATOR_NAMESPACE.to_owned()),
            ..ObjectMeta::default()
        },
        ..ServiceAccount::default()
    };
    let binding = ClusterRoleBinding {
        metadata: ObjectMeta {
            name: Some(OPERATOR_NAME.to_owned()),
            ..ObjectMeta::default()
        },
        role_ref: RoleRef {
            api_group: Some("rbac.authorization.k8s.io".to_owned()),
            kind: "ClusterRole".to_owned(),
            name: OPERATOR_NAME.to_owned(),
        },
        subjects: Some(vec![Subject {
            kind: "ServiceAccount".to_owned(),
            name: OPERATOR_NAME.to_owned(),
            namespace: Some(OPERATOR_NAMESPACE.to_owned()),
            ..Subject::default()
        }]),
    };
    // k8s-openapi writes each object's apiVersion and kind itself.
    let documents = [
        serde_saphyr::to_string(&service_account)?,
        serde_saphyr::to_string(&operator_cluster_role(OPERATOR_NAME))?,
        serde_saphyr::to_string(&binding)?,
    ];
    Ok(format!(
        "# Generated from crates/api/src/rbac.rs by `cargo run -p dbaas-api --bin rbacgen`. Do not edit.\n{}",
        documents.join("---\n")
    ))
}

fn rule(permission: &Permission) -> PolicyRule {
    PolicyRule {
        api_groups: Some(vec![permission.group.to_owned()]),
        resources: Some(vec![permission.resource.to_owned()]),
        verbs: permission.verbs.iter().map(|v| (*v).to_owned()).collect(),
        ..PolicyRule::default()
    }
}

/// One question of the preflight: may the subject `verb` the permission's
/// resource? Ask it as a SelfSubjectAccessReview (the operator about
/// itself) or a SubjectAccessReview (an SRE about the operator's account).
#[derive(Clone, Debug)]
pub struct Check {
    pub permission: Permission,
    pub verb: &'static str,
    pub attributes: ResourceAttributes,
}

impl Check {
    /// The question about oneself.
    pub fn self_review(&self) -> SelfSubjectAccessReview {
        SelfSubjectAccessReview {
            spec: SelfSubjectAccessReviewSpec {
                resource_attributes: Some(self.attributes.clone()),
                ..SelfSubjectAccessReviewSpec::default()
            },
            ..SelfSubjectAccessReview::default()
        }
    }

    /// The question about ServiceAccount `namespace`/`name`, with the groups
    /// the API server gives every ServiceAccount.
    pub fn service_account_review(&self, namespace: &str, name: &str) -> SubjectAccessReview {
        SubjectAccessReview {
            spec: SubjectAccessReviewSpec {
                resource_attributes: Some(self.attributes.clone()),
                user: Some(format!("system:serviceaccount:{namespace}:{name}")),
                groups: Some(vec![
                    "system:serviceaccounts".to_owned(),
                    format!("system:serviceaccounts:{namespace}"),
                    "system:authenticated".to_owned(),
                ]),
                ..SubjectAccessReviewSpec::default()
            },
            ..SubjectAccessReview::default()
        }
    }
}

/// The checks of `permissions` in each of `namespaces` (the operator's
/// watch namespaces), or cluster-wide when there are none.
pub fn access_checks_in(permissions: &[Permission], namespaces: &[String]) -> Vec<Check> {
    if namespaces.is_empty() {
        return access_checks(permissions, None);
    }
    namespaces
        .iter()
        .flat_map(|namespace| access_checks(permissions, Some(namespace)))
        .collect()
}

/// The checks of `permissions`, in `namespace` (the operator's watch
/// namespace) or cluster-wide.
pub fn access_checks(permissions: &[Permission], namespace: Option<&str>) -> Vec<Check> {
    permissions
        .iter()
        .flat_map(|permission| {
            permission.verbs.iter().map(move |verb| {
                let (resource, subresource) = match permission.resource.split_once('/') {
                    Some((resource, sub)) => (resource, Some(sub.to_owned())),
                    None => (permission.resource, None),
                };
                Check {
                    permission: *permission,
                    verb,
                    attributes: ResourceAttributes {
                        group: Some(permission.group.to_owned()),
                        resource: Some(resource.to_owned()),
                        subresource,
                        verb: Some((*verb).to_owned()),
                        namespace: namespace.map(str::to_owned),
                        ..ResourceAttributes::default()
                    },
                }
            })
        })
        .collect()
}

/// One permission the preflight found missing, with the verbs denied and
/// the namespace they were asked in (`None`: cluster-wide).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Missing {
    pub permission: Permission,
    pub verbs: Vec<&'static str>,
    pub namespace: Option<String>,
}

impl Missing {
    /// `verb,verb resource.group`, as RBAC names it, and where.
    pub fn what(&self) -> String {
        let what = format!("{} {}", self.verbs.join(","), qualified(self.permission));
        match &self.namespace {
            Some(namespace) => format!("{what} in namespace {namespace}"),
            None => what,
        }
    }

    /// The kubectl commands that grant it to `service_account`
    /// (`namespace:name`): a Role and RoleBinding in the namespace it is
    /// missing in, or a ClusterRole and ClusterRoleBinding.
    pub fn grant_command(&self, service_account: &str) -> String {
        let role = format!(
            "dbaas-operator-{}",
            self.permission.resource.replace('/', "-")
        );
        let (verbs, resource) = (self.verbs.join(","), qualified(self.permission));
        match &self.namespace {
            Some(namespace) => format!(
                "kubectl -n {namespace} create role {role} --verb={verbs} --resource={resource} && \
                 kubectl -n {namespace} create rolebinding {role} --role={role} --serviceaccount={service_account}"
            ),
            None => format!(
                "kubectl create clusterrole {role} --verb={verbs} --resource={resource} && \
                 kubectl create clusterrolebinding {role} --clusterrole={role} --serviceaccount={service_account}"
            ),
        }
    }
}

/// `resource.group/subresource`, as `kubectl create clusterrole` takes it.
fn qualified(permission: Permission) -> String {
    let (resource, subresource) = match permission.resource.split_once('/') {
        Some((resource, sub)) => (resource, Some(sub)),
        None => (permission.resource, None),
    };
    let mut name = resource.to_owned();
    if !permission.group.is_empty() {
        name.push('.');
        name.push_str(permission.group);
    }
    if let Some(subresource) = subresource {
        name.push('/');
        name.push_str(subresource);
    }
    name
}

/// Groups the denied checks by permission and namespace, in the list's
/// order.
pub fn missing(denied: &[&Check]) -> Vec<Missing> {
    let mut found: Vec<Missing> = Vec::new();
    for check in denied {
        let namespace = &check.attributes.namespace;
        match found
            .iter_mut()
            .find(|m| m.permission == check.permission && &m.namespace == namespace)
        {
            Some(missing) => missing.verbs.push(check.verb),
            None => found.push(Missing {
                permission: check.permission,
                verbs: vec![check.verb],
                namespace: namespace.clone(),
            }),
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_check_per_verb_with_subresources_split() {
        let checks = access_checks(OPERATOR_PERMISSIONS, Some("team"));
        let total: usize = OPERATOR_PERMISSIONS.iter().map(|p| p.verbs.len()).sum();
        assert_eq!(checks.len(), total);
        let status = checks
            .iter()
            .find(|c| c.permission.resource == "databaseclusters/status")
            .expect("status check");
        let attributes = &status.attributes;
        assert_eq!(attributes.resource.as_deref(), Some("databaseclusters"));
        assert_eq!(attributes.subresource.as_deref(), Some("status"));
        assert_eq!(attributes.namespace.as_deref(), Some("team"));
        let review = status.service_account_review("dbaas-system", "dbaas-operator");
        assert_eq!(
            review.spec.user.as_deref(),
            Some("system:serviceaccount:dbaas-system:dbaas-operator")
        );
    }

    #[test]
    fn missing_verbs_are_grouped_and_named_with_a_grant_command() {
        let checks = access_checks(OPERATOR_PERMISSIONS, None);
        let denied: Vec<&Check> = checks
            .iter()
            .filter(|c| c.permission.resource.starts_with("databaseclusters") && c.verb != "get")
            .collect();
        let missing = missing(&denied);
        assert_eq!(missing.len(), 2);
        assert_eq!(
            missing[0].what(),
            "list,watch,create,patch databaseclusters.dbaas.io"
        );
        assert_eq!(missing[1].what(), "patch databaseclusters.dbaas.io/status");
        assert_eq!(
            missing[1].grant_command("dbaas-system:dbaas-operator"),
            "kubectl create clusterrole dbaas-operator-databaseclusters-status --verb=patch \
             --resource=databaseclusters.dbaas.io/status && kubectl create clusterrolebinding \
             dbaas-operator-databaseclusters-status --clusterrole=dbaas-operator-databaseclusters-status \
             --serviceaccount=dbaas-system:dbaas-operator"
        );
    }

    #[test]
    fn namespaced_checks_are_asked_and_granted_per_namespace() {
        let namespaces = ["team-a".to_owned(), "team-b".to_owned()];
        let checks = access_checks_in(OPERATOR_PERMISSIONS, &namespaces);
        let per_namespace: usize = OPERATOR_PERMISSIONS.iter().map(|p| p.verbs.len()).sum();
        assert_eq!(checks.len(), 2 * per_namespace);
        assert!(
            access_checks_in(OPERATOR_PERMISSIONS, &[])
                .iter()
                .all(|c| c.attributes.namespace.is_none())
        );
        // Secrets denied in team-b only: one gap, named with its namespace.
        let denied: Vec<&Check> = checks
            .iter()
            .filter(|c| c.permission.resource == "secrets")
            .filter(|c| c.attributes.namespace.as_deref() == Some("team-b"))
            .collect();
        let missing = missing(&denied);
        assert_eq!(missing.len(), 1);
        assert_eq!(
            missing[0].what(),
            "get,list,watch,create,patch,delete secrets in namespace team-b"
        );
        assert_eq!(
            missing[0].grant_command("dbaas-system:dbaas-operator"),
            "kubectl -n team-b create role dbaas-operator-secrets \
             --verb=get,list,watch,create,patch,delete --resource=secrets && kubectl -n team-b \
             create rolebinding dbaas-operator-secrets --role=dbaas-operator-secrets \
             --serviceaccount=dbaas-system:dbaas-operator"
        );
    }

    #[test]
    fn the_cluster_role_has_one_rule_per_permission() {
        let role = operator_cluster_role("dbaas-operator");
        let rules = role.rules.expect("rules");
        assert_eq!(rules.len(), OPERATOR_PERMISSIONS.len());
        assert!(rules.iter().all(|r| !r.verbs.iter().any(|v| v == "*")));
    }
}
