//! Turning objects into what the user reads: aligned tables, JSON, YAML.
//! Pure functions; the caller prints the returned string.

use dbaas_api::DatabaseCluster;
use dbaas_api::backup::DatabaseBackup;
use dbaas_api::claim::DatabaseClaim;
use dbaas_api::cluster::{PitrTarget, PitrType};
use dbaas_api::engine::DatabaseEngine;
use dbaas_api::ops::OpsRequest;
use dbaas_api::rbac;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;
use serde::Serialize;

use crate::cli::OutputFormat;
use crate::error::CliError;

const NONE: &str = "<none>";

/// Columns separated by three spaces, padded to the widest cell, like kubectl.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let header: Vec<String> = header.iter().map(|h| h.to_string()).collect();
    for row in std::iter::once(&header).chain(rows) {
        let mut line = String::new();
        for (column, (cell, width)) in row.iter().zip(&widths).enumerate() {
            if column > 0 {
                line.push_str("   ");
            }
            line.push_str(cell);
            line.push_str(&" ".repeat(width - cell.chars().count()));
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// kubectl-style age: `42s`, `5m`, `3h`, `2d`.
pub fn age(created: Option<&Time>, now: Timestamp) -> String {
    let Some(created) = created else {
        return NONE.to_string();
    };
    let seconds = now.duration_since(created.0).as_secs().max(0);
    match seconds {
        s if s < 120 => format!("{s}s"),
        s if s < 2 * 3600 => format!("{}m", s / 60),
        s if s < 2 * 86400 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86400),
    }
}

/// JSON or YAML of any serializable value (a single object or a list).
pub fn structured<T: Serialize>(value: &T, format: OutputFormat) -> Result<String, CliError> {
    match format {
        OutputFormat::Json => serde_json::to_string_pretty(value)
            .map(|mut text| {
                text.push('\n');
                text
            })
            .map_err(|e| CliError::Output(e.to_string())),
        OutputFormat::Yaml | OutputFormat::Table => {
            serde_saphyr::to_string(value).map_err(|e| CliError::Output(e.to_string()))
        }
    }
}

/// A Kubernetes-style list wrapper, so `-o json` of a list reads like kubectl's.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ListOutput<'a, T> {
    pub api_version: &'static str,
    pub kind: &'static str,
    pub items: &'a [T],
}

impl<'a, T> ListOutput<'a, T> {
    pub fn new(items: &'a [T]) -> Self {
        Self {
            api_version: "v1",
            kind: "List",
            items,
        }
    }
}

pub fn clusters_table(clusters: &[DatabaseCluster], now: Timestamp) -> String {
    let rows: Vec<Vec<String>> = clusters
        .iter()
        .map(|cluster| {
            let status = cluster.status.as_ref();
            let version = status
                .and_then(|s| s.engine_version.clone())
                .or_else(|| cluster.spec.engine.version.clone());
            vec![
                cluster.name_any(),
                cluster.spec.engine.type_.to_string(),
                version.unwrap_or_else(|| NONE.to_string()),
                cluster.spec.cluster_size.to_string(),
                format!(
                    "{}/{}",
                    status.map_or(0, |s| s.ready),
                    cluster.spec.cluster_size
                ),
                status
                    .and_then(|s| s.phase)
                    .map_or_else(|| NONE.to_string(), |p| p.to_string()),
                status
                    .and_then(|s| s.host.clone())
                    .unwrap_or_else(|| NONE.to_string()),
                age(cluster.metadata.creation_timestamp.as_ref(), now),
            ]
        })
        .collect();
    table(
        &[
            "NAME", "ENGINE", "VERSION", "SIZE", "READY", "PHASE", "HOST", "AGE",
        ],
        &rows,
    )
}

