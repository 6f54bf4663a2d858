#!/usr/bin/env bash
# Checks (and, as root with apt-get, installs) what the local node needs
# from Debian: iproute2 (network namespace), containerd and runc, the CNI
# plugins, iptables and conntrack (kube-proxy), mmdebstrap (the PostgreSQL
# images). Exits non-zero, saying exactly what is missing, when it cannot.
set -euo pipefail
if [[ $(id -u) != 0 ]]; then
  echo "node: needs root (network namespaces, mounts, cgroups)" >&2
  exit 1
fi
packages=()
command -v ip >/dev/null || packages+=(iproute2)
command -v containerd >/dev/null || packages+=(containerd)
command -v runc >/dev/null || packages+=(runc)
[[ -x /usr/lib/cni/bridge && -x /usr/lib/cni/host-local && -x /usr/lib/cni/portmap ]] || packages+=(containernetworking-plugins)
command -v iptables >/dev/null || packages+=(iptables)
command -v conntrack >/dev/null || packages+=(conntrack)
command -v mmdebstrap >/dev/null || packages+=(mmdebstrap)
if ((${#packages[@]})); then
  if ! command -v apt-get >/dev/null; then
    echo "node: missing ${packages[*]} (Debian packages) and no apt-get to install them" >&2
    exit 1
  fi
  echo "node: installing ${packages[*]}" >&2
  DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${packages[@]}" >/dev/null
fi
for cgroup in /sys/fs/cgroup/memory /sys/fs/cgroup/pids /sys/fs/cgroup/cgroup.procs; do
  [[ -e "$cgroup" ]] && exit 0
done
echo "node: no usable cgroup hierarchy under /sys/fs/cgroup" >&2
exit 1
