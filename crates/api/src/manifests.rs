//! Every deploy manifest of the operator and the API server, from one
//! source: the objects `dbaasctl install` applies, the Helm chart
//! (`deploy/helm/dbaas-operator`) and the OLM bundle (`deploy/olm/bundle`)
//! are all rendered from [`operator_objects`] and [`server_objects`]. `cargo run -p dbaas-api --bin
//! packagegen` writes the committed files; a drift test compares them.

use std::collections::BTreeMap;

use k8s_openapi::api::rbac::v1::PolicyRule;
use serde_json::{Value, json};

use crate::rbac::{self, OPERATOR_NAME, OPERATOR_NAMESPACE, Permission};

/// The API server's name: its ServiceAccount, ClusterRole, binding,
/// Deployment and Service.
pub const SERVER_NAME: &str = "dbaas-server";
/// The operator's metrics Service.
pub const METRICS_SERVICE_NAME: &str = "dbaas-operator-metrics";
/// Image both binaries (`dbaas-operator`, `dbaas-server`) come from. No
/// image is published from this repository; the manifests name it.
pub const IMAGE_REPOSITORY: &str = "ghcr.io/dbaas-operator/dbaas-operator";
/// The release these manifests describe (the workspace version).
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
/// Port of the operator's `/metrics`, `/healthz`, `/readyz` and of the API.
pub const HTTP_PORT: i32 = 8080;
/// The API server's HTTPS port (container and Service).
pub const SERVER_PORT: i32 = 8443;
/// The `kubernetes.io/tls` Secret (`tls.crt`, `tls.key`) the API server
/// serves HTTPS with, unless the chart's `apiServer.tls.secretName` says
/// otherwise; created by the installer, or by cert-manager from the
/// chart's Certificate (`apiServer.tls.certManager.enabled`).
pub const SERVER_TLS_SECRET: &str = "dbaas-server-tls";
/// Where the API server's Secret is mounted.
const SERVER_TLS_DIR: &str = "/etc/dbaas-server/tls";
/// Label every packaged object carries, and the Namespace `dbaasctl
/// install` created (uninstall deletes only such a Namespace).
pub const LABEL_PART_OF: &str = "app.kubernetes.io/part-of";

const SERVER_KINDS: &[&str] = &[
    "databaseclusters",
    "databaseengines",
    "databaseclustertemplates",
    "backupscheduletemplates",
    "backupstorages",
    "monitoringconfigs",
    "databaseclaims",
    "opsrequests",
    "databasebackups",
];

/// What the API server (`crates/server`) asks of the Kubernetes API with
/// its own identity: everything else it does as the caller.
pub const SERVER_PERMISSIONS: &[Permission] = &[
    Permission {
        group: "authentication.k8s.io",
        resource: "tokenreviews",
        verbs: &["create"],
        why: "authenticate each caller's bearer token",
        required: true,
    },
    Permission {
        group: "authorization.k8s.io",
        resource: "subjectaccessreviews",
        verbs: &["create"],
        why: "authorize each request as the caller",
        required: true,
    },
    Permission {
        group: "",
        resource: "users",
        verbs: &["impersonate"],
        why: "write as the caller",
        required: true,
    },
    Permission {
        group: "",
        resource: "groups",
        verbs: &["impersonate"],
        why: "write as the caller (with the caller's groups)",
        required: true,
    },
    Permission {
        group: "",
        resource: "serviceaccounts",
        verbs: &["impersonate"],
        why: "write as a calling ServiceAccount",
        required: true,
    },
    // The caller's uid (`uids`) and extra attributes (`userextras/<key>`):
    // the keys depend on the authenticator (ServiceAccount tokens carry
    // `authentication.kubernetes.io/credential-id`, pod and node names, OIDC
    // others) and RBAC has no `userextras/*`, so every resource of the
    // group, for `impersonate` only.
    Permission {
        group: "authentication.k8s.io",
        resource: "*",
        verbs: &["impersonate"],
        why: "write as the caller, with the caller's uid and extra attributes",
        required: true,
    },
    Permission {
        group: "",
        resource: "nodes",
        verbs: &["list"],
        why: "available resources of a cluster: the nodes' allocatable CPU, memory and storage",
        required: false,
    },
    Permission {
        group: "",
        resource: "pods",
        verbs: &["list"],
        why: "available resources of a cluster: what the pods on the nodes request",
        required: false,
    },
    Permission {
        group: "storage.k8s.io",
        resource: "storageclasses",
        verbs: &["list"],
        why: "available resources of a cluster: its storage classes",
        required: false,
    },
];

/// What the API server asks of its own namespace only (a Role, not a
/// ClusterRole): the registrations of other Kubernetes clusters are Secrets
/// there, holding their kubeconfigs.
pub const SERVER_NAMESPACE_PERMISSIONS: &[Permission] = &[Permission {
    group: "",
    resource: "secrets",
    verbs: &[
        "get", "list", "watch", "create", "patch", "update", "delete",
    ],
    why: "register, rename and unregister other Kubernetes clusters (their kubeconfigs are Secrets in the server's namespace)",
    required: false,
}];

/// What DatabaseEngines may install through OLM by default (the
/// operator's `DBAAS_OLM_ALLOWLIST`): the engine operators' packages from
/// OperatorHub's catalog, each serving its own namespace only. The same as
/// the operator's built-in default (`OlmAllowlist::default()`; a test in
/// dbaas-operator compares them).
pub fn default_olm_allowlist() -> Value {
    json!({
        "packages": crate::EngineType::ALL.map(crate::EngineType::olm_package),
        "catalogs": [{"name": "operatorhubio-catalog", "namespace": "olm"}],
        "installModes": ["OwnNamespace"],
    })
}

/// What the packaged objects are made with: concrete values for `dbaasctl
/// install`, Helm template expressions for the chart.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Namespace of the operator and the API server.
    pub namespace: Value,
    /// `repository:tag` of the image.
    pub image: Value,
    pub image_pull_policy: Value,
    /// The `DBAAS_WATCH_NAMESPACE` env entry ("" watches all namespaces).
    pub watch_namespace_env: Value,
    pub operator_replicas: Value,
    /// "true" or "false" (an env value).
    pub leader_election: Value,
    /// The `DBAAS_OLM_ALLOWLIST` env value: the OLM allowlist as JSON text.
    pub olm_allowlist: Value,
    pub operator_resources: Value,
    pub server_replicas: Value,
    pub server_resources: Value,
    /// The Secret with the API server's `tls.crt` and `tls.key`.
    pub server_tls_secret: Value,
}

/// The knobs of `dbaasctl install` (and the chart's defaults).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InstallOptions {
    pub namespace: String,
    pub image: String,
    /// Watch only these namespaces, with Roles in each instead of a
    /// ClusterRole; empty watches all.
    pub watch_namespaces: Vec<String>,
    /// With watch namespaces: also a Role to read each allowed
    /// CatalogSource in its namespace (only where OLM is installed).
    pub olm_catalog_roles: bool,
    pub operator_replicas: i32,
    pub leader_election: bool,
    /// Also run the REST API server.
    pub api_server: bool,
}

