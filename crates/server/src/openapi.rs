//! The OpenAPI 3 document, served at `/openapi.json` and committed at
//! `deploy/openapi.json` (`cargo run -p dbaas-server --bin openapigen`; a
//! test fails on drift). Paths come from the same [`Registry`] as the
//! router; the resource schemas are the CRDs' own OpenAPI schemas, so the
//! document says exactly what the API server will accept.

use std::sync::OnceLock;

use serde_json::Value;
use utoipa::openapi::path::{
    HttpMethod, OperationBuilder, ParameterBuilder, ParameterIn, PathItem, PathItemBuilder,
};
use utoipa::openapi::request_body::RequestBodyBuilder;
use utoipa::openapi::schema::{AllOfBuilder, ArrayBuilder, ObjectBuilder, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{
    ComponentsBuilder, ContentBuilder, InfoBuilder, OpenApiBuilder, PathsBuilder, Ref, Required,
    ResponseBuilder,
};

use crate::access::NamespaceAccess;
use crate::capacity::{Amounts, Capacity, NodeCapacity};
use crate::clusters::{KubernetesCluster, RegisterCluster, RenameCluster};
use crate::error::ErrorBody;
use crate::events::{ClusterEvent, ClusterEventList};
use crate::multicluster::{AvailableResources, SkippedCluster, StorageClassSummary};
use crate::names::DNS_LABEL_PATTERN;
use crate::routes::{
    ApproveUpgrade, Credentials, EngineVersions, EngineVersionsList, KindDoc, Registry,
};

const JSON: &str = "application/json";

fn error(description: &str) -> utoipa::openapi::Response {
    ResponseBuilder::new()
        .description(description)
        .content(
            JSON,
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("ErrorBody")))
                .build(),
        )
        .build()
}

fn ok(description: &str, schema: &str) -> utoipa::openapi::Response {
    ResponseBuilder::new()
        .description(description)
        .content(
            JSON,
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name(schema)))
                .build(),
        )
        .build()
}

/// The 200 of a list that can also be watched: a page, or with
/// `watch=true` a stream of server-sent events.
fn page_or_stream(description: &str, schema: &str) -> utoipa::openapi::Response {
    ResponseBuilder::new()
        .description(format!(
            "{description}; with watch=true a text/event-stream: RESYNC first (list now), \
             then ADDED, MODIFIED and DELETED with the object as data, RESYNC again when \
             the cache relisted or the stream fell behind; the stream ends after the \
             server's watch lifetime and the client reconnects"
        ))
        .content(
            JSON,
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name(schema)))
                .build(),
        )
        .content(
            "text/event-stream",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("WatchEvent")))
                .build(),
        )
        .build()
}

/// The `watch` parameter of a list that serves [`page_or_stream`].
fn watch_param(operation: OperationBuilder) -> OperationBuilder {
    operation.parameter(query_param(
        "watch",
        "Stream changes instead of returning a page (needs watch permission); takes no limit or continue.",
        Type::Boolean,
    ))
}

/// Every name in a path is a DNS label ([`crate::names`]); anything else
/// is a 400 before it is looked up.
fn dns_label() -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some(DNS_LABEL_PATTERN))
        .min_length(Some(1))
        .max_length(Some(63))
}

fn path_param(name: &str, description: &str) -> utoipa::openapi::path::Parameter {
    ParameterBuilder::new()
        .name(name)
        .parameter_in(ParameterIn::Path)
        .required(Required::True)
        .description(Some(description))
        .schema(Some(dns_label()))
        .build()
}

fn query_param(
    name: &str,
    description: &str,
    schema_type: Type,
) -> utoipa::openapi::path::Parameter {
    ParameterBuilder::new()
        .name(name)
        .parameter_in(ParameterIn::Query)
        .required(Required::False)
        .description(Some(description))
        .schema(Some(match schema_type {
            // `limit` is a count.
            Type::Integer => ObjectBuilder::new()
                .schema_type(Type::Integer)
                .minimum(Some(0)),
            other => ObjectBuilder::new().schema_type(other),
        }))
        .build()
}

fn list_params(operation: OperationBuilder) -> OperationBuilder {
    operation
        .parameter(query_param(
            "limit",
            "At most this many items; 0 or unset returns all.",
            Type::Integer,
        ))
        .parameter(query_param(
            "continue",
            "The `continue` token of the previous page.",
            Type::String,
        ))
        .parameter(query_param(
            "labelSelector",
            "Kubernetes label selector: `a=b`, `a!=b`, `a`, `!a`, `a in (x,y)`, `a notin (x)`, comma-separated.",
            Type::String,
        ))
}

fn common_errors(operation: OperationBuilder) -> OperationBuilder {
    operation
        .response("400", error("Bad request: invalid name, query, or body"))
        .response("401", error("Missing or invalid bearer token"))
        .response("403", error("The caller lacks the named permission"))
}

fn body(schema: &str, content_type: &str) -> Option<utoipa::openapi::request_body::RequestBody> {
    Some(
        RequestBodyBuilder::new()
            .required(Some(Required::True))
            .content(
                content_type,
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name(schema)))
                    .build(),
            )
            .build(),
    )
}

