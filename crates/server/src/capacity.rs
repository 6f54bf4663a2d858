//! "Available resources" of a cluster: what the nodes can allocate minus
//! what the pods on them request, so a user can see what fits before
//! creating a database cluster. Pure functions over Node and Pod objects.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Node, Pod, ResourceRequirements};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// CPU in millicores, memory and ephemeral storage in bytes.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, Default, PartialEq, Eq, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Amounts {
    pub cpu_millis: u64,
    pub memory_bytes: u64,
    pub ephemeral_storage_bytes: u64,
}

impl Amounts {
    fn add(self, other: Self) -> Self {
        Self {
            cpu_millis: self.cpu_millis.saturating_add(other.cpu_millis),
            memory_bytes: self.memory_bytes.saturating_add(other.memory_bytes),
            ephemeral_storage_bytes: self
                .ephemeral_storage_bytes
                .saturating_add(other.ephemeral_storage_bytes),
        }
    }

    /// Never below zero: an overcommitted node has nothing left, not less.
    fn minus(self, other: Self) -> Self {
        Self {
            cpu_millis: self.cpu_millis.saturating_sub(other.cpu_millis),
            memory_bytes: self.memory_bytes.saturating_sub(other.memory_bytes),
            ephemeral_storage_bytes: self
                .ephemeral_storage_bytes
                .saturating_sub(other.ephemeral_storage_bytes),
        }
    }

    fn max(self, other: Self) -> Self {
        Self {
            cpu_millis: self.cpu_millis.max(other.cpu_millis),
            memory_bytes: self.memory_bytes.max(other.memory_bytes),
            ephemeral_storage_bytes: self
                .ephemeral_storage_bytes
                .max(other.ephemeral_storage_bytes),
        }
    }

    fn from_list(
        list: Option<&BTreeMap<String, k8s_openapi::apimachinery::pkg::api::resource::Quantity>>,
    ) -> Self {
        let Some(list) = list else {
            return Self::default();
        };
        let get = |key: &str, millis: bool| {
            list.get(key)
                .and_then(|q| parse_quantity_millis(&q.0))
                .map(|m| if millis { m } else { m.div_ceil(1000) })
                .unwrap_or(0)
        };
        Self {
            cpu_millis: get("cpu", true),
            memory_bytes: get("memory", false),
            ephemeral_storage_bytes: get("ephemeral-storage", false),
        }
    }
}

/// One node's share.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct NodeCapacity {
    pub name: String,
    pub allocatable: Amounts,
    pub requested: Amounts,
    pub available: Amounts,
}

/// The nodes' totals: `available` is the sum of each node's (allocatable
/// minus requested, at least zero).
#[derive(Serialize, Deserialize, Debug, Clone, Default, PartialEq, Eq, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Capacity {
    pub allocatable: Amounts,
    pub requested: Amounts,
    pub available: Amounts,
    pub nodes: Vec<NodeCapacity>,
}

/// What the pods on `nodes` request, subtracted from what the nodes can
/// allocate. Unschedulable nodes offer nothing new and are left out; pods
/// that finished (Succeeded, Failed) hold nothing; pods not bound to one of
/// `nodes` do not count.
pub fn available(nodes: &[Node], pods: &[Pod]) -> Capacity {
    let mut requested: BTreeMap<&str, Amounts> = BTreeMap::new();
    for pod in pods {
        let finished = pod
            .status
            .as_ref()
            .and_then(|s| s.phase.as_deref())
            .is_some_and(|phase| phase == "Succeeded" || phase == "Failed");
        let node = pod.spec.as_ref().and_then(|s| s.node_name.as_deref());
        if let (false, Some(node)) = (finished, node) {
            let sum = requested.entry(node).or_default();
            *sum = sum.add(pod_requests(pod));
        }
    }
    let mut capacity = Capacity::default();
    let mut schedulable: Vec<&Node> = nodes
        .iter()
        .filter(|n| {
            !n.spec
                .as_ref()
                .and_then(|s| s.unschedulable)
                .unwrap_or(false)
        })
        .collect();
    schedulable.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    for node in schedulable {
        let name = node.metadata.name.clone().unwrap_or_default();
        let allocatable =
            Amounts::from_list(node.status.as_ref().and_then(|s| s.allocatable.as_ref()));
        let used = requested.get(name.as_str()).copied().unwrap_or_default();
        let free = allocatable.minus(used);
        capacity.allocatable = capacity.allocatable.add(allocatable);
        capacity.requested = capacity.requested.add(used);
        capacity.available = capacity.available.add(free);
        capacity.nodes.push(NodeCapacity {
            name,
            allocatable,
            requested: used,
            available: free,
        });
    }
    capacity
}