impl Default for InstallOptions {
    fn default() -> Self {
        Self {
            namespace: OPERATOR_NAMESPACE.to_owned(),
            image: format!("{IMAGE_REPOSITORY}:{VERSION}"),
            watch_namespaces: Vec::new(),
            olm_catalog_roles: false,
            operator_replicas: 2,
            leader_election: true,
            api_server: true,
        }
    }
}

fn operator_resources() -> Value {
    json!({"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "512Mi"}})
}

fn server_resources() -> Value {
    json!({"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"memory": "256Mi"}})
}

const SERVER_REPLICAS: i32 = 1;

impl Settings {
    /// Concrete settings from install options.
    pub fn from_options(options: &InstallOptions) -> Self {
        Self {
            namespace: json!(options.namespace),
            image: json!(options.image),
            image_pull_policy: json!("IfNotPresent"),
            watch_namespace_env: json!({
                "name": "DBAAS_WATCH_NAMESPACE",
                "value": options.watch_namespaces.join(","),
            }),
            operator_replicas: json!(options.operator_replicas),
            leader_election: json!(options.leader_election.to_string()),
            // serde_json writes keys sorted and compact, as Helm's toJson.
            olm_allowlist: json!(
                serde_json::to_string(&default_olm_allowlist()).unwrap_or_default()
            ),
            operator_resources: operator_resources(),
            server_replicas: json!(SERVER_REPLICAS),
            server_resources: server_resources(),
            server_tls_secret: json!(SERVER_TLS_SECRET),
        }
    }
}

fn labels(component: &str) -> Value {
    json!({
        "app.kubernetes.io/name": OPERATOR_NAME,
        "app.kubernetes.io/component": component,
        LABEL_PART_OF: OPERATOR_NAME,
    })
}

fn selector(component: &str) -> Value {
    json!({"app.kubernetes.io/name": OPERATOR_NAME, "app.kubernetes.io/component": component})
}

fn metadata(name: &str, namespace: Option<&Value>, component: &str) -> Value {
    let mut meta = json!({"name": name, "labels": labels(component)});
    if let (Some(namespace), Some(map)) = (namespace, meta.as_object_mut()) {
        map.insert("namespace".to_owned(), namespace.clone());
    }
    meta
}

fn probe(path: &str, port: &str, period: i32) -> Value {
    json!({"httpGet": {"path": path, "port": port}, "periodSeconds": period, "failureThreshold": 3})
}

fn https_probe(path: &str, port: &str, period: i32) -> Value {
    json!({"httpGet": {"path": path, "port": port, "scheme": "HTTPS"}, "periodSeconds": period, "failureThreshold": 3})
}

/// Non-root, no privilege escalation, read-only root, no capabilities: the
/// Pod Security `restricted` profile. The image must run as a numeric
/// non-root user.
fn pod_security_context() -> Value {
    json!({"runAsNonRoot": true, "seccompProfile": {"type": "RuntimeDefault"}})
}

fn container_security_context() -> Value {
    json!({
        "allowPrivilegeEscalation": false,
        "readOnlyRootFilesystem": true,
        "runAsNonRoot": true,
        "capabilities": {"drop": ["ALL"]},
    })
}

fn rules(permissions: &[Permission]) -> Value {
    let rules: Vec<PolicyRule> = permissions
        .iter()
        .map(|p| PolicyRule {
            api_groups: Some(vec![p.group.to_owned()]),
            resources: Some(vec![p.resource.to_owned()]),
            verbs: p.verbs.iter().map(|v| (*v).to_owned()).collect(),
            ..PolicyRule::default()
        })
        .collect();
    serde_json::to_value(rules).unwrap_or(Value::Null)
}

/// The API server's rules: [`SERVER_PERMISSIONS`] and list/watch of every
/// kind it serves from its caches.
pub fn server_rules() -> Value {
    let mut rules = rules(SERVER_PERMISSIONS);
    if let Some(list) = rules.as_array_mut() {
        list.push(json!({
            "apiGroups": ["dbaas.io"],
            "resources": SERVER_KINDS,
            "verbs": ["list", "watch"],
        }));
    }
    rules
}

/// The operator's ClusterRole rules, from [`rbac::OPERATOR_PERMISSIONS`].
pub fn operator_rules() -> Value {
    rules(rbac::OPERATOR_PERMISSIONS)
}

fn env(name: &str, value: &Value) -> Value {
    json!({"name": name, "value": value})
}

fn field_env(name: &str, path: &str) -> Value {
    json!({"name": name, "valueFrom": {"fieldRef": {"fieldPath": path}}})
}

/// The operator's Deployment spec (also the OLM install strategy's).
pub fn operator_deployment_spec(settings: &Settings) -> Value {
    json!({
        "replicas": settings.operator_replicas,
        "selector": {"matchLabels": selector("operator")},
        "template": {
            "metadata": {"labels": labels("operator")},
            "spec": {
                "serviceAccountName": OPERATOR_NAME,
                "securityContext": pod_security_context(),
                // A leader that loses its Lease exits; SIGTERM hands it back.
                "terminationGracePeriodSeconds": 30,
                "containers": [{
                    "name": "operator",
                    "image": settings.image,
                    "imagePullPolicy": settings.image_pull_policy,
                    "command": ["dbaas-operator"],
                    "env": [
                        field_env("POD_NAME", "metadata.name"),
                        field_env("POD_NAMESPACE", "metadata.namespace"),
                        settings.watch_namespace_env,
                        env("DBAAS_LEADER_ELECT", &settings.leader_election),
                        // The Lease lives beside the pods, whatever they watch.
                        field_env("DBAAS_LEADER_ELECTION_NAMESPACE", "metadata.namespace"),
                        env("DBAAS_SERVICE_ACCOUNT", &json!(format!("$(POD_NAMESPACE):{OPERATOR_NAME}"))),
                        env("DBAAS_METRICS_ADDR", &json!(format!("0.0.0.0:{HTTP_PORT}"))),
                        env("DBAAS_LOG_FORMAT", &json!("json")),
                        // What DatabaseEngines may install through OLM.
                        env("DBAAS_OLM_ALLOWLIST", &settings.olm_allowlist),
                    ],
                    "ports": [{"name": "metrics", "containerPort": HTTP_PORT, "protocol": "TCP"}],
                    "livenessProbe": probe("/healthz", "metrics", 20),
                    "readinessProbe": probe("/readyz", "metrics", 10),
                    "resources": settings.operator_resources,
                    "securityContext": container_security_context(),
                }],
            },
        },
    })
}

/// The API server's Deployment spec.
pub fn server_deployment_spec(settings: &Settings) -> Value {
    json!({
        "replicas": settings.server_replicas,
        "selector": {"matchLabels": selector("api-server")},
        "template": {
            "metadata": {"labels": labels("api-server")},
            "spec": {
                "serviceAccountName": SERVER_NAME,
                "securityContext": pod_security_context(),
                "containers": [{
                    "name": "api-server",
                    "image": settings.image,
                    "imagePullPolicy": settings.image_pull_policy,
                    // HTTPS from the mounted Secret, read again when
                    // the kubelet updates it (cert-manager renewals).
                    "command": [
                        "dbaas-server", "--log-format", "json",
                        "--tls-cert-file", format!("{SERVER_TLS_DIR}/tls.crt"),
                        "--tls-key-file", format!("{SERVER_TLS_DIR}/tls.key"),
                    ],
                    "env": [
                        env("DBAAS_SERVER_LISTEN", &json!(format!("0.0.0.0:{SERVER_PORT}"))),
                        field_env("POD_NAMESPACE", "metadata.namespace"),
                    ],
                    "ports": [{"name": "https", "containerPort": SERVER_PORT, "protocol": "TCP"}],
                    "livenessProbe": https_probe("/healthz", "https", 20),
                    "readinessProbe": https_probe("/readyz", "https", 10),
                    "resources": settings.server_resources,
                    "securityContext": container_security_context(),
                    "volumeMounts": [{"name": "tls", "mountPath": SERVER_TLS_DIR, "readOnly": true}],
                }],
                "volumes": [{"name": "tls", "secret": {"secretName": settings.server_tls_secret}}],
            },
        },
    })
}

fn service(
    name: &str,
    namespace: Option<&Value>,
    component: &str,
    port: &str,
    number: i32,
) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata(name, namespace, component),
        "spec": {
            "type": "ClusterIP",
            "selector": selector(component),
            "ports": [{"name": port, "port": number, "targetPort": port, "protocol": "TCP"}],
        },
    })
}

/// The operator's metrics Service.
pub fn metrics_service(namespace: Option<&Value>) -> Value {
    service(
        METRICS_SERVICE_NAME,
        namespace,
        "operator",
        "metrics",
        HTTP_PORT,
    )
}

/// The API server's Service.
pub fn server_service(namespace: Option<&Value>) -> Value {
    service(SERVER_NAME, namespace, "api-server", "https", SERVER_PORT)
}

/// A cert-manager Certificate for the API server's Service names, into
/// `settings.server_tls_secret` (the chart renders it when
/// `apiServer.tls.certManager.enabled`).
pub fn server_certificate(settings: &Settings, issuer_name: &Value, issuer_kind: &Value) -> Value {
    let ns = &settings.namespace;
    let ns_text = ns.as_str().unwrap_or_default();
    json!({
        "apiVersion": "cert-manager.io/v1",
        "kind": "Certificate",
        "metadata": metadata(SERVER_NAME, Some(ns), "api-server"),
        "spec": {
            "secretName": settings.server_tls_secret,
            "dnsNames": [
                SERVER_NAME,
                format!("{SERVER_NAME}.{ns_text}"),
                format!("{SERVER_NAME}.{ns_text}.svc"),
                format!("{SERVER_NAME}.{ns_text}.svc.cluster.local"),
            ],
            "usages": ["digital signature", "key encipherment", "server auth"],
            "issuerRef": {"name": issuer_name, "kind": issuer_kind, "group": "cert-manager.io"},
        },
    })
}

fn service_account(name: &str, namespace: &Value, component: &str) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": metadata(name, Some(namespace), component),
    })
}