/// The body of a create: the kind's schema with `metadata.name` required
/// (the URL names no object).
fn create_body(kind: &str) -> Option<utoipa::openapi::request_body::RequestBody> {
    Some(
        RequestBodyBuilder::new()
            .required(Some(Required::True))
            .content(
                JSON,
                ContentBuilder::new()
                    .schema(Some(
                        AllOfBuilder::new().item(Ref::from_schema_name(kind)).item(
                            ObjectBuilder::new()
                                .schema_type(Type::Object)
                                .property(
                                    "metadata",
                                    ObjectBuilder::new()
                                        .schema_type(Type::Object)
                                        .required("name"),
                                )
                                .required("metadata"),
                        ),
                    ))
                    .build(),
            )
            .build(),
    )
}

/// The schema of a JSON merge patch of `kind` (see [`patch_schema`]).
fn patch_schema_name(kind: &str) -> String {
    format!("{kind}Patch")
}

fn write_errors(operation: OperationBuilder) -> OperationBuilder {
    common_errors(operation)
        .response("409", error("Already exists, or changed since it was read"))
        .response("413", error("Body over the size limit"))
        .response("415", error("Unsupported Content-Type"))
        .response(
            "422",
            error("The API server's validation (schema, CEL rules) refused the object"),
        )
}

fn kind_paths(mut paths: PathsBuilder, doc: &KindDoc) -> PathsBuilder {
    let KindDoc {
        kind,
        plural,
        writes,
    } = doc;
    let list = format!("{kind}List");
    let namespace = || path_param("namespace", "The namespace (a DNS label).");
    let name = || path_param("name", "The object's name (a DNS label).");
    let op = |id: String, summary: String| {
        OperationBuilder::new()
            .operation_id(Some(id))
            .summary(Some(summary))
            .tag(plural.clone())
    };

    let list_all = common_errors(watch_param(list_params(op(
        format!("list{kind}ForAllNamespaces"),
        format!("List {plural} of every namespace (needs cluster-wide list)"),
    ))))
    .response(
        "200",
        page_or_stream("One page, ordered by namespace and name", &list),
    )
    .response("503", error("The watch cache is still loading"));
    paths = paths.path(
        format!("/v1/{plural}"),
        PathItem::new(HttpMethod::Get, list_all),
    );

    let mut collection = PathItemBuilder::new().operation(
        HttpMethod::Get,
        common_errors(watch_param(list_params(
            op(
                format!("list{kind}"),
                format!("List {plural} of a namespace"),
            )
            .parameter(namespace()),
        )))
        .response("200", page_or_stream("One page, ordered by name", &list))
        .response("503", error("The watch cache is still loading")),
    );
    if writes.create {
        collection = collection.operation(
            HttpMethod::Post,
            write_errors(
                op(
                    format!("create{kind}"),
                    format!("Create a {kind}, as the caller"),
                )
                .parameter(namespace())
                .request_body(create_body(kind)),
            )
            .response("201", ok("The created object", kind))
            .response("404", error("The namespace does not exist")),
        );
    }
    paths = paths.path(
        format!("/v1/namespaces/{{namespace}}/{plural}"),
        collection.build(),
    );

    let mut item = PathItemBuilder::new().operation(
        HttpMethod::Get,
        common_errors(
            op(format!("read{kind}"), format!("Read a {kind}"))
                .parameter(namespace())
                .parameter(name()),
        )
        .response("200", ok("The object", kind))
        .response("404", error("No such object")),
    );
    if writes.replace {
        item = item.operation(
            HttpMethod::Put,
            write_errors(
                op(
                    format!("replace{kind}"),
                    format!("Replace a {kind}, as the caller (without metadata.resourceVersion: the version last seen)"),
                )
                .parameter(namespace())
                .parameter(name())
                .request_body(body(kind, JSON)),
            )
            .response("200", ok("The replaced object", kind))
            .response("404", error("No such object")),
        );
    }
    if writes.patch {
        item = item.operation(
            HttpMethod::Patch,
            write_errors(
                op(
                    format!("patch{kind}"),
                    format!("Change a {kind} with a JSON merge patch (RFC 7386), as the caller"),
                )
                .parameter(namespace())
                .parameter(name())
                .request_body(body(
                    &patch_schema_name(kind),
                    "application/merge-patch+json",
                )),
            )
            .response("200", ok("The patched object", kind))
            .response("404", error("No such object")),
        );
    }
    if writes.delete {
        item = item.operation(
            HttpMethod::Delete,
            common_errors(
                op(
                    format!("delete{kind}"),
                    format!("Delete a {kind}, as the caller"),
                )
                .parameter(namespace())
                .parameter(name()),
            )
            .response("200", ResponseBuilder::new().description("Deleted").build())
            .response("202", ok("Deletion started; finalizers still run", kind))
            .response("404", error("No such object")),
        );
    }
    paths.path(
        format!("/v1/namespaces/{{namespace}}/{plural}/{{name}}"),
        item.build(),
    )
}

