//! Templates: which one a cluster selects, the effective spec (what the user
//! set > the template > operator defaults), and the template's engine-resource
//! fragment, labels and annotations merged into the built engine object. Pure.
//! BackupScheduleTemplates likewise: selected by `spec.backup.scheduleTemplateName`,
//! their schedules merged under the cluster's own by name.

use std::collections::BTreeMap;

use dbaas_api::common::{
    ANNOTATION_TEMPLATE_KIND, ANNOTATION_TEMPLATE_NAME, LABEL_CLUSTER, LABEL_ENGINE,
    LABEL_MANAGED_BY,
};
use dbaas_api::{BackupScheduleTemplate, BackupStorage, DatabaseCluster, DatabaseClusterTemplate};
use dbaas_engines::backup::DEFAULT_SCHEDULE;
use kube::core::DynamicObject;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Resource, ResourceExt};
use serde_json::Value;

/// The template a cluster selects, if it sets both annotations.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TemplateRef {
    pub kind: String,
    pub name: String,
}

/// Reads the template annotations. Without both kind and name no template
/// applies.
pub fn selected(cluster: &DatabaseCluster) -> Option<TemplateRef> {
    let annotations = cluster.metadata.annotations.as_ref()?;
    let kind = annotations.get(ANNOTATION_TEMPLATE_KIND)?;
    let name = annotations.get(ANNOTATION_TEMPLATE_NAME)?;
    Some(TemplateRef {
        kind: kind.clone(),
        name: name.clone(),
    })
}

/// Why a selected template cannot be used.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error("template kind {0:?} is not known; use {kind}", kind = DatabaseClusterTemplate::kind(&()))]
    UnknownKind(String),
    #[error("{kind} {name:?} does not exist in this namespace", kind = DatabaseClusterTemplate::kind(&()))]
    NotFound { name: String },
    #[error("{kind} {name:?} is for {template_engine} clusters, not {cluster_engine}", kind = DatabaseClusterTemplate::kind(&()))]
    EngineMismatch {
        name: String,
        template_engine: String,
        cluster_engine: String,
    },
}

impl TemplateError {
    pub fn reason(&self) -> &'static str {
        match self {
            Self::UnknownKind(_) => "TemplateKindUnknown",
            Self::NotFound { .. } => "TemplateNotFound",
            Self::EngineMismatch { .. } => "TemplateEngineMismatch",
        }
    }
}

/// Checks that `found` is a usable template for `cluster`.
pub fn check<'a>(
    cluster: &DatabaseCluster,
    selected: &TemplateRef,
    found: Option<&'a DatabaseClusterTemplate>,
) -> Result<&'a DatabaseClusterTemplate, TemplateError> {
    if selected.kind != DatabaseClusterTemplate::kind(&()) {
        return Err(TemplateError::UnknownKind(selected.kind.clone()));
    }
    let template = found.ok_or_else(|| TemplateError::NotFound {
        name: selected.name.clone(),
    })?;
    if template.spec.engine_type != cluster.spec.engine.type_ {
        return Err(TemplateError::EngineMismatch {
            name: selected.name.clone(),
            template_engine: template.spec.engine_type.to_string(),
            cluster_engine: cluster.spec.engine.type_.to_string(),
        });
    }
    Ok(template)
}

/// The cluster as the providers should see it: every setting the user left
/// unset filled from the template. Config entries merge by name, the user's
/// entries winning.
pub fn effective(cluster: &DatabaseCluster, template: &DatabaseClusterTemplate) -> DatabaseCluster {
    let mut effective = cluster.clone();
    let spec = &mut effective.spec;
    let preset = &template.spec;
    if spec.resources.is_none() {
        spec.resources.clone_from(&preset.resources);
    }
    if spec.scheduling.is_none() {
        spec.scheduling.clone_from(&preset.scheduling);
    }
    if spec.storage.class.is_none() {
        spec.storage.class.clone_from(&preset.storage_class);
    }
    let mut config = preset.config.clone();
    config.retain(|p| !spec.config.iter().any(|own| own.name == p.name));
    config.extend(spec.config.iter().cloned());
    spec.config = config;
    effective
}