fn cluster_role(name: &str, component: &str, rules: Value) -> Value {
    json!({
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": metadata(name, None, component),
        "rules": rules,
    })
}

fn role(name: &str, namespace: &Value, component: &str, rules: Value) -> Value {
    json!({
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": metadata(name, Some(namespace), component),
        "rules": rules,
    })
}

fn role_binding(name: &str, namespace: &Value, component: &str) -> Value {
    json!({
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": metadata(name, Some(namespace), component),
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
        "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": namespace}],
    })
}

fn cluster_role_binding(name: &str, namespace: &Value, component: &str) -> Value {
    json!({
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRoleBinding",
        "metadata": metadata(name, None, component),
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name},
        "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": namespace}],
    })
}

fn deployment(name: &str, namespace: &Value, component: &str, spec: Value) -> Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": metadata(name, Some(namespace), component),
        "spec": spec,
    })
}

/// The operator's ClusterRole and its binding: what it needs to watch
/// every namespace.
pub fn operator_cluster_rbac(settings: &Settings) -> Vec<Value> {
    vec![
        cluster_role(OPERATOR_NAME, "operator", operator_rules()),
        cluster_role_binding(OPERATOR_NAME, &settings.namespace, "operator"),
    ]
}

/// Label on the namespaced RBAC of an install, naming the install's own
/// namespace: what `dbaasctl install` prunes and `uninstall` removes.
pub const LABEL_INSTALL_NAMESPACE: &str = "dbaas.io/install-namespace";

/// The metadata of one object of an install's namespaced RBAC.
fn rbac_metadata(name: &str, namespace: &Value, install_namespace: &Value) -> Value {
    let mut meta = metadata(name, Some(namespace), "operator");
    meta["labels"][LABEL_INSTALL_NAMESPACE] = install_namespace.clone();
    meta
}

/// A namespaced Role of the operator's install in `install_namespace`.
fn operator_role(name: &str, namespace: &Value, install_namespace: &Value, rules: Value) -> Value {
    let mut role = role(name, namespace, "operator", rules);
    role["metadata"] = rbac_metadata(name, namespace, install_namespace);
    role
}

/// A RoleBinding in `namespace` of Role `role` to the operator's
/// ServiceAccount in `account_namespace`.
fn operator_role_binding(role: &str, namespace: &Value, account_namespace: &Value) -> Value {
    json!({
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": rbac_metadata(role, namespace, account_namespace),
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": role},
        "subjects": [{"kind": "ServiceAccount", "name": OPERATOR_NAME, "namespace": account_namespace}],
    })
}

/// The operator's Role in one watched namespace (the rules of its
/// ClusterRole, granted there only) and its binding.
pub fn operator_watched_namespace_rbac(settings: &Settings, watched: &Value) -> Vec<Value> {
    vec![
        operator_role(
            OPERATOR_NAME,
            watched,
            &settings.namespace,
            operator_rules(),
        ),
        operator_role_binding(OPERATOR_NAME, watched, &settings.namespace),
    ]
}

/// Name of the Role for the leader Lease in the operator's own namespace,
/// when it watches a list of namespaces.
pub const OPERATOR_LEADER_ROLE: &str = "dbaas-operator-leader";

/// With a list of watched namespaces: the Lease in the operator's own
/// namespace.
pub fn operator_leader_rbac(settings: &Settings) -> Vec<Value> {
    let ns = &settings.namespace;
    let leases = rbac::OPERATOR_PERMISSIONS
        .iter()
        .filter(|p| p.resource == "leases")
        .copied()
        .collect::<Vec<_>>();
    vec![
        operator_role(OPERATOR_LEADER_ROLE, ns, ns, rules(&leases)),
        operator_role_binding(OPERATOR_LEADER_ROLE, ns, ns),
    ]
}

/// With a list of watched namespaces: reading one allowed CatalogSource
/// (`name` in `namespace`), which OLM installs check before subscribing.
pub fn operator_catalog_rbac(settings: &Settings, name: &Value, namespace: &Value) -> Vec<Value> {
    // Named after the install too: two installs share OLM's namespace.
    let role_name = format!(
        "{OPERATOR_NAME}-{}-catalog-{}",
        settings.namespace.as_str().unwrap_or_default(),
        name.as_str().unwrap_or_default()
    );
    let rules = json!([{
        "apiGroups": ["operators.coreos.com"],
        "resources": ["catalogsources"],
        "resourceNames": [name],
        "verbs": ["get"],
    }]);
    vec![
        operator_role(&role_name, namespace, &settings.namespace, rules),
        operator_role_binding(&role_name, namespace, &settings.namespace),
    ]
}