fn list_schema(kind: &str) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::Object)
        .description(Some(format!("One page of {kind} objects")))
        .property(
            "items",
            ArrayBuilder::new().items(Ref::from_schema_name(kind)),
        )
        .required("items")
        .property(
            "continue",
            ObjectBuilder::new()
                .schema_type(utoipa::openapi::schema::SchemaType::from_iter([
                    Type::String,
                    Type::Null,
                ]))
                .description(Some(
                    "Pass as `continue` to get the next page; null on the last page",
                )),
        )
        .required("continue")
        .property(
            "remainingItemCount",
            ObjectBuilder::new()
                .schema_type(Type::Integer)
                .description(Some(
                    "Items after this page (only without a label selector)",
                )),
        )
}

fn build() -> Value {
    let registry = Registry::build();
    let mut paths = PathsBuilder::new();
    let mut components = ComponentsBuilder::new()
        .schema_from::<ErrorBody>()
        .schema_from::<Credentials>()
        .schema_from::<EngineVersions>()
        .schema_from::<EngineVersionsList>()
        .schema_from::<ApproveUpgrade>()
        .schema_from::<KubernetesCluster>()
        .schema_from::<RegisterCluster>()
        .schema_from::<RenameCluster>()
        .schema_from::<AvailableResources>()
        .schema_from::<StorageClassSummary>()
        .schema_from::<Capacity>()
        .schema_from::<NodeCapacity>()
        .schema_from::<Amounts>()
        .schema_from::<SkippedCluster>()
        .schema_from::<NamespaceAccess>()
        .schema_from::<crate::capabilities::EngineCapabilities>()
        .schema_from::<crate::capabilities::NotOffered>()
        .schema_from::<crate::capabilities::ConnectionInfo>()
        .schema_from::<ClusterEvent>()
        .schema_from::<ClusterEventList>()
        .schema(
            "WatchEvent",
            ObjectBuilder::new()
                .schema_type(Type::Object)
                .description(Some("One server-sent event of a watch stream"))
                .property(
                    "event",
                    ObjectBuilder::new()
                        .schema_type(Type::String)
                        .enum_values(Some(["RESYNC", "ADDED", "MODIFIED", "DELETED"])),
                )
                .required("event")
                .property(
                    "data",
                    ObjectBuilder::new()
                        .schema_type(Type::String)
                        .description(Some(
                            "The object as JSON (its last state for DELETED); `{}` for RESYNC",
                        )),
                )
                .required("data"),
        )
        .schema(
            "KubernetesClusterList",
            ObjectBuilder::new()
                .schema_type(Type::Object)
                .property(
                    "items",
                    ArrayBuilder::new().items(Ref::from_schema_name("KubernetesCluster")),
                )
                .required("items"),
        )
        .schema(
            "MultiClusterDatabaseCluster",
            ObjectBuilder::new()
                .schema_type(Type::Object)
                .property(
                    "kubernetesCluster",
                    ObjectBuilder::new()
                        .schema_type(Type::String)
                        .description(Some("`local` or the registered cluster's name")),
                )
                .required("kubernetesCluster")
                .property("databaseCluster", Ref::from_schema_name("DatabaseCluster"))
                .required("databaseCluster"),
        )
        .schema(
            "MultiClusterDatabaseClusterList",
            list_schema("MultiClusterDatabaseCluster")
                .property(
                    "skipped",
                    ArrayBuilder::new().items(Ref::from_schema_name("SkippedCluster")),
                )
                .required("skipped"),
        )
        .security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    for kind in &registry.kinds {
        paths = kind_paths(paths, kind);
        components = components.schema(format!("{}List", kind.kind), list_schema(&kind.kind));
    }
    let namespace = || path_param("namespace", "The namespace (a DNS label).");
    let name = || path_param("name", "The database cluster's name.");
    let cluster = || {
        path_param(
            "cluster",
            "A registered Kubernetes cluster's name, or `local` for the server's own (where the path allows it).",
        )
    };
    paths = paths
        .path(
            "/v1/namespaces/{namespace}/databaseclusters/{name}/credentials",
            PathItem::new(
                HttpMethod::Get,
                common_errors(
                    OperationBuilder::new()
                        .operation_id(Some("readDatabaseClusterCredentials"))
                        .summary(Some(
                            "The cluster's admin credentials; needs get on the cluster AND get on its Secret",
                        ))
                        .tag("databaseclusters")
                        .parameter(namespace())
                        .parameter(name()),
                )
                .response("200", ok("The credentials", "Credentials"))
                .response("404", error("No such cluster, or its Secret is not there yet")),
            ),
        )
        .path(
            "/v1/namespaces/{namespace}/databaseclusters/{name}/opsrequests",
            PathItem::new(
                HttpMethod::Get,
                common_errors(list_params(
                    OperationBuilder::new()
                        .operation_id(Some("listDatabaseClusterOpsRequests"))
                        .summary(Some("The OpsRequests of one cluster"))
                        .tag("opsrequests")
                        .parameter(namespace())
                        .parameter(name()),
                ))
                .response("200", ok("One page", "OpsRequestList")),
            ),
        )
        .path(
            "/v1/namespaces/{namespace}/databaseclusters/{name}/backups",
            PathItem::new(
                HttpMethod::Get,
                common_errors(list_params(
                    OperationBuilder::new()
                        .operation_id(Some("listDatabaseClusterBackups"))
                        .summary(Some("The DatabaseBackups of one cluster"))
                        .tag("databasebackups")
                        .parameter(namespace())
                        .parameter(name()),
                ))
                .response("200", ok("One page", "DatabaseBackupList")),
            ),
        )
        .path(
            "/v1/namespaces/{namespace}/databaseclusters/{name}/restores",
            PathItem::new(
                HttpMethod::Get,
                common_errors(list_params(
                    OperationBuilder::new()
                        .operation_id(Some("listDatabaseClusterRestores"))
                        .summary(Some(
                            "The restores of one cluster: its OpsRequests of type Restore",
                        ))
                        .tag("opsrequests")
                        .parameter(namespace())
                        .parameter(name()),
                ))
                .response("200", ok("One page", "OpsRequestList")),
            ),
        )
        .path(
            "/v1/namespaces/{namespace}/databaseclusters/{name}/events",
            PathItem::new(
                HttpMethod::Get,
                common_errors(
                    OperationBuilder::new()
                        .operation_id(Some("listDatabaseClusterEvents"))
                        .summary(Some(
                            "The Kubernetes Events about the cluster, newest first; needs get on the cluster AND list on events (read as the caller)",
                        ))
                        .tag("databaseclusters")
                        .parameter(namespace())
                        .parameter(name()),
                )
                .response("200", ok("The Events", "ClusterEventList"))
                .response("404", error("No such cluster")),
            ),
        )
        .path(
            "/v1/namespaces/{namespace}/access",
            PathItem::new(
                HttpMethod::Get,
                common_errors(
                    OperationBuilder::new()
                        .operation_id(Some("readNamespaceAccess"))
                        .summary(Some(
                            "What the caller may do in the namespace: per resource the verbs the API serves and whether each is allowed (the SubjectAccessReviews the requests themselves get)",
                        ))
                        .tag("access")
                        .parameter(namespace()),
                )
                .response("200", ok("The caller's access", "NamespaceAccess")),
            ),
        )
        .path(
            "/v1/namespaces/{namespace}/engineversions",
            PathItem::new(
                HttpMethod::Get,
                common_errors(
                    OperationBuilder::new()
                        .operation_id(Some("listEngineVersions"))
                        .summary(Some(
                            "Per engine: operator status and version, offered, allowed and default database versions",
                        ))
                        .tag("databaseengines")
                        .parameter(namespace()),
                )
                .response("200", ok("The engines of the namespace", "EngineVersionsList")),
            ),
        )
        .path(
            "/v1/namespaces/{namespace}/databaseengines/{name}/operator",
            PathItem::new(
                HttpMethod::Put,
                write_errors(
                    OperationBuilder::new()
                        .operation_id(Some("installEngineOperator"))
                        .summary(Some(
                            "Install the engine operator through OLM: sets the DatabaseEngine's spec.operator (creates the DatabaseEngine, named after its engine type, when there is none); needs update (or create) on databaseengines",
                        ))
                        .tag("databaseengines")
                        .parameter(namespace())
                        .parameter(path_param(
                            "name",
                            "The DatabaseEngine's name (an engine type, e.g. postgresql, to create one).",
                        ))
                        .request_body(body("EngineOperatorInstall", JSON)),
                )
                .response("200", ok("The DatabaseEngine, updated", "DatabaseEngine"))
                .response("201", ok("The DatabaseEngine, created", "DatabaseEngine"))
                .response(
                    "404",
                    error("No such DatabaseEngine and the name is not an engine type"),
                ),
            ),
        )
        .path(
            "/v1/namespaces/{namespace}/databaseengines/{name}/approve-upgrade",
            PathItem::new(
                HttpMethod::Post,
                write_errors(
                    OperationBuilder::new()
                        .operation_id(Some("approveEngineOperatorUpgrade"))
                        .summary(Some(
                            "Approve an engine operator upgrade: sets spec.operator.approvedVersion; the operator approves OLM's InstallPlan for that version; needs patch on databaseengines",
                        ))
                        .tag("databaseengines")
                        .parameter(namespace())
                        .parameter(path_param("name", "The DatabaseEngine's name."))
                        .request_body(body("ApproveUpgrade", JSON)),
                )
                .response("200", ok("The DatabaseEngine, updated", "DatabaseEngine"))
                .response("404", error("No such DatabaseEngine")),
            ),
        )
        .path(
            "/v1/kubernetesclusters",
            PathItemBuilder::new()
                .operation(
                    HttpMethod::Get,
                    common_errors(
                        OperationBuilder::new()
                            .operation_id(Some("listKubernetesClusters"))
                            .summary(Some(
                                "Registered Kubernetes clusters (needs list kubernetesclusters.dbaas.io in the server's namespace)",
                            ))
                            .tag("kubernetesclusters"),
                    )
                    .response("200", ok("Every registration, ordered by name", "KubernetesClusterList"))
                    .response("503", error("Registrations still loading")),
                )
                .operation(
                    HttpMethod::Post,
                    common_errors(
                        OperationBuilder::new()
                            .operation_id(Some("registerKubernetesCluster"))
                            .summary(Some(
                                "Register a cluster by kubeconfig (base64; inline credentials only); stored as a Secret in the server's namespace, never returned (needs create kubernetesclusters.dbaas.io)",
                            ))
                            .tag("kubernetesclusters")
                            .request_body(body("RegisterCluster", JSON)),
                    )
                    .response("201", ok("The registered cluster", "KubernetesCluster"))
                    .response("409", error("AlreadyExists: the name is taken; TooManyRegistrations: --max-cluster-registrations reached"))
                    .response("422", error("ClusterUrlRefused: the kubeconfig points where registrations may not (loopback, link-local, metadata, private, plain http, insecure-skip-tls-verify; see --allow-insecure-cluster-urls, --allow-private-cluster-addresses); ClusterUnreachable: the API server did not answer (a fixed description, never its answer)")),
                )
                .build(),
        )
        .path(
            "/v1/kubernetesclusters/{cluster}",
            PathItemBuilder::new()
                .operation(
                    HttpMethod::Get,
                    common_errors(
                        OperationBuilder::new()
                            .operation_id(Some("readKubernetesCluster"))
                            .summary(Some("A registered cluster: server, reachable, synced"))
                            .tag("kubernetesclusters")
                            .parameter(cluster()),
                    )
                    .response("200", ok("The registration", "KubernetesCluster"))
                    .response("404", error("Not registered")),
                )
                .operation(
                    HttpMethod::Patch,
                    common_errors(
                        OperationBuilder::new()
                            .operation_id(Some("renameKubernetesCluster"))
                            .summary(Some("Rename a registration (needs patch kubernetesclusters.dbaas.io)"))
                            .tag("kubernetesclusters")
                            .parameter(cluster())
                            .request_body(body("RenameCluster", "application/merge-patch+json")),
                    )
                    .response("200", ok("The renamed registration", "KubernetesCluster"))
                    .response("404", error("Not registered"))
                    .response("409", error("The new name is taken")),
                )
                .operation(
                    HttpMethod::Delete,
                    common_errors(
                        OperationBuilder::new()
                            .operation_id(Some("unregisterKubernetesCluster"))
                            .summary(Some(
                                "Unregister: deletes the Secret and stops the cluster's watches (needs delete kubernetesclusters.dbaas.io)",
                            ))
                            .tag("kubernetesclusters")
                            .parameter(cluster()),
                    )
                    .response("200", ResponseBuilder::new().description("Unregistered").build())
                    .response("404", error("Not registered")),
                )
                .build(),
        )
        .path(
            "/v1/kubernetesclusters/{cluster}/resources",
            PathItem::new(
                HttpMethod::Get,
                common_errors(
                    OperationBuilder::new()
                        .operation_id(Some("readAvailableResources"))
                        .summary(Some(
                            "Allocatable CPU, memory and ephemeral storage of the nodes minus the requests of their pods, and the storage classes (needs list nodes on that cluster)",
                        ))
                        .tag("kubernetesclusters")
                        .parameter(cluster()),
                )
                .response("200", ok("What the cluster can still take", "AvailableResources"))
                .response("404", error("Not registered")),
            ),
        )
        .path(
            "/v1/kubernetesclusters/{cluster}/namespaces/{namespace}/databaseclusters",
            PathItemBuilder::new()
                .operation(
                    HttpMethod::Get,
                    common_errors(watch_param(list_params(
                        OperationBuilder::new()
                            .operation_id(Some("listDatabaseClusterInKubernetesCluster"))
                            .summary(Some(
                                "List database clusters of a namespace of a registered cluster (from its watch cache; authorized by that cluster)",
                            ))
                            .tag("kubernetesclusters")
                            .parameter(cluster())
                            .parameter(namespace()),
                    )))
                    .response(
                        "200",
                        page_or_stream("One page, ordered by name", "DatabaseClusterList"),
                    )
                    .response("404", error("Not registered"))
                    .response("503", error("The watch cache is still loading")),
                )
                .operation(
                    HttpMethod::Post,
                    write_errors(
                        OperationBuilder::new()
                            .operation_id(Some("createDatabaseClusterInKubernetesCluster"))
                            .summary(Some(
                                "Create a database cluster in a registered cluster, impersonating the caller there",
                            ))
                            .tag("kubernetesclusters")
                            .parameter(cluster())
                            .parameter(namespace())
                            .request_body(create_body("DatabaseCluster")),
                    )
                    .response("201", ok("The created object", "DatabaseCluster"))
                    .response("404", error("Not registered, or the namespace does not exist there")),
                )
                .build(),
        )
        .path(
            "/v1/kubernetesclusters/{cluster}/namespaces/{namespace}/databaseclusters/{name}",
            PathItemBuilder::new()
                .operation(
                    HttpMethod::Get,
                    common_errors(
                        OperationBuilder::new()
                            .operation_id(Some("readDatabaseClusterInKubernetesCluster"))
                            .summary(Some("Read a database cluster of a registered cluster"))
                            .tag("kubernetesclusters")
                            .parameter(cluster())
                            .parameter(namespace())
                            .parameter(name()),
                    )
                    .response("200", ok("The object", "DatabaseCluster"))
                    .response("404", error("No such object or cluster")),
                )
                .operation(
                    HttpMethod::Patch,
                    write_errors(
                        OperationBuilder::new()
                            .operation_id(Some("patchDatabaseClusterInKubernetesCluster"))
                            .summary(Some(
                                "Change a database cluster of a registered cluster with a JSON merge patch (RFC 7386), impersonating the caller there",
                            ))
                            .tag("kubernetesclusters")
                            .parameter(cluster())
                            .parameter(namespace())
                            .parameter(name())
                            .request_body(body(&patch_schema_name("DatabaseCluster"), "application/merge-patch+json")),
                    )
                    .response("200", ok("The patched object", "DatabaseCluster"))
                    .response("404", error("No such object or cluster")),
                )
                .operation(
                    HttpMethod::Delete,
                    common_errors(
                        OperationBuilder::new()
                            .operation_id(Some("deleteDatabaseClusterInKubernetesCluster"))
                            .summary(Some(
                                "Delete a database cluster of a registered cluster, impersonating the caller there",
                            ))
                            .tag("kubernetesclusters")
                            .parameter(cluster())
                            .parameter(namespace())
                            .parameter(name()),
                    )
                    .response("200", ResponseBuilder::new().description("Deleted").build())
                    .response("202", ok("Deletion started; finalizers still run", "DatabaseCluster"))
                    .response("404", error("No such object or cluster")),
                )
                .build(),
        )
        .path(
            "/v1/kubernetesclusters/{cluster}/namespaces/{namespace}/databaseclusters/{name}/credentials",
            PathItem::new(
                HttpMethod::Get,
                common_errors(
                    OperationBuilder::new()
                        .operation_id(Some("readDatabaseClusterCredentialsInKubernetesCluster"))
                        .summary(Some(
                            "The admin credentials of a database cluster of a registered cluster; needs get on the cluster AND on its Secret there",
                        ))
                        .tag("kubernetesclusters")
                        .parameter(cluster())
                        .parameter(namespace())
                        .parameter(name()),
                )
                .response("200", ok("The credentials", "Credentials"))
                .response("404", error("No such cluster, or its Secret is not there yet")),
            ),
        )
        .path(
            "/v1/allclusters/databaseclusters",
            PathItem::new(
                HttpMethod::Get,
                common_errors(list_params(
                    OperationBuilder::new()
                        .operation_id(Some("listDatabaseClusterForAllKubernetesClusters"))
                        .summary(Some(
                            "Database clusters of every namespace of the local and every registered cluster, ordered by (cluster, namespace, name); clusters the caller may not list are named in skipped",
                        ))
                        .tag("kubernetesclusters"),
                ))
                .response("200", ok("One page", "MultiClusterDatabaseClusterList")),
            ),
        )
        .path(
            "/healthz",
            PathItem::new(
                HttpMethod::Get,
                OperationBuilder::new()
                    .operation_id(Some("healthz"))
                    .summary(Some("The process is up"))
                    .tag("health")
                    .security(SecurityRequirement::default())
                    .response("200", ResponseBuilder::new().description("Up").build()),
            ),
        )
        .path(
            "/readyz",
            PathItem::new(
                HttpMethod::Get,
                OperationBuilder::new()
                    .operation_id(Some("readyz"))
                    .summary(Some("Every watch cache has its first full list"))
                    .tag("health")
                    .security(SecurityRequirement::default())
                    .response("200", ResponseBuilder::new().description("Ready").build())
                    .response("503", error("Caches still loading")),
            ),
        );
    let document = OpenApiBuilder::new()
        .info(
            InfoBuilder::new()
                .title("dbaas-server")
                .version(env!("CARGO_PKG_VERSION"))
                .description(Some(
                    "REST API of dbaas-operator. Reads come from watch caches; writes go to the Kubernetes API server as the caller (impersonation). Authenticate with a Kubernetes bearer token; every request is authorized with a SubjectAccessReview. Errors are `{code, reason, message}`.",
                ))
                .build(),
        )
        .paths(paths.build())
        .components(Some(components.build()))
        .security(Some([SecurityRequirement::new("bearer", Vec::<String>::new())]))
        .build();
    let mut value = serde_json::to_value(&document).unwrap_or(Value::Null);
    let patched: Vec<String> = registry
        .kinds
        .iter()
        .filter(|k| k.writes.patch)
        .map(|k| k.kind.clone())
        .collect();
    // The resource schemas: each CRD's own structural schema.
    if let Some(schemas) = value
        .pointer_mut("/components/schemas")
        .and_then(Value::as_object_mut)
    {
        for crd in dbaas_api::crds::all() {
            let schema = crd
                .spec
                .versions
                .first()
                .and_then(|v| v.schema.as_ref())
                .and_then(|s| s.open_api_v3_schema.as_ref())
                .and_then(|s| serde_json::to_value(s).ok());
            if let Some(mut schema) = schema {
                let version = crd.spec.versions.first().map(|v| v.name.as_str());
                let api_version = format!("{}/{}", crd.spec.group, version.unwrap_or("v1"));
                strict(&mut schema);
                with_type_and_object_meta(&mut schema, &api_version, &crd.spec.names.kind);
                let kind = &crd.spec.names.kind;
                if patched.contains(kind) {
                    schemas.insert(patch_schema_name(kind), patch_schema(&schema));
                }
                schemas.insert(kind.clone(), schema);
            }
        }
        // The body of installEngineOperator: DatabaseEngine's spec.operator.
        if let Some(mut operator) = schemas
            .get("DatabaseEngine")
            .and_then(|s| s.pointer("/properties/spec/properties/operator"))
            .cloned()
        {
            // The body is an object; `null` is for the field, not the body.
            operator["type"] = "object".into();
            schemas.insert("EngineOperatorInstall".into(), operator);
        }
        // What the handlers check before the API server sees it.
        for (schema, property) in [("RegisterCluster", "name"), ("RenameCluster", "name")] {
            if let Some(field) = schemas
                .get_mut(schema)
                .and_then(|s| s.pointer_mut(&format!("/properties/{property}")))
                .and_then(Value::as_object_mut)
            {
                field.insert("pattern".into(), DNS_LABEL_PATTERN.into());
                field.insert("minLength".into(), 1.into());
                field.insert("maxLength".into(), 63.into());
            }
        }
        // ApproveUpgrade.version becomes spec.operator.approvedVersion.
        let approved = schemas
            .get("DatabaseEngine")
            .and_then(|s| {
                s.pointer("/properties/spec/properties/operator/properties/approvedVersion")
            })
            .cloned();
        if let (Some(approved), Some(version)) = (
            approved,
            schemas
                .get_mut("ApproveUpgrade")
                .and_then(|s| s.pointer_mut("/properties/version"))
                .and_then(Value::as_object_mut),
        ) {
            for keyword in ["pattern", "minLength", "maxLength"] {
                if let Some(constraint) = approved.get(keyword) {
                    version.insert(keyword.into(), constraint.clone());
                }
            }
        }
    }
    value
}