/// A pod's effective request, as the scheduler counts it: the larger of the
/// sum of its containers and its largest init container, plus its overhead.
pub fn pod_requests(pod: &Pod) -> Amounts {
    let Some(spec) = &pod.spec else {
        return Amounts::default();
    };
    let of =
        |r: Option<&ResourceRequirements>| Amounts::from_list(r.and_then(|r| r.requests.as_ref()));
    let containers = spec.containers.iter().fold(Amounts::default(), |sum, c| {
        sum.add(of(c.resources.as_ref()))
    });
    let init = spec
        .init_containers
        .iter()
        .flatten()
        .fold(Amounts::default(), |max, c| {
            max.max(of(c.resources.as_ref()))
        });
    containers
        .max(init)
        .add(Amounts::from_list(spec.overhead.as_ref()))
}

/// A Kubernetes quantity (`250m`, `1.5`, `2Gi`, `1e3`, `500M`) in
/// thousandths of its unit, rounded up; None when it is not a quantity or
/// does not fit in a u64 (never a panic: the text comes from whatever a
/// registered cluster answers).
pub fn parse_quantity_millis(text: &str) -> Option<u64> {
    let text = text.trim();
    let number_end = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '+' || c == '-'))
        .unwrap_or(text.len());
    let (number, suffix) = text.split_at(number_end);
    if number.is_empty() || number.starts_with('-') {
        return None;
    }
    let number = number.strip_prefix('+').unwrap_or(number);
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    if whole.is_empty() && fraction.is_empty() {
        return None;
    }
    let digits = |s: &str| s.chars().all(|c| c.is_ascii_digit());
    if !digits(whole) || !digits(fraction) {
        return None;
    }
    // value = mantissa / 10^scale, then times the suffix.
    let mantissa: u128 = format!("{whole}{fraction}").parse().ok()?;
    let scale = i32::try_from(fraction.len()).ok()?;
    // (multiplier numerator, decimal exponent) so that the suffix is
    // numerator * 10^exponent.
    let (numerator, exponent): (u128, i32) = match suffix {
        "" => (1, 0),
        "n" => (1, -9),
        "u" => (1, -6),
        "m" => (1, -3),
        "k" => (1, 3),
        "M" => (1, 6),
        "G" => (1, 9),
        "T" => (1, 12),
        "P" => (1, 15),
        "E" => (1, 18),
        "Ki" => (1 << 10, 0),
        "Mi" => (1 << 20, 0),
        "Gi" => (1 << 30, 0),
        "Ti" => (1 << 40, 0),
        "Pi" => (1 << 50, 0),
        "Ei" => (1 << 60, 0),
        other => {
            let exp = other.strip_prefix(['e', 'E'])?;
            (1, exp.parse().ok()?)
        }
    };
    // millis = mantissa * numerator * 10^(exponent + 3 - scale), rounded up.
    let power = exponent.checked_add(3)?.checked_sub(scale)?;
    let base = mantissa.checked_mul(numerator)?;
    let millis = if power >= 0 {
        base.checked_mul(10u128.checked_pow(power.unsigned_abs())?)?
    } else {
        match 10u128.checked_pow(power.unsigned_abs()) {
            Some(divisor) => base.div_ceil(divisor),
            // Smaller than any u128 divisor can express: less than one
            // thousandth, rounded up.
            None => u128::from(base > 0),
        }
    };
    u64::try_from(millis).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(name: &str, cpu: &str, memory: &str, storage: &str) -> Node {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": name},
            "status": {"allocatable": {"cpu": cpu, "memory": memory, "ephemeral-storage": storage, "pods": "110"}},
        }))
        .unwrap()
    }

    fn pod(
        node: Option<&str>,
        phase: &str,
        containers: &[(&str, &str)],
        init: &[(&str, &str)],
    ) -> Pod {
        let container = |i: usize, (cpu, memory): &(&str, &str)| serde_json::json!({"name": format!("c{i}"), "image": "x", "resources": {"requests": {"cpu": cpu, "memory": memory}}});
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "p"},
            "spec": {
                "nodeName": node,
                "containers": containers.iter().enumerate().map(|(i, c)| container(i, c)).collect::<Vec<_>>(),
                "initContainers": init.iter().enumerate().map(|(i, c)| container(i, c)).collect::<Vec<_>>(),
            },
            "status": {"phase": phase},
        }))
        .unwrap()
    }

    #[test]
    fn quantities_parse_to_thousandths() {
        assert_eq!(parse_quantity_millis("250m"), Some(250));
        assert_eq!(parse_quantity_millis("2"), Some(2000));
        assert_eq!(parse_quantity_millis("1.5"), Some(1500));
        assert_eq!(parse_quantity_millis("1Ki"), Some(1024 * 1000));
        assert_eq!(parse_quantity_millis("2Gi"), Some(2 * (1 << 30) * 1000));
        assert_eq!(parse_quantity_millis("500M"), Some(500_000_000_000));
        assert_eq!(parse_quantity_millis("1e3"), Some(1_000_000));
        assert_eq!(parse_quantity_millis("100n"), Some(1), "rounded up");
        assert_eq!(parse_quantity_millis(".5"), Some(500));
        assert_eq!(parse_quantity_millis("-1"), None);
        assert_eq!(parse_quantity_millis("1Zi"), None);
        assert_eq!(parse_quantity_millis(""), None);
        assert_eq!(parse_quantity_millis("abc"), None);
    }

    #[test]
    fn quantities_that_overflow_are_none_never_a_panic() {
        for text in [
            "1e2147483647",
            "1e2147483645",
            "1E2147483640",
            "99999999999999999999Ei",
            "1e30",
            "18446744073709551616",
            "340282366920938463463374607431768211456",
            "1.00000000000000000000000000000000000000000001",
            "1e-2147483648",
        ] {
            let parsed = std::panic::catch_unwind(|| parse_quantity_millis(text));
            assert!(parsed.is_ok(), "{text} panicked");
        }
        assert_eq!(parse_quantity_millis("1e2147483647"), None);
        assert_eq!(parse_quantity_millis("99999999999999999999Ei"), None);
        assert_eq!(parse_quantity_millis("1e30"), None);
        // Tiny but positive: one thousandth, rounded up; zero stays zero.
        assert_eq!(parse_quantity_millis("1e-2147483648"), Some(1));
        assert_eq!(parse_quantity_millis("0e-2147483648"), Some(0));
        assert_eq!(parse_quantity_millis("1e-50"), Some(1));
    }

    #[test]
    fn available_is_allocatable_minus_requests_per_node() {
        let nodes = [
            node("b", "4", "8Gi", "100Gi"),
            node("a", "2", "4Gi", "50Gi"),
        ];
        let pods = [
            pod(
                Some("a"),
                "Running",
                &[("500m", "1Gi"), ("250m", "512Mi")],
                &[],
            ),
            // Init container larger than the containers: it counts instead.
            pod(Some("b"), "Pending", &[("100m", "100Mi")], &[("1", "1Gi")]),
            // Finished pods and unbound pods hold nothing.
            pod(Some("a"), "Succeeded", &[("1", "1Gi")], &[]),
            pod(None, "Pending", &[("1", "1Gi")], &[]),
            // Overcommitted: the node has nothing left, not less.
            pod(Some("b"), "Running", &[("8", "1Gi")], &[]),
        ];
        let capacity = available(&nodes, &pods);
        let gi = 1u64 << 30;
        assert_eq!(capacity.nodes.len(), 2);
        assert_eq!(capacity.nodes[0].name, "a");
        assert_eq!(
            capacity.nodes[0].available,
            Amounts {
                cpu_millis: 1250,
                memory_bytes: 4 * gi - gi - gi / 2,
                ephemeral_storage_bytes: 50 * gi,
            }
        );
        assert_eq!(capacity.nodes[1].requested.cpu_millis, 9000);
        assert_eq!(capacity.nodes[1].available.cpu_millis, 0);
        assert_eq!(capacity.nodes[1].available.memory_bytes, 6 * gi);
        assert_eq!(capacity.allocatable.cpu_millis, 6000);
        assert_eq!(capacity.available.cpu_millis, 1250);
        assert_eq!(
            capacity.available.memory_bytes,
            4 * gi - gi - gi / 2 + 6 * gi
        );
        assert_eq!(capacity.available.ephemeral_storage_bytes, 150 * gi);
    }

    #[test]
    fn unschedulable_nodes_offer_nothing() {
        let mut cordoned = node("c", "4", "8Gi", "10Gi");
        cordoned.spec = Some(k8s_openapi::api::core::v1::NodeSpec {
            unschedulable: Some(true),
            ..Default::default()
        });
        let capacity = available(&[cordoned], &[]);
        assert!(capacity.nodes.is_empty());
        assert_eq!(capacity.available, Amounts::default());
    }
}