/// The operator's RBAC when it watches `watched` only: a Role in each, the
/// Lease's Role at home and, with `olm_catalogs`, one per allowed
/// CatalogSource; no ClusterRole.
pub fn operator_namespaced_rbac(
    settings: &Settings,
    watched: &[String],
    olm_catalogs: bool,
) -> Vec<Value> {
    let mut objects: Vec<Value> = watched
        .iter()
        .flat_map(|ns| operator_watched_namespace_rbac(settings, &json!(ns)))
        .collect();
    objects.extend(operator_leader_rbac(settings));
    if !olm_catalogs {
        return objects;
    }
    let catalogs = default_olm_allowlist()["catalogs"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    for catalog in catalogs {
        objects.extend(operator_catalog_rbac(
            settings,
            &catalog["name"],
            &catalog["namespace"],
        ));
    }
    objects
}

/// The operator's objects, in apply order (no Namespace, no CRDs), with
/// `rbac` (cluster-wide or namespaced) after its ServiceAccount.
pub fn operator_objects(settings: &Settings, rbac: Vec<Value>) -> Vec<Value> {
    let ns = &settings.namespace;
    let mut objects = vec![service_account(OPERATOR_NAME, ns, "operator")];
    objects.extend(rbac);
    objects.extend(operator_workload(settings));
    objects
}

/// The operator's Deployment and metrics Service.
fn operator_workload(settings: &Settings) -> Vec<Value> {
    let ns = &settings.namespace;
    vec![
        deployment(
            OPERATOR_NAME,
            ns,
            "operator",
            operator_deployment_spec(settings),
        ),
        metrics_service(Some(ns)),
    ]
}

/// The API server's objects, in apply order.
pub fn server_objects(settings: &Settings) -> Vec<Value> {
    let ns = &settings.namespace;
    vec![
        service_account(SERVER_NAME, ns, "api-server"),
        cluster_role(SERVER_NAME, "api-server", server_rules()),
        cluster_role_binding(SERVER_NAME, ns, "api-server"),
        role(
            SERVER_NAME,
            ns,
            "api-server",
            rules(SERVER_NAMESPACE_PERMISSIONS),
        ),
        role_binding(SERVER_NAME, ns, "api-server"),
        deployment(
            SERVER_NAME,
            ns,
            "api-server",
            server_deployment_spec(settings),
        ),
        server_service(Some(ns)),
    ]
}

/// The Namespace `dbaasctl install` creates.
pub fn namespace_object(name: &str) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": name, "labels": labels("operator")},
    })
}

/// What `dbaasctl install` applies after the CRDs: the Namespace, then the
/// operator's and (when asked) the API server's objects.
pub fn install_objects(options: &InstallOptions) -> Vec<Value> {
    let settings = Settings::from_options(options);
    let mut objects = vec![namespace_object(&options.namespace)];
    let rbac = if options.watch_namespaces.is_empty() {
        operator_cluster_rbac(&settings)
    } else {
        operator_namespaced_rbac(
            &settings,
            &options.watch_namespaces,
            options.olm_catalog_roles,
        )
    };
    objects.extend(operator_objects(&settings, rbac));
    if options.api_server {
        objects.extend(server_objects(&settings));
    }
    objects
}

/// Why rendering failed.
#[derive(Debug)]
pub enum PackageError {
    Yaml(String),
    Sample(String),
}

// dbaas-api has no thiserror dependency: Display by hand.
impl std::error::Error for PackageError {}

impl std::fmt::Display for PackageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Yaml(detail) => write!(f, "writing YAML: {detail}"),
            Self::Sample(detail) => write!(f, "reading a sample: {detail}"),
        }
    }
}

fn yaml(value: &Value) -> Result<String, PackageError> {
    serde_saphyr::to_string(value).map_err(|e| PackageError::Yaml(e.to_string()))
}

/// Objects as one multi-document YAML text.
pub fn to_yaml_documents(objects: &[Value]) -> Result<String, PackageError> {
    let documents: Result<Vec<String>, PackageError> = objects.iter().map(yaml).collect();
    Ok(documents?.join("---\n"))
}

const GENERATED: &str = "# Generated from crates/api/src/manifests.rs by `cargo run -p dbaas-api --bin packagegen`. Do not edit.\n";

/// One file of the packaging, relative to `deploy/`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PackageFile {
    pub path: String,
    pub contents: String,
}

/// A sample of `deploy/samples` (for alm-examples): its path and text.
#[derive(Clone, Debug)]
pub struct Sample {
    pub path: String,
    pub text: String,
}

/// The chart's directory, relative to `deploy/`.
pub const CHART_DIR: &str = "helm/dbaas-operator";
/// The bundle's directory, relative to `deploy/`.
pub const BUNDLE_DIR: &str = "olm/bundle";
/// The plain manifests (what `dbaasctl install` applies after the CRDs).
pub const INSTALL_FILE: &str = "install/dbaas-operator.yaml";

/// Every generated packaging file: the plain install manifests, the Helm
/// chart and the OLM bundle.
pub fn package_files(samples: &[Sample]) -> Result<Vec<PackageFile>, PackageError> {
    let mut files = vec![PackageFile {
        path: INSTALL_FILE.to_owned(),
        contents: format!(
            "{GENERATED}# `dbaasctl install` applies these after the CRDs of deploy/crds.\n{}",
            to_yaml_documents(&install_objects(&InstallOptions::default()))?
        ),
    }];
    files.extend(helm::files()?);
    files.extend(olm::files(samples)?);
    Ok(files)
}

fn crd_files(dir: &str) -> Result<Vec<PackageFile>, PackageError> {
    crate::crds::all()
        .iter()
        .map(|crd| {
            Ok(PackageFile {
                path: format!("{dir}/{}", crate::crds::file_name(crd)),
                contents: crate::crds::to_yaml(crd)
                    .map_err(|e| PackageError::Yaml(e.to_string()))?,
            })
        })
        .collect()
}

pub mod helm {
    //! The Helm chart: the objects of [`super::operator_objects`] and
    //! [`super::server_objects`] made with settings
    //! whose values are placeholders, each replaced by its template
    //! expression after serialising.

    use super::*;