/// Keywords whose values are data, not schemas.
const DATA_KEYWORDS: [&str; 5] = [
    "default",
    "example",
    "examples",
    "enum",
    "x-kubernetes-validations",
];

/// A CRD schema (OpenAPI 3.0, Kubernetes dialect) as this document's
/// OpenAPI 3.1 says what the server accepts: objects with properties take
/// no others (the server refuses unknown fields, [`crate::routes`]),
/// `nullable` is a `null` type, and int-or-string is either.
fn strict(schema: &mut Value) {
    let Value::Object(map) = schema else {
        return;
    };
    if map.remove("nullable") == Some(Value::Bool(true)) {
        allow_null(map);
    }
    if map.get("x-kubernetes-int-or-string") == Some(&Value::Bool(true))
        && !map.contains_key("type")
        && !map.contains_key("anyOf")
    {
        map.insert(
            "anyOf".into(),
            serde_json::json!([{"type": "integer"}, {"type": "string"}]),
        );
    }
    if map.contains_key("properties")
        && !map.contains_key("additionalProperties")
        && map.get("x-kubernetes-preserve-unknown-fields") != Some(&Value::Bool(true))
    {
        map.insert("additionalProperties".into(), Value::Bool(false));
    }
    for (key, value) in map.iter_mut() {
        if DATA_KEYWORDS.contains(&key.as_str()) {
            continue;
        }
        match key.as_str() {
            "properties" => {
                if let Value::Object(properties) = value {
                    properties.values_mut().for_each(strict);
                }
            }
            _ => match value {
                Value::Array(items) => items.iter_mut().for_each(strict),
                other => strict(other),
            },
        }
    }
}

