//! What each engine can do, declared by its provider: the source of the
//! README's capability matrix (`capabilities` binary, drift-tested) and of
//! the `Unsupported` refusals of day-2 operations.

use std::fmt::Write as _;
use std::time::Duration;

use dbaas_api::EngineType;
use dbaas_api::backup_storage::BackupStorageType;
use dbaas_api::cluster::{ExposeType, ProxyType, Topology};
use dbaas_api::ops::OpsType;
use serde_json::Value;

use crate::provider::{EngineProvider, provider_for};

/// What an engine supports besides its day-2 operations
/// ([`EngineProvider::supported_operations`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Capabilities {
    /// The topology in a few words ("one primary, streaming replicas").
    pub topology: &'static str,
    /// The `spec.engine.topology` values the engine offers, the default
    /// first; empty for an engine with one topology.
    pub topologies: &'static [Topology],
    /// The proxies `spec.proxy.type` may name (besides `none`).
    pub proxies: &'static [ProxyType],
    /// The exposure types `spec.expose.type` may name.
    pub expose: &'static [ExposeType],
    /// The BackupStorage types backups can go to.
    pub backup_storages: &'static [BackupStorageType],
    /// Point-in-time recovery.
    pub pitr: bool,
    /// Whether a restored new cluster (`spec.dataSource`) is supported.
    pub restore_into_new_cluster: bool,
    /// The operations not offered, each with why (the refusal's message).
    pub not_offered: &'static [(OpsType, &'static str)],
}

/// Why no engine offers RebuildInstance yet.
pub const REBUILD_NOT_OFFERED: &str = "RebuildInstance is not implemented yet: no engine operator here offers it as a declarative change (it takes deleting the instance's pod and volume by hand); nothing was changed";
/// Why no engine offers Custom operations yet.
pub const CUSTOM_NOT_OFFERED: &str = "Custom operations are not implemented: no engine provider defines one yet; nothing was changed";

/// The clusterSize rules of engines that keep quorum (Galera, MongoDB
/// replica sets), as the DatabaseCluster's own validation has them.
pub(crate) fn quorum_scaling_refusal(engine: EngineType, from: i32, to: i32) -> Option<String> {
    if to != 1 && to % 2 == 0 {
        Some(format!(
            "{engine} needs an odd clusterSize (1, 3, 5, ...) to keep quorum; {to} is even"
        ))
    } else if from == 1 && to != 1 {
        Some(format!(
            "a single-node {engine} cluster cannot grow to cluster mode; create a new cluster with clusterSize >= 3 and restore a backup into it"
        ))
    } else if from >= 3 && to < 3 {
        Some(format!(
            "a {engine} cluster in cluster mode cannot be scaled below 3 members"
        ))
    } else {
        None
    }
}

/// Whether a data volume claim `<prefix>-<ordinal>` of a StatefulSet
/// belongs to a current member: Percona's StatefulSets keep the claims of
/// the members a scale-down removed (ordinal `>= clusterSize`) and resize
/// only those of running members.
pub(crate) fn ordinal_claim_of_member(claim_name: &str, cluster_size: i32) -> bool {
    claim_name
        .rsplit_once('-')
        .and_then(|(_, ordinal)| ordinal.parse::<i32>().ok())
        .is_none_or(|ordinal| ordinal < cluster_size)
}

/// How long an engine operator may stay silent after a change before the
/// operator looks again (and, for engines that confirm changes only by
/// their silence, takes a healthy matching status as the answer).
pub const DEFAULT_UNCONFIRMED_AFTER: Duration = Duration::from_secs(120);

/// A merge patch of the engine resource that carries out an operation the
/// engine resource's spec cannot express (a restart, a switchover).
#[derive(Clone, Debug, PartialEq)]
pub struct EnginePatch {
    /// Whether the patch goes to the status subresource.
    pub status: bool,
    pub patch: Value,
}

/// What the engine resource says about its instances' roles.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Primary {
    pub current: Option<String>,
    pub instances: Vec<String>,
}

/// Where an engine's instance pods are, and which container runs the
/// database in them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InstancePods {
    pub selector: String,
    pub container: &'static str,
    /// The pod annotation that carries the restart mark of
    /// [`EngineProvider::restart_patch`].
    pub restart_annotation: &'static str,
}

/// Why `type_` is not offered by `provider`'s engine: its declared reason,
/// else a generic one.
pub fn why_not_offered(provider: &dyn EngineProvider, type_: OpsType) -> String {
    provider
        .capabilities()
        .not_offered
        .iter()
        .find(|(op, _)| *op == type_)
        .map_or_else(
            || {
                format!(
                    "{type_} is not supported for {} clusters",
                    provider.engine()
                )
            },
            |(_, why)| (*why).to_owned(),
        )
}