    /// (placeholder, expression, whether it is a YAML block).
    const PLACEHOLDERS: &[(&str, &str, bool)] = &[
        ("HELM__namespace__", "{{ .Release.Namespace }}", false),
        (
            "HELM__image__",
            "\"{{ .Values.image.repository }}:{{ .Values.image.tag }}\"",
            false,
        ),
        (
            "HELM__imagePullPolicy__",
            "{{ .Values.image.pullPolicy }}",
            false,
        ),
        (
            "HELM__watchNamespace__",
            "{{ join \",\" .Values.watchNamespaces | quote }}",
            false,
        ),
        // Inside `range`, where `.` is the item and the root is `$`.
        ("HELM__rootNamespace__", "{{ $.Release.Namespace }}", false),
        ("HELM__watched__", "{{ . }}", false),
        ("HELM__catalogName__", "{{ .name }}", false),
        ("HELM__catalogNamespace__", "{{ .namespace }}", false),
        (
            "HELM__operatorReplicas__",
            "{{ .Values.operator.replicas }}",
            false,
        ),
        (
            "HELM__leaderElection__",
            "{{ .Values.operator.leaderElection | quote }}",
            false,
        ),
        (
            "HELM__olmAllowlist__",
            "{{ .Values.operator.olmAllowlist | toJson | quote }}",
            false,
        ),
        (
            "HELM__operatorResources__",
            ".Values.operator.resources",
            true,
        ),
        (
            "HELM__serverReplicas__",
            "{{ .Values.apiServer.replicas }}",
            false,
        ),
        (
            "HELM__serverResources__",
            ".Values.apiServer.resources",
            true,
        ),
        (
            "HELM__serverTlsSecret__",
            "{{ .Values.apiServer.tls.secretName }}",
            false,
        ),
        (
            "HELM__issuerName__",
            "{{ required \"apiServer.tls.certManager.issuerRef.name is required\" .Values.apiServer.tls.certManager.issuerRef.name }}",
            false,
        ),
        (
            "HELM__issuerKind__",
            "{{ .Values.apiServer.tls.certManager.issuerRef.kind }}",
            false,
        ),
    ];

    fn settings() -> Settings {
        Settings {
            namespace: json!("HELM__namespace__"),
            image: json!("HELM__image__"),
            image_pull_policy: json!("HELM__imagePullPolicy__"),
            watch_namespace_env: json!({"name": "DBAAS_WATCH_NAMESPACE", "value": "HELM__watchNamespace__"}),
            operator_replicas: json!("HELM__operatorReplicas__"),
            leader_election: json!("HELM__leaderElection__"),
            olm_allowlist: json!("HELM__olmAllowlist__"),
            operator_resources: json!("HELM__operatorResources__"),
            server_replicas: json!("HELM__serverReplicas__"),
            server_resources: json!("HELM__serverResources__"),
            server_tls_secret: json!("HELM__serverTlsSecret__"),
        }
    }

    /// Replaces each placeholder by its expression; a block placeholder
    /// (`key: PLACEHOLDER`) becomes `key:` and the value's YAML indented
    /// under it.
    pub fn templated(yaml: &str) -> Result<String, PackageError> {
        let mut out = String::with_capacity(yaml.len());
        for line in yaml.lines() {
            let mut line = line.to_owned();
            for (placeholder, expression, block) in PLACEHOLDERS {
                if !line.contains(placeholder) {
                    continue;
                }
                line = if *block {
                    let key_indent = line.len() - line.trim_start_matches([' ', '-']).len();
                    line.replace(
                        &format!(" {placeholder}"),
                        &format!(
                            "\n{}{{{{- toYaml {expression} | nindent {} }}}}",
                            " ".repeat(key_indent + 2),
                            key_indent + 2
                        ),
                    )
                } else {
                    line.replace(placeholder, expression)
                };
            }
            if line.contains("HELM__") {
                return Err(PackageError::Yaml(format!(
                    "a placeholder was quoted or is unknown: {line}"
                )));
            }
            out.push_str(&line);
            out.push('\n');
        }
        Ok(out)
    }

    /// `values.yaml`: the chart's knobs with the same defaults as
    /// `dbaasctl install`.
    pub fn values() -> Value {
        let defaults = InstallOptions::default();
        json!({
            "image": {
                "repository": IMAGE_REPOSITORY,
                "tag": VERSION,
                "pullPolicy": "IfNotPresent",
            },
            "watchNamespaces": [],
            "operator": {
                "replicas": defaults.operator_replicas,
                "leaderElection": defaults.leader_election,
                "resources": operator_resources(),
                "olmAllowlist": default_olm_allowlist(),
            },
            "apiServer": {
                "enabled": defaults.api_server,
                "replicas": SERVER_REPLICAS,
                "resources": server_resources(),
                "tls": {
                    "secretName": SERVER_TLS_SECRET,
                    "certManager": {
                        "enabled": false,
                        "issuerRef": {"name": "", "kind": "Issuer"},
                    },
                },
            },
        })
    }

    /// `values.schema.json`: helm refuses values of the wrong type and
    /// unknown keys (a misspelt knob would otherwise be ignored).
    pub fn values_schema() -> Value {
        let resources = json!({
            "type": "object",
            "additionalProperties": false,
            "properties": {
                "requests": {"type": "object", "additionalProperties": {"type": ["string", "integer"]}},
                "limits": {"type": "object", "additionalProperties": {"type": ["string", "integer"]}},
            },
        });
        let closed = |properties: Value, required: &[&str]| {
            json!({
                "type": "object",
                "additionalProperties": false,
                "required": required,
                "properties": properties,
            })
        };
        let names = json!({"type": "array", "items": {"type": "string", "minLength": 1}});
        let olm_allowlist = closed(
            json!({
                "packages": names,
                "catalogs": {"type": "array", "items": closed(json!({
                    "name": {"type": "string", "minLength": 1},
                    "namespace": {"type": "string", "minLength": 1},
                }), &["name", "namespace"])},
                "installModes": {"type": "array", "items": {"enum": ["OwnNamespace", "SingleNamespace", "MultiNamespace", "AllNamespaces"]}},
            }),
            &["packages", "catalogs", "installModes"],
        );
        let mut schema = closed(
            json!({
                "image": closed(json!({
                    "repository": {"type": "string", "minLength": 1},
                    "tag": {"type": "string", "minLength": 1},
                    "pullPolicy": {"enum": ["Always", "IfNotPresent", "Never"]},
                }), &["repository", "tag"]),
                "watchNamespaces": {
                    "type": "array",
                    "uniqueItems": true,
                    "items": {"type": "string", "maxLength": 63, "pattern": crate::common::DNS_LABEL_PATTERN},
                },
                "operator": closed(json!({
                    "replicas": {"type": "integer", "minimum": 1},
                    "leaderElection": {"type": "boolean"},
                    "resources": resources,
                    "olmAllowlist": olm_allowlist,
                }), &["replicas", "leaderElection", "olmAllowlist"]),
                "apiServer": closed(json!({
                    "enabled": {"type": "boolean"},
                    "replicas": {"type": "integer", "minimum": 1},
                    "resources": resources,
                    "tls": closed(json!({
                        "secretName": {"type": "string", "minLength": 1},
                        "certManager": closed(json!({
                            "enabled": {"type": "boolean"},
                            "issuerRef": closed(json!({
                                "name": {"type": "string"},
                                "kind": {"enum": ["Issuer", "ClusterIssuer"]},
                            }), &["name", "kind"]),
                        }), &["enabled", "issuerRef"]),
                    }), &["secretName", "certManager"]),
                }), &["enabled", "replicas", "tls"]),
            }),
            &["image", "operator", "apiServer"],
        );
        if let Some(map) = schema.as_object_mut() {
            map.insert(
                "$schema".to_owned(),
                json!("https://json-schema.org/draft-07/schema#"),
            );
            map.insert("title".to_owned(), json!("dbaas-operator chart values"));
        }
        schema
    }