/// Adds `null` to the schema's type (and enum).
fn allow_null(map: &mut serde_json::Map<String, Value>) {
    match map.get_mut("type") {
        Some(Value::String(single)) => {
            let single = single.clone();
            map.insert("type".into(), serde_json::json!([single, "null"]));
        }
        Some(Value::Array(types)) => {
            if !types.contains(&Value::from("null")) {
                types.push("null".into());
            }
        }
        _ => return,
    }
    if let Some(Value::Array(values)) = map.get_mut("enum")
        && !values.contains(&Value::Null)
    {
        values.push(Value::Null);
    }
}

/// `apiVersion`, `kind` and `metadata` of a served kind: the CRD schema
/// leaves them to Kubernetes, the server checks them.
fn with_type_and_object_meta(schema: &mut Value, api_version: &str, kind: &str) {
    if let Some(properties) = schema.get_mut("properties").and_then(Value::as_object_mut) {
        properties.insert(
            "apiVersion".into(),
            serde_json::json!({"type": "string", "enum": [api_version]}),
        );
        properties.insert(
            "kind".into(),
            serde_json::json!({"type": "string", "enum": [kind]}),
        );
        properties.insert("metadata".into(), object_meta());
    }
}

/// Kubernetes ObjectMeta as the server reads it: these fields and no
/// others; names are DNS labels. Server-set fields are ignored on writes.
fn object_meta() -> Value {
    let strings = serde_json::json!({"type": "object", "additionalProperties": {"type": "string"}});
    let objects = serde_json::json!({"type": "array", "items": {"type": "object"}});
    serde_json::json!({
        "type": "object",
        "description": "Kubernetes ObjectMeta. name (a DNS label) is required on create unless the URL names the object; namespace must match the URL's.",
        "properties": {
            "name": {"type": "string", "pattern": DNS_LABEL_PATTERN, "minLength": 1, "maxLength": 63},
            "namespace": {"type": "string", "pattern": DNS_LABEL_PATTERN, "minLength": 1, "maxLength": 63},
            "generateName": {"type": "string"},
            "labels": strings,
            "annotations": strings,
            "finalizers": {"type": "array", "items": {"type": "string"}},
            "ownerReferences": objects,
            "resourceVersion": {"type": "string"},
            "uid": {"type": "string"},
            "generation": {"type": "integer"},
            "creationTimestamp": {"type": "string"},
            "deletionTimestamp": {"type": "string"},
            "deletionGracePeriodSeconds": {"type": "integer"},
            "managedFields": objects,
            "selfLink": {"type": "string"},
        },
        "additionalProperties": false,
    })
}