/// Merges the template's engine-resource fragment under the built object's
/// `spec` (the operator's fields win), and its labels and annotations under
/// the object's own (ours win; our identity labels are never overridden).
pub fn merge_into_engine_object(object: &mut DynamicObject, template: &DatabaseClusterTemplate) {
    if let Some(fragment) = &template.spec.engine_spec {
        let spec = object.data.as_object_mut().map(|data| {
            data.entry("spec")
                .or_insert_with(|| Value::Object(Default::default()))
        });
        if let Some(spec) = spec {
            merge_under(spec, fragment);
        }
    }
    let reserved = [LABEL_MANAGED_BY, LABEL_CLUSTER, LABEL_ENGINE];
    let propagate = |target: &mut Option<BTreeMap<String, String>>,
                     source: Option<&BTreeMap<String, String>>| {
        let Some(source) = source else { return };
        let target = target.get_or_insert_with(BTreeMap::new);
        for (key, value) in source {
            if reserved.contains(&key.as_str()) || key.starts_with("kubectl.kubernetes.io/") {
                continue;
            }
            target.entry(key.clone()).or_insert_with(|| value.clone());
        }
    };
    propagate(
        &mut object.metadata.labels,
        template.metadata.labels.as_ref(),
    );
    propagate(
        &mut object.metadata.annotations,
        template.metadata.annotations.as_ref(),
    );
}

/// The BackupScheduleTemplate a cluster selects (`spec.backup.scheduleTemplateName`).
/// A typed reference, not the template annotations: those name one template
/// per cluster, and a cluster may use a DatabaseClusterTemplate as well.
pub fn selected_schedule_template(cluster: &DatabaseCluster) -> Option<&str> {
    cluster
        .spec
        .backup
        .as_ref()?
        .schedule_template_name
        .as_deref()
}

/// Why a selected BackupScheduleTemplate cannot be used. The reasons are the
/// cluster templates' own; the messages name the kind.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleTemplateError {
    #[error("{kind} {name:?} (spec.backup.scheduleTemplateName) does not exist in this namespace; no backup schedule is applied until it does", kind = BackupScheduleTemplate::kind(&()))]
    NotFound { name: String },
    #[error("{kind} {name:?} (spec.backup.scheduleTemplateName) is for {template_engine} clusters, not {cluster_engine}", kind = BackupScheduleTemplate::kind(&()))]
    EngineMismatch {
        name: String,
        template_engine: String,
        cluster_engine: String,
    },
}

impl ScheduleTemplateError {
    pub fn reason(&self) -> &'static str {
        match self {
            Self::NotFound { .. } => "TemplateNotFound",
            Self::EngineMismatch { .. } => "TemplateEngineMismatch",
        }
    }
}

/// Checks that `found` is a usable BackupScheduleTemplate for `cluster`: it
/// exists, and names no engine or the cluster's.
pub fn check_schedule_template<'a>(
    cluster: &DatabaseCluster,
    name: &str,
    found: Option<&'a BackupScheduleTemplate>,
) -> Result<&'a BackupScheduleTemplate, ScheduleTemplateError> {
    let template = found.ok_or_else(|| ScheduleTemplateError::NotFound {
        name: name.to_owned(),
    })?;
    match template.spec.engine_type {
        Some(engine) if engine != cluster.spec.engine.type_ => {
            Err(ScheduleTemplateError::EngineMismatch {
                name: name.to_owned(),
                template_engine: engine.to_string(),
                cluster_engine: cluster.spec.engine.type_.to_string(),
            })
        }
        _ => Ok(template),
    }
}

/// The cluster with the template's schedules merged into
/// `spec.backup.schedules`: the cluster's own schedules first and whole, then
/// every template schedule whose name the cluster does not use (the short
/// form, when it runs, takes the name `default`). Everything else in the
/// backup spec (`enabled`, PITR) stays the cluster's.
pub fn with_schedule_template(
    cluster: &DatabaseCluster,
    template: &BackupScheduleTemplate,
) -> DatabaseCluster {
    let mut effective = cluster.clone();
    let Some(backup) = effective.spec.backup.as_mut() else {
        return effective;
    };
    let short_form_runs = backup.schedule.is_some() && backup.storage_name.is_some();
    let taken = |name: &str| {
        (short_form_runs && name == DEFAULT_SCHEDULE)
            || backup.schedules.iter().any(|own| own.name == name)
    };
    let inherited: Vec<_> = template
        .spec
        .schedules
        .iter()
        .filter(|s| !taken(&s.name))
        .cloned()
        .collect();
    backup.schedules.extend(inherited);
    effective
}