    const VALUES_HELP: &str = "\
# image: the image holding both binaries (dbaas-operator, dbaas-server); none
#   is published from the dbaas-operator repository: build and push your own.
# watchNamespaces: watch only these namespaces, with a Role in each (and
#   one for the leader Lease here and, where OLM's API is served, one per
#   allowed CatalogSource, whose namespace must exist) instead of the
#   cluster-wide ClusterRole; [] watches all namespaces.
# operator.leaderElection: replicas elect a leader with a Lease; the others
#   stand by (keep it on with more than one replica).
# operator.olmAllowlist: what DatabaseEngines may install through OLM (the
#   operator subscribes and approves with its own cluster-wide account): OLM
#   packages, CatalogSources (name and namespace) and install modes
#   (OwnNamespace, SingleNamespace, MultiNamespace, AllNamespaces:
#   the namespaces an OperatorGroup reaches). Anything else is refused with
#   Ready=False, OperatorInstallNotAllowed. Lists replace the defaults.
# apiServer.enabled: also run the REST API server (dbaas-server).
# apiServer.tls.secretName: the kubernetes.io/tls Secret (tls.crt, tls.key)
#   the API server serves HTTPS with (reloaded when it changes). Create it
#   yourself, or let cert-manager: apiServer.tls.certManager.enabled renders
#   a Certificate for the Service's names from issuerRef (an Issuer in the
#   release namespace or a ClusterIssuer).
";

    /// `templates/operator.yaml`: the operator's objects, with a Role per
    /// watched namespace when `watchNamespaces` lists some, else its
    /// ClusterRole.
    fn operator_template(settings: &Settings) -> Result<String, PackageError> {
        let text = |objects: Vec<Value>| -> Result<String, PackageError> {
            templated(&to_yaml_documents(&objects)?)
        };
        // Subjects inside `range` name the release namespace through `$`.
        let in_range = Settings {
            namespace: json!("HELM__rootNamespace__"),
            ..settings.clone()
        };
        let account = text(operator_objects(settings, Vec::new())[..1].to_vec())?;
        Ok(format!(
            "{GENERATED}{account}\
             {{{{- if .Values.watchNamespaces }}}}\n\
             {{{{- range .Values.watchNamespaces }}}}\n---\n{watched}{{{{- end }}}}\n\
             ---\n{leader}\
             {{{{- if .Capabilities.APIVersions.Has \"operators.coreos.com/v1alpha1/CatalogSource\" }}}}\n\
             {{{{- range .Values.operator.olmAllowlist.catalogs }}}}\n---\n{catalog}{{{{- end }}}}\n\
             {{{{- end }}}}\n\
             {{{{- else }}}}\n---\n{cluster}{{{{- end }}}}\n\
             ---\n{workload}",
            watched = text(operator_watched_namespace_rbac(
                &in_range,
                &json!("HELM__watched__")
            ))?,
            leader = text(operator_leader_rbac(settings))?,
            catalog = text(operator_catalog_rbac(
                &in_range,
                &json!("HELM__catalogName__"),
                &json!("HELM__catalogNamespace__")
            ))?,
            cluster = text(operator_cluster_rbac(settings))?,
            workload = text(operator_workload(settings))?,
        ))
    }

    /// The chart's files, relative to `deploy/`.
    pub fn files() -> Result<Vec<PackageFile>, PackageError> {
        let settings = settings();
        let chart = json!({
            "apiVersion": "v2",
            "name": OPERATOR_NAME,
            "description": "dbaas-operator: one DatabaseCluster API over CloudNativePG, Percona XtraDB Cluster and Percona Server for MongoDB, with its REST API server",
            "type": "application",
            "version": VERSION,
            "appVersion": VERSION,
            "kubeVersion": ">=1.30.0-0",
        });
        let server = to_yaml_documents(&server_objects(&settings))?;
        let certificate = yaml(&server_certificate(
            &settings,
            &json!("HELM__issuerName__"),
            &json!("HELM__issuerKind__"),
        ))?;
        let mut files = vec![
            PackageFile {
                path: format!("{CHART_DIR}/Chart.yaml"),
                contents: format!("{GENERATED}{}", yaml(&chart)?),
            },
            PackageFile {
                path: format!("{CHART_DIR}/values.yaml"),
                contents: format!("{GENERATED}{VALUES_HELP}{}", yaml(&values())?),
            },
            PackageFile {
                path: format!("{CHART_DIR}/values.schema.json"),
                contents: serde_json::to_string_pretty(&values_schema())
                    .map_err(|e| PackageError::Yaml(e.to_string()))?
                    + "\n",
            },
            PackageFile {
                path: format!("{CHART_DIR}/templates/operator.yaml"),
                contents: operator_template(&settings)?,
            },
            PackageFile {
                path: format!("{CHART_DIR}/templates/api-server.yaml"),
                contents: format!(
                    "{GENERATED}{{{{- if .Values.apiServer.enabled }}}}\n{}\
                     {{{{- if .Values.apiServer.tls.certManager.enabled }}}}\n---\n{}{{{{- end }}}}\n\
                     {{{{- end }}}}\n",
                    templated(&server)?,
                    templated(&certificate)?
                ),
            },
            PackageFile {
                path: format!("{CHART_DIR}/templates/NOTES.txt"),
                contents: "dbaas-operator {{ .Chart.AppVersion }} runs in {{ .Release.Namespace }}.\n\
                           Check it: kubectl -n {{ .Release.Namespace }} get deployments,pods -l app.kubernetes.io/part-of=dbaas-operator\n\
                           Then: kubectl get dbaas\n"
                    .to_owned(),
            },
        ];
        files.extend(crd_files(&format!("{CHART_DIR}/crds"))?);
        Ok(files)
    }
}

pub mod olm {
    //! The OLM bundle (registry+v1): a ClusterServiceVersion whose install
    //! strategy holds the same Deployments and RBAC, the CRDs, the Services
    //! and `metadata/annotations.yaml`.

    use super::*;

    /// The CSV's `metadata.name`.
    pub fn csv_name() -> String {
        format!("{OPERATOR_NAME}.v{VERSION}")
    }

    /// What each kind is for, shown by OLM consoles.
    pub const KIND_DESCRIPTIONS: &[(&str, &str, &str)] = &[
        (
            "DatabaseCluster",
            "Database Cluster",
            "A PostgreSQL, MySQL or MongoDB cluster, run by the engine's operator.",
        ),
        (
            "DatabaseEngine",
            "Database Engine",
            "An engine operator's state and the versions allowed in the namespace.",
        ),
        (
            "BackupStorage",
            "Backup Storage",
            "Where backups are stored (S3-compatible or Azure).",
        ),
        (
            "DatabaseBackup",
            "Database Backup",
            "One backup of a cluster: its state, time, storage and location.",
        ),
        (
            "MonitoringConfig",
            "Monitoring Config",
            "Monitoring (PMM, Prometheus) clusters can refer to.",
        ),
        (
            "OpsRequest",
            "Ops Request",
            "A day-2 operation on a cluster: scale, upgrade, restart, expose, ...",
        ),
        (
            "DatabaseClusterTemplate",
            "Database Cluster Template",
            "Defaults a cluster can be created from.",
        ),
        (
            "BackupScheduleTemplate",
            "Backup Schedule Template",
            "A reusable backup schedule.",
        ),
        (
            "DatabaseServer",
            "Database Server",
            "An existing database server claims can provision databases on.",
        ),
        (
            "DatabaseClaim",
            "Database Claim",
            "A database and user for an app, with its credentials in a Secret.",
        ),
    ];