/// A JSON merge patch (RFC 7386) of a kind: any part of it, `null`
/// removing a field; the server applies it to the object it knows and
/// checks the result.
fn patch_schema(schema: &Value) -> Value {
    fn loosen(schema: &mut Value) {
        let Value::Object(map) = schema else {
            return;
        };
        map.remove("required");
        map.remove("x-kubernetes-validations");
        if let Some(Value::Object(properties)) = map.get_mut("properties") {
            for property in properties.values_mut() {
                if let Value::Object(field) = property {
                    allow_null(field);
                }
                loosen(property);
            }
        }
        for key in ["items", "additionalProperties"] {
            if let Some(inner) = map.get_mut(key) {
                loosen(inner);
            }
        }
    }
    let mut patch = schema.clone();
    loosen(&mut patch);
    if let Some(map) = patch.as_object_mut() {
        map.insert(
            "description".into(),
            "A JSON merge patch (RFC 7386): any part of the object; null removes a field. The patched object must be valid.".into(),
        );
    }
    patch
}

/// The document (built once).
pub fn document() -> &'static Value {
    static DOCUMENT: OnceLock<Value> = OnceLock::new();
    DOCUMENT.get_or_init(build)
}

/// The document as committed in `deploy/openapi.json`.
pub fn to_pretty_json() -> String {
    let mut text = serde_json::to_string_pretty(document()).unwrap_or_default();
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The operations of the document: (id, operation).
    fn operations() -> Vec<(String, &'static Value)> {
        document()["paths"]
            .as_object()
            .into_iter()
            .flat_map(|paths| paths.values())
            .filter_map(Value::as_object)
            .flat_map(|item| item.values())
            .map(|op| {
                (
                    op["operationId"].as_str().unwrap_or_default().to_owned(),
                    op,
                )
            })
            .collect()
    }

    /// Found by fuzzing: a create in a namespace that does not exist is
    /// the API server's 404, which the document did not list.
    #[test]
    fn creates_document_a_missing_namespace() {
        let creates: Vec<_> = operations()
            .into_iter()
            .filter(|(id, _)| id.starts_with("create"))
            .collect();
        assert!(creates.len() >= 9, "{}", creates.len());
        for (id, op) in creates {
            assert!(op["responses"].get("404").is_some(), "{id}");
        }
    }

    #[test]
    fn path_names_are_dns_labels() {
        for (id, op) in operations() {
            for parameter in op["parameters"].as_array().into_iter().flatten() {
                if parameter["in"] == "path" {
                    assert_eq!(parameter["schema"]["pattern"], DNS_LABEL_PATTERN, "{id}");
                    assert_eq!(parameter["schema"]["maxLength"], 63, "{id}");
                }
            }
        }
    }

    #[test]
    fn kind_schemas_take_no_unknown_fields_and_know_object_meta() {
        let schemas = &document()["components"]["schemas"];
        let cluster = &schemas["DatabaseCluster"];
        assert_eq!(cluster["additionalProperties"], false);
        assert_eq!(cluster["properties"]["spec"]["additionalProperties"], false);
        assert_eq!(
            cluster["properties"]["metadata"]["properties"]["name"]["pattern"],
            DNS_LABEL_PATTERN
        );
        assert_eq!(cluster["properties"]["kind"]["enum"][0], "DatabaseCluster");
        // OpenAPI 3.1 has no `nullable`: optional fields take null.
        assert!(
            !serde_json::to_string(cluster)
                .unwrap()
                .contains("\"nullable\"")
        );
        // A merge patch may leave anything out.
        let patch = &schemas["DatabaseClusterPatch"];
        assert!(patch["required"].is_null());
        assert!(patch["properties"]["spec"]["required"].is_null());
    }
}