pub fn claims_table(claims: &[DatabaseClaim], now: Timestamp) -> String {
    let rows: Vec<Vec<String>> = claims
        .iter()
        .map(|claim| {
            let status = claim.status.as_ref();
            let server = status
                .and_then(|s| s.server.clone().or_else(|| s.provisioned_cluster.clone()))
                .unwrap_or_else(|| NONE.to_string());
            let state = match status {
                Some(s) if s.error.is_some() => "Error",
                Some(s) if s.connection_info.is_some() => "Ready",
                _ => "Pending",
            };
            vec![
                claim.name_any(),
                serde_plain(&claim.spec.type_),
                claim.spec.database_name.clone(),
                claim.spec.secret_name.clone(),
                server,
                state.to_string(),
                age(claim.metadata.creation_timestamp.as_ref(), now),
            ]
        })
        .collect();
    table(
        &[
            "NAME", "TYPE", "DATABASE", "SECRET", "SERVER", "STATE", "AGE",
        ],
        &rows,
    )
}

/// Backups: where each went, its phase, and how long ago it completed.
pub fn backups_table(backups: &[DatabaseBackup], now: Timestamp) -> String {
    let rows: Vec<Vec<String>> = backups
        .iter()
        .map(|backup| {
            let status = backup.status.as_ref();
            let or_none = |value: Option<String>| value.unwrap_or_else(|| NONE.to_string());
            vec![
                backup.name_any(),
                backup.spec.cluster_name.clone(),
                or_none(
                    status
                        .and_then(|s| s.storage_name.clone())
                        .or_else(|| backup.spec.storage_name.clone()),
                ),
                status
                    .and_then(|s| s.phase)
                    .map_or("Pending", crate::build::backup_phase_name)
                    .to_string(),
                status
                    .and_then(|s| s.completed_at.as_ref())
                    .map_or_else(|| NONE.to_string(), |t| age(Some(t), now)),
                or_none(status.and_then(|s| s.destination.clone())),
                age(backup.metadata.creation_timestamp.as_ref(), now),
            ]
        })
        .collect();
    table(
        &[
            "NAME",
            "CLUSTER",
            "STORAGE",
            "PHASE",
            "COMPLETED",
            "DESTINATION",
            "AGE",
        ],
        &rows,
    )
}

/// Operations: which cluster, what, and how far along.
pub fn ops_table(requests: &[OpsRequest], now: Timestamp) -> String {
    let rows: Vec<Vec<String>> = requests
        .iter()
        .map(|ops| {
            vec![
                ops.name_any(),
                ops.spec.cluster_ref.name.clone(),
                ops.spec.type_.to_string(),
                crate::build::ops_phase(ops).to_string(),
                ops.status
                    .as_ref()
                    .and_then(|s| s.progress.clone())
                    .unwrap_or_else(|| NONE.to_string()),
                age(ops.metadata.creation_timestamp.as_ref(), now),
            ]
        })
        .collect();
    table(
        &["NAME", "CLUSTER", "TYPE", "PHASE", "PROGRESS", "AGE"],
        &rows,
    )
}

/// Restores: which backup into which cluster, to which point in time.
pub fn restores_table(requests: &[OpsRequest], now: Timestamp) -> String {
    let rows: Vec<Vec<String>> = requests
        .iter()
        .map(|ops| {
            let restore = ops.spec.restore.as_ref();
            vec![
                ops.name_any(),
                ops.spec.cluster_ref.name.clone(),
                restore.map_or_else(|| NONE.to_string(), |r| r.backup_name.clone()),
                restore
                    .and_then(|r| r.pitr.as_ref())
                    .map_or_else(|| NONE.to_string(), pitr_text),
                crate::build::ops_phase(ops).to_string(),
                age(ops.metadata.creation_timestamp.as_ref(), now),
            ]
        })
        .collect();
    table(
        &["NAME", "CLUSTER", "BACKUP", "POINT-IN-TIME", "PHASE", "AGE"],
        &rows,
    )
}