    fn owned_crds() -> Result<Value, PackageError> {
        crate::crds::all()
            .iter()
            .map(|crd| {
                let kind = crd.spec.names.kind.as_str();
                let (_, display, description) = KIND_DESCRIPTIONS
                    .iter()
                    .find(|(k, _, _)| *k == kind)
                    .ok_or_else(|| {
                        PackageError::Yaml(format!("no description of {kind} for the CSV"))
                    })?;
                let version = crd
                    .spec
                    .versions
                    .iter()
                    .find(|v| v.storage)
                    .map(|v| v.name.clone())
                    .unwrap_or_else(|| "v1".to_owned());
                Ok(json!({
                    "name": crd.metadata.name,
                    "version": version,
                    "kind": kind,
                    "displayName": display,
                    "description": description,
                }))
            })
            .collect::<Result<Vec<Value>, PackageError>>()
            .map(Value::Array)
    }

    /// `alm-examples`: every object of ours in the samples (a sample may
    /// hold several documents, and Secrets beside them), without comments,
    /// as a JSON array.
    pub fn alm_examples(samples: &[Sample]) -> Result<String, PackageError> {
        let mut examples = Vec::new();
        for sample in samples {
            let documents: Vec<Value> = serde_saphyr::from_str_multiple(&sample.text)
                .map_err(|e| PackageError::Sample(format!("{}: {e}", sample.path)))?;
            examples.extend(documents.into_iter().filter(|d| {
                d["apiVersion"]
                    .as_str()
                    .is_some_and(|v| v.starts_with(&format!("{}/", crate::GROUP)))
            }));
        }
        serde_json::to_string_pretty(&examples).map_err(|e| PackageError::Yaml(e.to_string()))
    }

    /// The ClusterServiceVersion.
    pub fn cluster_service_version(samples: &[Sample]) -> Result<Value, PackageError> {
        // OLM picks the namespace; the operator watches what the
        // OperatorGroup targets ("" for all namespaces).
        let settings = Settings {
            watch_namespace_env: json!({
                "name": "DBAAS_WATCH_NAMESPACE",
                "valueFrom": {"fieldRef": {"fieldPath": "metadata.annotations['olm.targetNamespaces']"}},
            }),
            ..Settings::from_options(&InstallOptions::default())
        };
        let image = format!("{IMAGE_REPOSITORY}:{VERSION}");
        let annotations: BTreeMap<&str, Value> = BTreeMap::from([
            ("alm-examples", json!(alm_examples(samples)?)),
            ("capabilities", json!("Basic Install")),
            ("categories", json!("Database")),
            ("containerImage", json!(&image)),
            (
                "description",
                json!("One DatabaseCluster API over the real database operators."),
            ),
            (
                "repository",
                json!("https://github.com/dbaas-operator/dbaas-operator"),
            ),
            (
                "operators.operatorframework.io/suggested-namespace",
                json!(OPERATOR_NAMESPACE),
            ),
        ]);
        let deployment = |name: &str, component: &str, spec: Value| json!({"name": name, "label": labels(component), "spec": spec});
        Ok(json!({
            "apiVersion": "operators.coreos.com/v1alpha1",
            "kind": "ClusterServiceVersion",
            "metadata": {
                "name": csv_name(),
                "annotations": annotations,
                "labels": {"operatorframework.io/arch.amd64": "supported", "operatorframework.io/os.linux": "supported"},
            },
            "spec": {
                "displayName": "DBaaS Operator",
                "description": "A Kubernetes-native Database-as-a-Service: one `DatabaseCluster` API (`dbaas.io/v1`) over CloudNativePG, Percona XtraDB Cluster and Percona Server for MongoDB, with version policy per namespace, templates, day-2 operations, databases on existing servers (DatabaseClaim) and a REST API server. The engine operators are installed separately.",
                "version": VERSION,
                "maturity": "alpha",
                "minKubeVersion": "1.30.0",
                "keywords": ["database", "dbaas", "postgresql", "mysql", "mongodb", "mariadb"],
                "provider": {"name": "dbaas-operator"},
                "maintainers": [{"name": "dbaas-operator", "email": "dbaas-operator@users.noreply.github.com"}],
                "links": [{"name": "Source", "url": "https://github.com/dbaas-operator/dbaas-operator"}],
                "installModes": [
                    {"type": "OwnNamespace", "supported": true},
                    {"type": "SingleNamespace", "supported": true},
                    {"type": "MultiNamespace", "supported": true},
                    {"type": "AllNamespaces", "supported": true},
                ],
                "install": {
                    "strategy": "deployment",
                    "spec": {
                        // Namespaced: OLM grants them in each target namespace
                        // (and lifts them to a ClusterRole for AllNamespaces).
                        "permissions": [
                            {"serviceAccountName": OPERATOR_NAME, "rules": operator_rules()},
                        ],
                        "clusterPermissions": [
                            // OLM installs check the CatalogSource, which lives
                            // outside the target namespaces.
                            {"serviceAccountName": OPERATOR_NAME, "rules": [{
                                "apiGroups": ["operators.coreos.com"],
                                "resources": ["catalogsources"],
                                "verbs": ["get"],
                            }]},
                            {"serviceAccountName": SERVER_NAME, "rules": server_rules()},
                        ],
                        "deployments": [
                            deployment(OPERATOR_NAME, "operator", operator_deployment_spec(&settings)),
                            deployment(SERVER_NAME, "api-server", server_deployment_spec(&settings)),
                        ],
                    },
                },
                "customresourcedefinitions": {"owned": owned_crds()?},
                // For mirroring in disconnected clusters.
                "relatedImages": [{"name": OPERATOR_NAME, "image": image}],
            },
        }))
    }

    /// `metadata/annotations.yaml`.
    pub fn annotations() -> Value {
        json!({"annotations": {
            "operators.operatorframework.io.bundle.mediatype.v1": "registry+v1",
            "operators.operatorframework.io.bundle.manifests.v1": "manifests/",
            "operators.operatorframework.io.bundle.metadata.v1": "metadata/",
            "operators.operatorframework.io.bundle.package.v1": OPERATOR_NAME,
            "operators.operatorframework.io.bundle.channels.v1": "alpha",
            "operators.operatorframework.io.bundle.channel.default.v1": "alpha",
        }})
    }