/// The cluster as the storage lookup must see it: with the schedules of the
/// BackupScheduleTemplate it selects, when that template was found. A
/// missing or mismatched template adds nothing here; the plan refuses it.
pub fn with_found_schedule_template(
    cluster: &DatabaseCluster,
    found: Option<&BackupScheduleTemplate>,
) -> Option<DatabaseCluster> {
    let name = selected_schedule_template(cluster)?;
    check_schedule_template(cluster, name, found)
        .ok()
        .map(|template| with_schedule_template(cluster, template))
}

/// The clusters in the template's namespace that select it.
pub fn clusters_of_schedule_template(
    clusters: &Store<DatabaseCluster>,
    template: &BackupScheduleTemplate,
) -> Vec<ObjectRef<DatabaseCluster>> {
    clusters
        .state()
        .iter()
        .filter(|c| c.namespace() == template.namespace())
        .filter(|c| {
            selected_schedule_template(c)
                .is_some_and(|name| Some(name) == template.metadata.name.as_deref())
        })
        .map(|c| ObjectRef::from_obj(c.as_ref()))
        .collect()
}

/// The clusters that use `storage` only through the BackupScheduleTemplate
/// they select (their own spec does not name it), so a changed storage
/// re-renders them too.
pub fn clusters_of_storage_via_schedule_template(
    clusters: &Store<DatabaseCluster>,
    templates: &Store<BackupScheduleTemplate>,
    storage: &BackupStorage,
) -> Vec<ObjectRef<DatabaseCluster>> {
    let namespace = storage.namespace();
    let name = storage.name_any();
    // Templates live in the cluster's namespace; the storages they name in
    // the cluster's storage namespace.
    let naming: Vec<(Option<String>, String)> = templates
        .state()
        .iter()
        .filter(|t| t.spec.schedules.iter().any(|s| s.storage_name == name))
        .map(|t| (t.namespace(), t.name_any()))
        .collect();
    if naming.is_empty() {
        return Vec::new();
    }
    clusters
        .state()
        .iter()
        .filter(|c| {
            namespace.as_deref() == Some(crate::backup::storage::storage_namespace(c).as_str())
        })
        .filter(|c| {
            selected_schedule_template(c)
                .is_some_and(|t| naming.iter().any(|(ns, n)| n == t && *ns == c.namespace()))
        })
        .map(|c| ObjectRef::from_obj(c.as_ref()))
        .collect()
}