/// `latest` or the RFC 3339 time.
fn pitr_text(pitr: &PitrTarget) -> String {
    match (pitr.type_, &pitr.date) {
        (PitrType::Date, Some(date)) => date.0.to_string(),
        (PitrType::Date, None) => "date".to_owned(),
        (PitrType::Latest, _) => "latest".to_owned(),
    }
}

/// Every permission of the operator, granted or not, then the commands
/// that grant the missing ones.
pub fn preflight_report(service_account: &str, missing: &[rbac::Missing]) -> String {
    let rows: Vec<Vec<String>> = rbac::OPERATOR_PERMISSIONS
        .iter()
        .map(|permission| {
            let gaps: Vec<&rbac::Missing> = missing
                .iter()
                .filter(|m| m.permission == *permission)
                .collect();
            let gap = gaps.first();
            let mut state = match (gap, permission.required) {
                (None, _) => "ok",
                (Some(_), true) => "MISSING",
                (Some(_), false) => "missing (optional)",
            }
            .to_owned();
            let namespaces: Vec<&str> =
                gaps.iter().filter_map(|g| g.namespace.as_deref()).collect();
            if !namespaces.is_empty() {
                state.push_str(&format!(" in {}", namespaces.join(",")));
            }
            let resource = if permission.group.is_empty() {
                permission.resource.to_owned()
            } else {
                format!("{} ({})", permission.resource, permission.group)
            };
            vec![
                resource,
                gap.map_or_else(|| permission.verbs.join(","), |gap| gap.verbs.join(",")),
                state,
                permission.why.to_owned(),
            ]
        })
        .collect();
    let mut report = format!("Permissions of {service_account}:\n");
    report.push_str(&table(
        &["RESOURCE", "VERBS", "GRANTED", "NEEDED TO"],
        &rows,
    ));
    if !missing.is_empty() {
        report.push_str("\nTo grant what is missing:\n");
        for gap in missing {
            report.push_str(&format!("  {}\n", gap.grant_command(service_account)));
        }
        report.push_str(
            "or apply deploy/rbac/operator.yaml (every namespace), or install with \
             `dbaasctl install --watch-namespace NS,...` (a Role in each).\n",
        );
    }
    report
}

pub fn engines_table(engines: &[DatabaseEngine]) -> String {
    let rows: Vec<Vec<String>> = engines
        .iter()
        .map(|engine| {
            let status = engine.status.as_ref();
            let allowed: Vec<&str> = status
                .map(|s| {
                    s.available_versions
                        .iter()
                        .filter(|v| v.allowed)
                        .map(|v| v.version.as_str())
                        .collect()
                })
                .unwrap_or_default();
            vec![
                engine.spec.type_.to_string(),
                status
                    .and_then(|s| s.status)
                    .map_or_else(|| "Unknown".to_string(), |s| serde_plain(&s)),
                {
                    let version = status
                        .and_then(|s| s.operator_version.clone())
                        .unwrap_or_else(|| NONE.to_string());
                    // An OLM upgrade waiting for `engines approve-upgrade`.
                    match status.and_then(|s| s.upgrade_available.as_ref()) {
                        Some(u) => format!(
                            "{version}(upgrade:{})",
                            u.version.as_deref().unwrap_or(&u.csv)
                        ),
                        None => version,
                    }
                },
                status
                    .and_then(|s| s.default_version.clone())
                    .or_else(|| engine.spec.default_version.clone())
                    .unwrap_or_else(|| NONE.to_string()),
                if allowed.is_empty() {
                    NONE.to_string()
                } else {
                    allowed.join(",")
                },
            ]
        })
        .collect();
    table(
        &[
            "TYPE",
            "OPERATOR",
            "OPERATOR-VERSION",
            "DEFAULT",
            "ALLOWED-VERSIONS",
        ],
        &rows,
    )
}