    /// The bundle's files, relative to `deploy/`.
    pub fn files(samples: &[Sample]) -> Result<Vec<PackageFile>, PackageError> {
        let manifests = format!("{BUNDLE_DIR}/manifests");
        let mut files = vec![
            PackageFile {
                path: format!("{manifests}/{OPERATOR_NAME}.clusterserviceversion.yaml"),
                contents: format!("{GENERATED}{}", yaml(&cluster_service_version(samples)?)?),
            },
            PackageFile {
                path: format!("{manifests}/{METRICS_SERVICE_NAME}_v1_service.yaml"),
                contents: format!("{GENERATED}{}", yaml(&metrics_service(None))?),
            },
            PackageFile {
                path: format!("{manifests}/{SERVER_NAME}_v1_service.yaml"),
                contents: format!("{GENERATED}{}", yaml(&server_service(None))?),
            },
            PackageFile {
                path: format!("{BUNDLE_DIR}/metadata/annotations.yaml"),
                contents: format!("{GENERATED}{}", yaml(&annotations())?),
            },
        ];
        files.extend(crd_files(&manifests)?);
        files.push(PackageFile {
            path: BUNDLE_DOCKERFILE.to_owned(),
            contents: dockerfile(),
        });
        Ok(files)
    }

    /// `deploy/olm/bundle.Dockerfile`: the bundle image (`docker build -f
    /// deploy/olm/bundle.Dockerfile deploy/olm`), labelled like
    /// `metadata/annotations.yaml`.
    pub const BUNDLE_DOCKERFILE: &str = "olm/bundle.Dockerfile";

    fn dockerfile() -> String {
        let mut text = format!("{GENERATED}FROM scratch\n");
        if let Some(annotations) = annotations()["annotations"].as_object() {
            for (key, value) in annotations {
                text.push_str(&format!(
                    "LABEL {key}={}\n",
                    value.as_str().unwrap_or_default()
                ));
            }
        }
        text.push_str("COPY bundle/manifests /manifests/\nCOPY bundle/metadata /metadata/\n");
        text
    }
}

/// Reads `dir` (deploy/samples) recursively, sorted by path.
pub fn read_samples(dir: &std::path::Path) -> std::io::Result<Vec<Sample>> {
    fn walk(
        root: &std::path::Path,
        dir: &std::path::Path,
        out: &mut Vec<Sample>,
    ) -> std::io::Result<()> {
        for entry in std::fs::read_dir(dir)? {
            let path = entry?.path();
            if path.is_dir() {
                walk(root, &path, out)?;
            } else if path.extension().is_some_and(|e| e == "yaml") {
                let relative = path.strip_prefix(root).unwrap_or(&path);
                out.push(Sample {
                    path: relative.display().to_string(),
                    text: std::fs::read_to_string(&path)?,
                });
            }
        }
        Ok(())
    }
    let mut samples = Vec::new();
    walk(dir, dir, &mut samples)?;
    samples.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(samples)
}

/// Objects of a multi-document YAML text (comments and empty documents
/// dropped), e.g. `helm template` output.
pub fn parse_documents(text: &str) -> Result<Vec<Value>, PackageError> {
    let documents: Vec<Value> =
        serde_saphyr::from_multiple(text).map_err(|e| PackageError::Yaml(e.to_string()))?;
    Ok(documents
        .into_iter()
        .filter(|d| !d.is_null() && d.as_object().is_some_and(|m| !m.is_empty()))
        .collect())
}

/// The object of `kind` named `name` in `objects`.
pub fn find<'a>(objects: &'a [Value], kind: &str, name: &str) -> Option<&'a Value> {
    objects.iter().find(|o| {
        o.get("kind").and_then(Value::as_str) == Some(kind)
            && o.pointer("/metadata/name").and_then(Value::as_str) == Some(name)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_a_csv_description() {
        for crd in crate::crds::all() {
            let kind = crd.spec.names.kind;
            assert!(
                olm::KIND_DESCRIPTIONS.iter().any(|(k, _, _)| *k == kind),
                "{kind} has no description for the CSV"
            );
        }
    }

    #[test]
    fn install_objects_follow_the_options() {
        let options = InstallOptions {
            namespace: "ops".into(),
            image: "registry.local/dbaas:dev".into(),
            watch_namespaces: vec!["team".into(), "shop".into()],
            olm_catalog_roles: true,
            operator_replicas: 3,
            leader_election: false,
            api_server: false,
        };
        let objects = install_objects(&options);
        assert_eq!(objects[0]["kind"], "Namespace");
        assert!(find(&objects, "Deployment", SERVER_NAME).is_none());
        let operator = find(&objects, "Deployment", OPERATOR_NAME).expect("operator");
        assert_eq!(operator["metadata"]["namespace"], "ops");
        assert_eq!(operator["spec"]["replicas"], 3);
        let container = &operator["spec"]["template"]["spec"]["containers"][0];
        assert_eq!(container["image"], "registry.local/dbaas:dev");
        let env = container["env"].as_array().expect("env");
        let value = |name: &str| {
            env.iter()
                .find(|e| e["name"] == name)
                .map(|e| e["value"].clone())
        };
        assert_eq!(value("DBAAS_WATCH_NAMESPACE"), Some(json!("team,shop")));
        assert_eq!(value("DBAAS_LEADER_ELECT"), Some(json!("false")));
        // A list of namespaces: Roles there, none cluster-wide.
        assert!(
            objects
                .iter()
                .all(|o| o["kind"] != "ClusterRole" && o["kind"] != "ClusterRoleBinding"),
            "{objects:#?}"
        );
        for watched in ["team", "shop"] {
            let role = objects
                .iter()
                .find(|o| o["kind"] == "Role" && o["metadata"]["namespace"] == watched)
                .expect("a Role in each watched namespace");
            assert_eq!(role["rules"], operator_rules());
            let binding = objects
                .iter()
                .find(|o| o["kind"] == "RoleBinding" && o["metadata"]["namespace"] == watched)
                .expect("its binding");
            assert_eq!(binding["subjects"][0]["namespace"], "ops");
        }
        let leader = objects
            .iter()
            .find(|o| o["kind"] == "Role" && o["metadata"]["name"] == OPERATOR_LEADER_ROLE)
            .expect("the Lease's Role");
        assert_eq!(leader["metadata"]["namespace"], "ops");
        assert_eq!(leader["rules"][0]["resources"], json!(["leases"]));
        let catalog = find(
            &objects,
            "Role",
            "dbaas-operator-ops-catalog-operatorhubio-catalog",
        )
        .expect("the catalog's Role");
        assert_eq!(catalog["metadata"]["namespace"], "olm");
        assert_eq!(
            catalog["rules"][0]["resourceNames"],
            json!(["operatorhubio-catalog"])
        );

        // No list: the ClusterRole.
        let everywhere = install_objects(&InstallOptions {
            namespace: "ops".into(),
            ..InstallOptions::default()
        });
        let binding = find(&everywhere, "ClusterRoleBinding", OPERATOR_NAME).expect("binding");
        assert_eq!(binding["subjects"][0]["namespace"], "ops");
        assert!(
            everywhere
                .iter()
                .all(|o| o["kind"] != "RoleBinding" || o["metadata"]["name"] != OPERATOR_NAME)
        );
    }

    #[test]
    fn block_placeholders_become_indented_to_yaml() {
        let yaml = "spec:\n  containers:\n  - name: x\n    resources: HELM__operatorResources__\n";
        let out = helm::templated(yaml).expect("templated");
        assert_eq!(
            out,
            "spec:\n  containers:\n  - name: x\n    resources:\n      {{- toYaml .Values.operator.resources | nindent 6 }}\n"
        );
        assert!(helm::templated("a: 'HELM__x__'\n").is_err());
    }
}