/// Adds to `ours` every field of `fragment` that `ours` does not set,
/// recursively through objects. Arrays and scalars we set are kept whole.
fn merge_under(ours: &mut Value, fragment: &Value) {
    let (Value::Object(ours), Value::Object(fragment)) = (ours, fragment) else {
        return;
    };
    for (key, value) in fragment {
        match ours.get_mut(key) {
            Some(existing) => merge_under(existing, value),
            None => {
                ours.insert(key.clone(), value.clone());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use dbaas_api::common::ConfigParameter;
    use serde_json::json;

    use super::*;

    fn cluster(annotations: &str, spec: &str) -> DatabaseCluster {
        serde_saphyr::from_str(&format!(
            "apiVersion: dbaas.io/v1\nkind: DatabaseCluster\nmetadata: {{name: pg, namespace: ns, annotations: {annotations}}}\nspec: {spec}"
        ))
        .unwrap()
    }

    fn template(yaml: &str) -> DatabaseClusterTemplate {
        serde_saphyr::from_str(yaml).unwrap()
    }

    const SMALL: &str = r#"
apiVersion: dbaas.io/v1
kind: DatabaseClusterTemplate
metadata:
  name: small
  namespace: ns
  labels: {team: payments, app.kubernetes.io/managed-by: someone}
  annotations: {cost-center: "42"}
spec:
  engineType: postgresql
  storageClass: fast
  resources: {requests: {cpu: "500m", memory: 1Gi}}
  config:
    - {name: max_connections, value: "100"}
    - {name: shared_buffers, value: 256MB}
  engineSpec:
    instances: 99
    enablePDB: false
    postgresql: {parameters: {max_connections: "1", log_min_duration_statement: "500"}}
"#;

    #[test]
    fn selection_needs_both_annotations() {
        assert_eq!(
            selected(&cluster(
                "{dbaas.io/template-kind: DatabaseClusterTemplate, dbaas.io/template-name: small}",
                "{engine: {type: postgresql}, storage: {size: 1Gi}}"
            )),
            Some(TemplateRef {
                kind: "DatabaseClusterTemplate".into(),
                name: "small".into()
            })
        );
        assert_eq!(
            selected(&cluster(
                "{dbaas.io/template-name: small}",
                "{engine: {type: postgresql}, storage: {size: 1Gi}}"
            )),
            None
        );
    }

    #[test]
    fn unknown_missing_and_mismatched_templates_are_errors() {
        let c = cluster("{}", "{engine: {type: mysql}, storage: {size: 1Gi}}");
        let t = template(SMALL);
        let by = |kind: &str| TemplateRef {
            kind: kind.into(),
            name: "small".into(),
        };
        assert_eq!(
            check(&c, &by("Other"), Some(&t)).unwrap_err().reason(),
            "TemplateKindUnknown"
        );
        assert_eq!(
            check(&c, &by("DatabaseClusterTemplate"), None)
                .unwrap_err()
                .reason(),
            "TemplateNotFound"
        );
        let err = check(&c, &by("DatabaseClusterTemplate"), Some(&t)).unwrap_err();
        assert_eq!(err.reason(), "TemplateEngineMismatch");
        assert!(
            err.to_string().contains("postgresql clusters, not mysql"),
            "{err}"
        );
    }

    #[test]
    fn user_settings_win_over_the_template() {
        let c = cluster(
            "{}",
            "{engine: {type: postgresql}, storage: {size: 1Gi}, config: [{name: max_connections, value: '300'}]}",
        );
        let e = effective(&c, &template(SMALL));
        assert_eq!(e.spec.storage.class.as_deref(), Some("fast"));
        assert_eq!(
            e.spec
                .resources
                .as_ref()
                .unwrap()
                .requests
                .as_ref()
                .unwrap()["cpu"]
                .0,
            "500m"
        );
        let config: Vec<(&str, &str)> = e
            .spec
            .config
            .iter()
            .map(|p| (p.name.as_str(), p.value.as_str()))
            .collect();
        assert_eq!(
            config,
            vec![("shared_buffers", "256MB"), ("max_connections", "300")]
        );

        let own = cluster(
            "{}",
            "{engine: {type: postgresql}, storage: {size: 1Gi, class: slow}, resources: {requests: {cpu: '2'}}}",
        );
        let e = effective(&own, &template(SMALL));
        assert_eq!(e.spec.storage.class.as_deref(), Some("slow"));
        assert_eq!(
            e.spec
                .resources
                .as_ref()
                .unwrap()
                .requests
                .as_ref()
                .unwrap()["cpu"]
                .0,
            "2"
        );
        assert!(e.spec.config.contains(&ConfigParameter {
            name: "shared_buffers".into(),
            value: "256MB".into()
        }));
    }

    fn schedule_template(yaml: &str) -> BackupScheduleTemplate {
        serde_saphyr::from_str(&format!(
            "apiVersion: dbaas.io/v1\nkind: BackupScheduleTemplate\nmetadata: {{name: nightly, namespace: ns}}\nspec: {yaml}"
        ))
        .unwrap()
    }

    const NIGHTLY: &str = "{schedules: [{name: default, schedule: '0 1 * * *', storageName: s3}, {name: daily, schedule: '0 2 * * *', storageName: s3, retentionCopies: 7}, {name: weekly, schedule: '0 3 * * 0', storageName: archive}]}";

    fn schedule_names(cluster: &DatabaseCluster) -> Vec<(String, String, String)> {
        cluster
            .spec
            .backup
            .iter()
            .flat_map(|b| &b.schedules)
            .map(|s| (s.name.clone(), s.schedule.clone(), s.storage_name.clone()))
            .collect()
    }

    #[test]
    fn the_schedule_template_is_selected_by_the_typed_reference() {
        let c = cluster(
            "{dbaas.io/template-kind: BackupScheduleTemplate, dbaas.io/template-name: nightly}",
            "{engine: {type: postgresql}, storage: {size: 1Gi}, backup: {enabled: true}}",
        );
        assert_eq!(selected_schedule_template(&c), None);
        let c = cluster(
            "{}",
            "{engine: {type: postgresql}, storage: {size: 1Gi}, backup: {enabled: true, scheduleTemplateName: nightly}}",
        );
        assert_eq!(selected_schedule_template(&c), Some("nightly"));
    }

    #[test]
    fn template_schedules_are_appended_and_the_users_win_whole_by_name() {
        let c = cluster(
            "{}",
            "{engine: {type: mysql}, storage: {size: 1Gi}, backup: {enabled: true, scheduleTemplateName: nightly, schedules: [{name: daily, schedule: '30 4 * * *', storageName: own}]}}",
        );
        let e = with_schedule_template(&c, &schedule_template(NIGHTLY));
        let own = |n: &str, cron: &str, s: &str| (n.to_owned(), cron.to_owned(), s.to_owned());
        assert_eq!(
            schedule_names(&e),
            vec![
                own("daily", "30 4 * * *", "own"),
                own("default", "0 1 * * *", "s3"),
                own("weekly", "0 3 * * 0", "archive"),
            ]
        );
        // The user's schedule is kept whole: no retention from the template's.
        let daily = &e.spec.backup.as_ref().unwrap().schedules[0];
        assert_eq!(daily.retention_copies, None);
        // Only the schedules change.
        assert!(e.spec.backup.as_ref().unwrap().enabled);
        assert_eq!(e.spec.storage, c.spec.storage);
    }

    #[test]
    fn the_short_form_owns_the_default_name() {
        let c = cluster(
            "{}",
            "{engine: {type: mysql}, storage: {size: 1Gi}, backup: {enabled: true, schedule: '0 5 * * *', storageName: own, scheduleTemplateName: nightly}}",
        );
        let e = with_schedule_template(&c, &schedule_template(NIGHTLY));
        let names: Vec<String> = schedule_names(&e).into_iter().map(|s| s.0).collect();
        assert_eq!(names, vec!["daily", "weekly"]);
        let runs: Vec<String> = dbaas_engines::backup::schedules(&e.spec)
            .into_iter()
            .map(|s| format!("{}={}@{}", s.name, s.cron, s.storage_name))
            .collect();
        assert_eq!(
            runs,
            vec![
                "default=0 5 * * *@own",
                "daily=0 2 * * *@s3",
                "weekly=0 3 * * 0@archive"
            ]
        );
        // The template's storages are the ones to look up.
        assert_eq!(
            dbaas_engines::backup::referenced_storages(&e.spec),
            vec!["archive", "own", "s3"]
        );
    }

    #[test]
    fn missing_and_mismatched_schedule_templates_are_errors() {
        let c = cluster(
            "{}",
            "{engine: {type: mysql}, storage: {size: 1Gi}, backup: {enabled: true, scheduleTemplateName: nightly}}",
        );
        let err = check_schedule_template(&c, "nightly", None).unwrap_err();
        assert_eq!(err.reason(), "TemplateNotFound");
        assert!(
            err.to_string()
                .contains("BackupScheduleTemplate \"nightly\""),
            "{err}"
        );
        assert!(with_found_schedule_template(&c, None).is_none());

        let for_pg = schedule_template(&NIGHTLY.replacen('{', "{engineType: postgresql, ", 1));
        let err = check_schedule_template(&c, "nightly", Some(&for_pg)).unwrap_err();
        assert_eq!(err.reason(), "TemplateEngineMismatch");
        assert!(
            err.to_string().contains("postgresql clusters, not mysql"),
            "{err}"
        );
        assert!(with_found_schedule_template(&c, Some(&for_pg)).is_none());

        let for_mysql = schedule_template(&NIGHTLY.replacen('{', "{engineType: mysql, ", 1));
        assert!(check_schedule_template(&c, "nightly", Some(&for_mysql)).is_ok());
        let any = schedule_template(NIGHTLY);
        let e = with_found_schedule_template(&c, Some(&any)).unwrap();
        assert_eq!(schedule_names(&e).len(), 3);
    }

    #[test]
    fn fragment_and_metadata_merge_under_what_we_generate() {
        let mut object: DynamicObject = serde_json::from_value(json!({
            "apiVersion": "postgresql.cnpg.io/v1", "kind": "Cluster",
            "metadata": { "name": "pg", "labels": { "app.kubernetes.io/managed-by": "dbaas-operator", "dbaas.io/cluster": "pg" } },
            "spec": { "instances": 3, "postgresql": { "parameters": { "max_connections": "300" } } }
        }))
        .unwrap();
        merge_into_engine_object(&mut object, &template(SMALL));
        assert_eq!(
            object.data["spec"],
            json!({
                "instances": 3,
                "enablePDB": false,
                "postgresql": { "parameters": { "max_connections": "300", "log_min_duration_statement": "500" } }
            })
        );
        let labels = object.metadata.labels.unwrap();
        assert_eq!(labels["team"], "payments");
        assert_eq!(labels["app.kubernetes.io/managed-by"], "dbaas-operator");
        assert_eq!(object.metadata.annotations.unwrap()["cost-center"], "42");
    }
}