/// The capability matrix, one column per engine, as Markdown.
pub fn matrix() -> String {
    let providers: Vec<&dyn EngineProvider> = EngineType::ALL
        .into_iter()
        .filter_map(provider_for)
        .collect();
    let mut out = String::from("| | ");
    out += &providers
        .iter()
        .map(|p| format!("`{}` ({})", p.engine(), p.operator_name()))
        .collect::<Vec<_>>()
        .join(" | ");
    out += " |\n|---|";
    out += &"---|".repeat(providers.len());
    out.push('\n');
    let mut row = |label: &str, cell: &dyn Fn(&dyn EngineProvider) -> String| {
        let cells: Vec<String> = providers.iter().map(|p| cell(*p)).collect();
        let _ = writeln!(out, "| {label} | {} |", cells.join(" | "));
    };
    let list = |names: Vec<String>| {
        if names.is_empty() {
            "no".to_owned()
        } else {
            names.join(", ")
        }
    };
    let yes_no = |yes: bool| if yes { "yes" } else { "no" }.to_owned();
    row("topology", &|p| p.capabilities().topology.to_owned());
    row("`engine.topology` choices", &|p| {
        list(p.capabilities().topologies.iter().map(lower).collect())
    });
    row("proxies", &|p| {
        list(p.capabilities().proxies.iter().map(lower).collect())
    });
    row("exposure", &|p| {
        list(p.capabilities().expose.iter().map(lower).collect())
    });
    row("backup storages", &|p| {
        list(p.capabilities().backup_storages.iter().map(lower).collect())
    });
    row("point-in-time recovery", &|p| yes_no(p.capabilities().pitr));
    row("restore into a new cluster", &|p| {
        yes_no(p.capabilities().restore_into_new_cluster)
    });
    row("storage growth (VolumeExpansion)", &|p| {
        yes_no(p.supported_operations().contains(&OpsType::VolumeExpansion))
    });
    for op in OpsType::ALL {
        row(&format!("OpsRequest `{op}`"), &|p| {
            yes_no(p.supported_operations().contains(&op))
        });
    }
    // Why each "no" is a no: the refusal's message, once per reason.
    let mut reasons: Vec<(String, Vec<String>)> = Vec::new();
    for op in OpsType::ALL {
        for p in &providers {
            if p.supported_operations().contains(&op) {
                continue;
            }
            let why = why_not_offered(*p, op);
            let why = why.trim_end_matches("; nothing was changed").to_owned();
            match reasons.iter_mut().find(|(w, _)| *w == why) {
                Some((_, engines)) => engines.push(p.engine().to_string()),
                None => reasons.push((why, vec![p.engine().to_string()])),
            }
        }
    }
    out.push_str("\nNot offered, and why (the `Unsupported` refusal says the same):\n\n");
    for (why, engines) in reasons {
        let _ = writeln!(out, "- {}: {why}.", engines.join(", "));
    }
    out
}

/// The README's markers around the generated matrix.
pub const BEGIN: &str = "<!-- capabilities:begin (written by `cargo run -p dbaas-engines --bin capabilities`; do not edit) -->";
pub const END: &str = "<!-- capabilities:end -->";

/// `document` with the current matrix between its markers; `None` when it
/// lacks them.
pub fn embed(document: &str) -> Option<String> {
    let (before, rest) = document.split_once(BEGIN)?;
    let (_, after) = rest.split_once(END)?;
    Some(format!("{before}{BEGIN}\n{}{END}{after}", matrix()))
}

/// A unit enum variant as the API spells it.
pub fn lower<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_operation_is_offered_or_says_why_not() {
        for engine in EngineType::ALL {
            let provider = provider_for(engine).expect("every engine has a provider");
            let capabilities = provider.capabilities();
            for op in OpsType::ALL {
                let offered = provider.supported_operations().contains(&op);
                let explained = capabilities.not_offered.iter().any(|(o, _)| *o == op);
                assert!(
                    offered != explained,
                    "{engine} {op}: offered {offered}, explained {explained}; exactly one must hold"
                );
            }
        }
    }

    #[test]
    fn an_offered_restart_or_switchover_has_what_carries_it_out() {
        for engine in EngineType::ALL {
            let provider = provider_for(engine).expect("every engine has a provider");
            let offers = |op| provider.supported_operations().contains(&op);
            assert_eq!(
                offers(OpsType::Switchover),
                provider.switches_over(),
                "{engine}"
            );
            assert_eq!(
                offers(OpsType::Restart),
                provider.restart_patch("2027-01-01T00:00:00Z").is_some()
                    && provider.instance_pods("db").is_some(),
                "{engine}"
            );
        }
    }

    #[test]
    fn the_matrix_has_a_column_per_engine_and_a_row_per_operation() {
        let matrix = matrix();
        let header = matrix.lines().next().unwrap();
        for engine in EngineType::ALL {
            assert!(header.contains(&format!("`{engine}`")), "{header}");
        }
        for op in OpsType::ALL {
            assert!(matrix.contains(&format!("| OpsRequest `{op}` |")), "{op}");
        }
        assert!(matrix.contains("| proxies | pgbouncer |"), "{matrix}");
    }
}