/// The serde name of a unit enum variant (`postgres`, `NotInstalled`).
fn serde_plain<T: Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(text)) => text,
        Ok(other) => other.to_string(),
        Err(_) => NONE.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;

    fn cluster(yaml: &str) -> DatabaseCluster {
        serde_saphyr::from_str(yaml).unwrap()
    }

    fn at(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    #[test]
    fn backups_table_shows_phase_storage_completion_and_destination() {
        let done: DatabaseBackup = serde_saphyr::from_str(
            "apiVersion: dbaas.io/v1\nkind: DatabaseBackup\nmetadata: {name: b1, creationTimestamp: '2026-11-24T01:00:00Z'}\nspec: {clusterName: orders}\nstatus: {phase: Succeeded, storageName: minio, completedAt: '2026-11-24T01:55:00Z', destination: 's3://b/ns/orders'}",
        )
        .unwrap();
        let waiting: DatabaseBackup = serde_saphyr::from_str(
            "apiVersion: dbaas.io/v1\nkind: DatabaseBackup\nmetadata: {name: b2, creationTimestamp: '2026-11-24T01:59:00Z'}\nspec: {clusterName: orders, storageName: other}",
        )
        .unwrap();
        assert_eq!(
            backups_table(&[done, waiting], at("2026-11-24T02:00:00Z")),
            "NAME   CLUSTER   STORAGE   PHASE       COMPLETED   DESTINATION        AGE\n\
             b1     orders    minio     Succeeded   5m          s3://b/ns/orders   60m\n\
             b2     orders    other     Pending     <none>      <none>             60s\n"
        );
    }

    #[test]
    fn ops_and_restores_tables() {
        let ops = |yaml: &str| -> OpsRequest { serde_saphyr::from_str(yaml).unwrap() };
        let scaling = ops(
            "apiVersion: dbaas.io/v1\nkind: OpsRequest\nmetadata: {name: scale-up, creationTimestamp: '2026-11-24T01:58:00Z'}\n\
             spec: {clusterRef: {name: orders}, type: HorizontalScaling, horizontalScaling: {replicas: 3}}\n\
             status: {phase: Running, progress: 1/2}",
        );
        let queued = ops(
            "apiVersion: dbaas.io/v1\nkind: OpsRequest\nmetadata: {name: restart}\nspec: {clusterRef: {name: orders}, type: Restart}",
        );
        assert_eq!(
            ops_table(&[scaling, queued], at("2026-11-24T02:00:00Z")),
            "NAME       CLUSTER   TYPE                PHASE     PROGRESS   AGE\n\
             scale-up   orders    HorizontalScaling   Running   1/2        2m\n\
             restart    orders    Restart             Pending   <none>     <none>\n"
        );
        let to_date = ops(
            "apiVersion: dbaas.io/v1\nkind: OpsRequest\nmetadata: {name: r1}\n\
             spec: {clusterRef: {name: orders}, type: Restore, restore: {backupName: nightly, pitr: {type: date, date: '2026-11-24T01:30:00Z'}}}\n\
             status: {phase: Succeeded}",
        );
        let latest = ops(
            "apiVersion: dbaas.io/v1\nkind: OpsRequest\nmetadata: {name: r2}\n\
             spec: {clusterRef: {name: orders}, type: Restore, restore: {backupName: nightly, pitr: {type: latest}}}",
        );
        assert_eq!(
            restores_table(&[to_date, latest], at("2026-11-24T02:00:00Z")),
            "NAME   CLUSTER   BACKUP    POINT-IN-TIME          PHASE       AGE\n\
             r1     orders    nightly   2026-11-24T01:30:00Z   Succeeded   <none>\n\
             r2     orders    nightly   latest                 Pending     <none>\n"
        );
    }

    #[test]
    fn table_pads_columns_and_trims_line_ends() {
        let out = table(
            &["NAME", "X"],
            &[
                vec!["a".into(), "1".into()],
                vec!["longer".into(), "".into()],
            ],
        );
        assert_eq!(out, "NAME     X\na        1\nlonger\n");
    }

    #[test]
    fn ages() {
        let now = at("2026-01-10T00:00:00Z");
        let time = |t: &str| Time(at(t));
        assert_eq!(age(Some(&time("2026-01-09T23:59:18Z")), now), "42s");
        assert_eq!(age(Some(&time("2026-01-09T23:55:00Z")), now), "5m");
        assert_eq!(age(Some(&time("2026-01-09T21:00:00Z")), now), "3h");
        assert_eq!(age(Some(&time("2026-01-07T00:00:00Z")), now), "3d");
        // Clock skew must not print a negative age.
        assert_eq!(age(Some(&time("2026-01-10T00:00:09Z")), now), "0s");
        assert_eq!(age(None, now), "<none>");
    }

    #[test]
    fn cluster_table_shows_status_and_falls_back_to_spec() {
        let ready = cluster(
            "apiVersion: dbaas.io/v1\nkind: DatabaseCluster\nmetadata: {name: pg, creationTimestamp: '2026-01-09T23:00:00Z'}\n\
             spec: {engine: {type: postgresql}, clusterSize: 3, storage: {size: 1Gi}}\n\
             status: {phase: Ready, ready: 3, size: 3, host: pg-rw.ns.svc, engineVersion: '17.6'}",
        );
        let fresh = cluster(
            "apiVersion: dbaas.io/v1\nkind: DatabaseCluster\nmetadata: {name: my-sql-cluster}\n\
             spec: {engine: {type: mysql, version: 8.0.36}, storage: {size: 1Gi}}",
        );
        let out = clusters_table(&[ready, fresh], at("2026-01-10T00:00:00Z"));
        assert_eq!(
            out,
            "\
NAME             ENGINE       VERSION   SIZE   READY   PHASE    HOST           AGE
pg               postgresql   17.6      3      3/3     Ready    pg-rw.ns.svc   60m
my-sql-cluster   mysql        8.0.36    1      0/1     <none>   <none>         <none>
"
        );
    }

    #[test]
    fn engine_table_lists_allowed_versions_only() {
        let engine: DatabaseEngine = serde_saphyr::from_str(
            "apiVersion: dbaas.io/v1\nkind: DatabaseEngine\nmetadata: {name: postgresql}\nspec: {type: postgresql}\n\
             status: {status: Installed, operatorVersion: 1.27.0, defaultVersion: '17.6', availableVersions: [\
             {version: '16.0', image: i, allowed: false}, {version: '17.6', image: i, allowed: true, default: true}, \
             {version: '17.5', image: i, allowed: true}]}",
        )
        .unwrap();
        assert_eq!(
            engines_table(&[engine]),
            "\
TYPE         OPERATOR    OPERATOR-VERSION   DEFAULT   ALLOWED-VERSIONS
postgresql   Installed   1.27.0             17.6      17.6,17.5
"
        );
    }

    #[test]
    fn json_and_yaml_round_trip() {
        let pg = cluster(
            "apiVersion: dbaas.io/v1\nkind: DatabaseCluster\nmetadata: {name: pg}\nspec: {engine: {type: postgresql}, storage: {size: 1Gi}}",
        );
        let expected = serde_json::to_value(&pg).unwrap();
        let json = structured(&pg, OutputFormat::Json).unwrap();
        let from_json: DatabaseCluster = serde_json::from_str(&json).unwrap();
        assert_eq!(serde_json::to_value(&from_json).unwrap(), expected);
        let yaml = structured(&pg, OutputFormat::Yaml).unwrap();
        let from_yaml: DatabaseCluster = serde_saphyr::from_str(&yaml).unwrap();
        assert_eq!(serde_json::to_value(&from_yaml).unwrap(), expected);
        let list = structured(&ListOutput::new(&[pg]), OutputFormat::Json).unwrap();
        let value: serde_json::Value = serde_json::from_str(&list).unwrap();
        assert_eq!(value["kind"], "List");
        assert_eq!(value["items"][0]["metadata"]["name"], "pg");
    }
}
