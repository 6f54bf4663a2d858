//! What every provider does the same way.

use std::collections::BTreeMap;

use dbaas_api::backup::LABEL_BACKUP;
use dbaas_api::common::ConfigParameter;
use dbaas_api::common::{LABEL_CLUSTER, LABEL_ENGINE, LABEL_MANAGED_BY, MANAGED_BY_VALUE};
use dbaas_api::{DatabaseBackup, DatabaseCluster, EngineType};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Resource;

use crate::provider::BuildError;
use crate::restore::LABEL_RESTORE;

/// Our labels on everything made for `cluster`: managed by us, its name,
/// its engine.
fn cluster_labels(cluster: &DatabaseCluster, engine: EngineType) -> BTreeMap<String, String> {
    BTreeMap::from([
        (LABEL_MANAGED_BY.to_owned(), MANAGED_BY_VALUE.to_owned()),
        (
            LABEL_CLUSTER.to_owned(),
            cluster.metadata.name.clone().unwrap_or_default(),
        ),
        (LABEL_ENGINE.to_owned(), engine.as_str().to_owned()),
    ])
}

/// Identity of an engine object: the cluster's name and namespace, our
/// labels, and the DatabaseCluster as controller owner (so the garbage
/// collector removes it with the cluster).
pub(crate) fn engine_metadata(cluster: &DatabaseCluster, engine: EngineType) -> ObjectMeta {
    let name = cluster.metadata.name.clone().unwrap_or_default();
    ObjectMeta {
        labels: Some(cluster_labels(cluster, engine)),
        name: Some(name),
        namespace: cluster.metadata.namespace.clone(),
        owner_references: cluster.controller_owner_ref(&()).map(|owner| vec![owner]),
        ..Default::default()
    }
}

/// Identity of an engine's backup resource: named like the DatabaseBackup,
/// in its namespace, with our labels, and owned by it (deleting the
/// DatabaseBackup deletes the engine's record; what happens to the data in
/// the storage is the engine operator's rule).
pub(crate) fn backup_metadata(
    backup: &DatabaseBackup,
    cluster: &DatabaseCluster,
    engine: EngineType,
) -> ObjectMeta {
    let name = backup.metadata.name.clone().unwrap_or_default();
    let mut labels = cluster_labels(cluster, engine);
    labels.insert(LABEL_BACKUP.to_owned(), name.clone());
    ObjectMeta {
        name: Some(name),
        namespace: backup.metadata.namespace.clone(),
        labels: Some(labels),
        owner_references: backup.controller_owner_ref(&()).map(|owner| vec![owner]),
        ..Default::default()
    }
}

/// Identity of an engine's restore resource: in the cluster's namespace,
/// with our labels (the same as on backup resources, plus the restore's
/// name). The operator sets its owner.
pub(crate) fn restore_metadata(
    name: &str,
    cluster: &DatabaseCluster,
    engine: EngineType,
) -> ObjectMeta {
    let mut labels = cluster_labels(cluster, engine);
    labels.insert(LABEL_RESTORE.to_owned(), name.to_owned());
    ObjectMeta {
        name: Some(name.to_owned()),
        namespace: cluster.metadata.namespace.clone(),
        labels: Some(labels),
        ..Default::default()
    }
}

/// The admin credentials Secret: the user's, or `<cluster>-<suffix>`.
pub(crate) fn credentials_secret_or(cluster: &DatabaseCluster, suffix: &str) -> String {
    cluster
        .spec
        .credentials_secret_name
        .clone()
        .unwrap_or_else(|| {
            format!(
                "{}-{suffix}",
                cluster.metadata.name.as_deref().unwrap_or_default()
            )
        })
}

/// What both Percona operators put on a backup their schedules create
/// (PXC 1.16.0+ and PSMDB 1.17.0+: `pkg/naming/labels.go`,
/// `LabelsScheduledBackup` / `ScheduledBackupLabels`; no owner reference).
pub mod percona_cron {
    use kube::core::DynamicObject;

    /// `cron` on scheduled backups (`xtrabackup` on PXC's backup Jobs).
    pub const BACKUP_TYPE: &str = "percona.com/backup-type";
    pub const BACKUP_TYPE_CRON: &str = "cron";
    pub const CLUSTER: &str = "percona.com/cluster";
    /// The schedule: PSMDB writes the task's name, PXC
    /// `<first 5 hex digits of sha1("<namespace>-<cluster>")>-<schedule>`.
    pub const ANCESTOR: &str = "percona.com/backup-ancestor";
    /// Label selector of the backups the schedules create.
    pub const SELECTOR: &str = "percona.com/backup-type=cron";

    /// The cluster and ancestor label of a scheduled backup whose label and
    /// `spec.<cluster_field>` name the same cluster; `None` for any other.
    pub fn cron_backup<'a>(
        engine_backup: &'a DynamicObject,
        cluster_field: &str,
    ) -> Option<(&'a str, &'a str)> {
        use crate::backup::{label, spec_text};
        if label(engine_backup, BACKUP_TYPE)? != BACKUP_TYPE_CRON {
            return None;
        }
        let cluster = label(engine_backup, CLUSTER)?;
        if spec_text(engine_backup, cluster_field)? != cluster {
            return None;
        }
        Some((cluster, label(engine_backup, ANCESTOR)?))
    }
}

/// Renders the config list as my.cnf text: a `[section]` header and one
/// `name=value` line per entry (a bare `name` for an empty value, the
/// boolean option form of MySQL and MariaDB). Anything that could leave its
/// line is refused: line breaks and other control characters, `[` (a new
/// section), and in names everything but letters, digits, `_`, `-` and
/// `.`. `refuse_value` adds the engine operator's own rules for values.
pub(crate) fn my_cnf(
    config: &[ConfigParameter],
    section: &str,
    refuse_value: impl Fn(&str) -> Option<&'static str>,
) -> Result<Option<String>, BuildError> {
    if config.is_empty() {
        return Ok(None);
    }
    let mut text = format!("[{section}]\n");
    for (index, parameter) in config.iter().enumerate() {
        let name = &parameter.name;
        let value = &parameter.value;
        let refuse = |why: &str| {
            Err(BuildError::Convert {
                field: "config",
                source: serde::de::Error::custom(format!(
                    "config[{index}] ({name:?}) cannot go into my.cnf: {why}"
                )),
            })
        };
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        {
            return refuse("an option name may only contain letters, digits, '_', '-' and '.'");
        }
        if value.chars().any(char::is_control) {
            return refuse("the value contains a line break or another control character");
        }
        if value.contains('[') {
            return refuse("the value contains '[', which would start a new my.cnf section");
        }
        if let Some(why) = refuse_value(value) {
            return refuse(why);
        }
        text.push_str(name);
        if !value.is_empty() {
            text.push('=');
            text.push_str(value);
        }
        text.push('\n');
    }
    Ok(Some(text))
}
