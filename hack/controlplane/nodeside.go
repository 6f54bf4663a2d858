package main

// The node side of `up --node` (see node.go): inside the network namespace,
// after the control plane is up, start containerd, import the images, then
// kubelet, kube-scheduler, kube-proxy, CoreDNS and the volume provisioner,
// and wait until the node is Ready and schedulable.

import (
	"context"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

type nodePaths struct {
	dir                                   string
	containerdRoot, containerdState, sock string
	containerdConfig                      string
	cniConfDir, cniIPAMDir                string
	kubeletDir, kubeletConfig             string
	podLogs, volumes, pluginDir           string
	kubeProxyConfig, corefile, resolvConf string
}

func newNodePaths(dataDir string) nodePaths {
	d := filepath.Join(dataDir, "node")
	return nodePaths{
		dir:              d,
		containerdRoot:   filepath.Join(d, "containerd", "root"),
		containerdState:  filepath.Join(d, "containerd", "state"),
		sock:             filepath.Join(d, "containerd", "containerd.sock"),
		containerdConfig: filepath.Join(d, "containerd.toml"),
		cniConfDir:       filepath.Join(d, "cni", "net.d"),
		cniIPAMDir:       filepath.Join(d, "cni", "ipam"),
		kubeletDir:       filepath.Join(d, "kubelet"),
		kubeletConfig:    filepath.Join(d, "kubelet.yaml"),
		podLogs:          filepath.Join(d, "pod-logs"),
		volumes:          filepath.Join(d, "volumes"),
		pluginDir:        filepath.Join(d, "volume-plugins"),
		kubeProxyConfig:  filepath.Join(d, "kube-proxy.yaml"),
		corefile:         filepath.Join(d, "Corefile"),
		resolvConf:       filepath.Join(d, "resolv.conf"),
	}
}

// startNode runs on the node side once the API server and the controller
// manager are up. ctx bounds the startup; runCtx, the control plane's life.
func (cp *controlPlane) startNode(ctx, runCtx context.Context, p *pki, server string, restCfg *rest.Config) error {
	o := cp.opts
	np := newNodePaths(cp.dir)
	for _, d := range []string{np.containerdRoot, np.containerdState, np.cniConfDir, np.cniIPAMDir,
		np.kubeletDir, np.podLogs, np.volumes, np.pluginDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	cgroupRoot := cgroupRootOf(o.inNetns)
	if err := createCgroupRoot(cgroupRoot); err != nil {
		return fmt.Errorf("cgroup root %s: %w", cgroupRoot, err)
	}

	// Client certificates of the node's components, and their kubeconfigs.
	kubeconfigs := map[string]string{}
	for _, c := range []struct{ name, cn, org string }{
		{"kubelet", "system:node:" + nodeName, "system:nodes"},
		{"kube-scheduler", "system:kube-scheduler", ""},
		{"kube-proxy", "system:kube-proxy", ""},
	} {
		certPath := filepath.Join(p.Dir, c.name+".crt")
		keyPath := filepath.Join(p.Dir, c.name+".key")
		if _, err := os.Stat(keyPath); err != nil {
			subject := pkix.Name{CommonName: c.cn}
			if c.org != "" {
				subject.Organization = []string{c.org}
			}
			if err := issueFromCA(p, certPath, keyPath, &x509.Certificate{
				Subject: subject, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
			}); err != nil {
				return fmt.Errorf("%s certificate: %w", c.name, err)
			}
		}
		kc := filepath.Join(np.dir, c.name+".kubeconfig")
		if err := writeKubeconfig(kc, server, p.CACert, certPath, keyPath, c.cn); err != nil {
			return err
		}
		kubeconfigs[c.name] = kc
	}
	// CoreDNS reads Services, EndpointSlices and Namespaces; the admin identity
	// is enough for a local node.
	adminKubeconfig := filepath.Join(np.dir, "admin.kubeconfig")
	if err := writeKubeconfig(adminKubeconfig, server, p.CACert, p.AdminCert, p.AdminKey, "dbaas-admin"); err != nil {
		return err
	}

	if err := writeNodeConfigs(np, p, kubeconfigs, cgroupRoot, o.coredns != ""); err != nil {
		return err
	}

	// containerd, then the images (no registry can be reached: every image the
	// node runs is imported here).
	t := time.Now()
	if err := cp.start("containerd", []string{"containerd"}, "--config", np.containerdConfig); err != nil {
		return err
	}
	if err := cp.waitContainerd(ctx, np.sock); err != nil {
		return err
	}
	logf("containerd ready (%.2fs)", time.Since(t).Seconds())
	for _, archive := range o.images {
		t := time.Now()
		out, err := exec.CommandContext(ctx, "ctr", "--address", np.sock, "-n", "k8s.io",
			"images", "import", "--no-unpack=false", archive).CombinedOutput()
		if err != nil {
			return fmt.Errorf("importing %s: %v: %s", archive, err, strings.TrimSpace(string(out)))
		}
		logf("imported %s (%.2fs)", filepath.Base(archive), time.Since(t).Seconds())
	}

	self, err := os.Executable()
	if err != nil {
		return err
	}
	if err := cp.start("kubelet", []string{self, "kubelet"},
		"--config="+np.kubeletConfig,
		"--kubeconfig="+kubeconfigs["kubelet"],
		"--root-dir="+np.kubeletDir,
		"--cert-dir="+filepath.Join(np.kubeletDir, "pki"),
		"--hostname-override="+nodeName,
		"--node-ip="+nodeIP,
		"--volume-plugin-dir="+np.pluginDir,
	); err != nil {
		return err
	}
	ports, err := freePorts(1)
	if err != nil {
		return err
	}
	if err := cp.start("kube-scheduler", []string{self, "kube-scheduler"},
		"--kubeconfig="+kubeconfigs["kube-scheduler"],
		"--authentication-kubeconfig="+kubeconfigs["kube-scheduler"],
		"--authorization-kubeconfig="+kubeconfigs["kube-scheduler"],
		"--bind-address=127.0.0.1",
		"--secure-port="+strconv.Itoa(ports[0]),
		"--leader-elect=false",
	); err != nil {
		return err
	}
	if err := cp.start("kube-proxy", []string{self, "kube-proxy"}, "--config="+np.kubeProxyConfig); err != nil {
		return err
	}
	if o.coredns != "" {
		if err := cp.start("coredns", []string{o.coredns}, "-conf", np.corefile); err != nil {
			return err
		}
	}

	cs, err := kubernetes.NewForConfig(restCfg)
	if err != nil {
		return err
	}
	go runProvisioner(runCtx, cs, np.volumes)
	if err := ensureStorageClass(ctx, cs); err != nil {
		return err
	}
	if err := cp.waitNodeReady(ctx, cs); err != nil {
		return err
	}
	if o.coredns != "" {
		client := &http.Client{Timeout: 2 * time.Second}
		if err := cp.waitHTTP(ctx, "coredns", client, "http://127.0.0.1:18181/ready"); err != nil {
			return err
		}
	}
	return nil
}

func (cp *controlPlane) waitContainerd(ctx context.Context, sock string) error {
	for {
		if conn, err := net.DialTimeout("unix", sock, time.Second); err == nil {
			conn.Close()
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for containerd at %s: %w", sock, context.Cause(ctx))
		case <-cp.dead:
			return fmt.Errorf("%s exited", cp.exited().name)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// waitNodeReady waits until the node is Ready and carries no NoSchedule taint
// (kubelet registers with node.kubernetes.io/not-ready; the node-lifecycle
// controller removes it once the node reports Ready).
func (cp *controlPlane) waitNodeReady(ctx context.Context, cs kubernetes.Interface) error {
	t := time.Now()
	last := "not registered"
	for {
		node, err := cs.CoreV1().Nodes().Get(ctx, nodeName, metav1.GetOptions{})
		if err == nil {
			last = nodeState(node)
			if last == "" {
				logf("node %s Ready and schedulable (%.2fs)", nodeName, time.Since(t).Seconds())
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for node %s (%s): %w", nodeName, last, context.Cause(ctx))
		case <-cp.dead:
			return fmt.Errorf("%s exited", cp.exited().name)
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// nodeState is "" for a Ready, schedulable node, else what is missing.
func nodeState(node *corev1.Node) string {
	ready := false
	reason := "no Ready condition"
	for _, c := range node.Status.Conditions {
		if c.Type == corev1.NodeReady {
			ready = c.Status == corev1.ConditionTrue
			reason = c.Reason + ": " + c.Message
		}
	}
	if !ready {
		return "not Ready: " + reason
	}
	for _, taint := range node.Spec.Taints {
		if taint.Effect == corev1.TaintEffectNoSchedule || taint.Effect == corev1.TaintEffectNoExecute {
			return "tainted " + taint.Key
		}
	}
	return ""
}

func ensureStorageClass(ctx context.Context, cs kubernetes.Interface) error {
	deletePolicy := corev1.PersistentVolumeReclaimDelete
	binding := storagev1.VolumeBindingImmediate
	sc := &storagev1.StorageClass{
		ObjectMeta: metav1.ObjectMeta{
			Name:        storageClassName,
			Annotations: map[string]string{"storageclass.kubernetes.io/is-default-class": "true"},
		},
		Provisioner:       provisionerName,
		ReclaimPolicy:     &deletePolicy,
		VolumeBindingMode: &binding,
	}
	_, err := cs.StorageV1().StorageClasses().Create(ctx, sc, metav1.CreateOptions{FieldManager: "controlplane"})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("StorageClass %s: %w", storageClassName, err)
	}
	return nil
}

func writeNodeConfigs(np nodePaths, p *pki, kubeconfigs map[string]string, cgroupRoot string, dns bool) error {
	files := map[string]string{}
	files[np.containerdConfig] = fmt.Sprintf(`version = 2
root = %[1]q
state = %[2]q
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper"]

[grpc]
  address = %[3]q

[ttrpc]
  address = %[4]q

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "localhost/dbaas/pause:3.10"
  # We are root without CAP_SYS_RESOURCE: runc cannot lower oom_score_adj.
  restrict_oom_score_adj = true
  enable_selinux = false
  netns_mounts_under_state_dir = true
  max_container_log_line_size = 16384
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = %[5]q
    conf_dir = %[6]q
  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = ""
`, np.containerdRoot, np.containerdState, np.sock, np.sock+".ttrpc", cniBinDir, np.cniConfDir)

	files[filepath.Join(np.cniConfDir, "10-dbaas.conflist")] = fmt.Sprintf(`{
  "cniVersion": "1.0.0",
  "name": "dbaas",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "cni0",
      "isGateway": true,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "ranges": [[{"subnet": %q}]],
        "routes": [{"dst": "0.0.0.0/0"}],
        "dataDir": %q
      }
    },
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
`, podCIDR, np.cniIPAMDir)

	clusterDNS := ""
	if dns {
		clusterDNS = "clusterDNS: [\"" + nodeIP + "\"]\n"
	}
	files[np.kubeletConfig] = fmt.Sprintf(`apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: %[1]s
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: %[2]q}
authorization: {mode: Webhook}
containerRuntimeEndpoint: unix://%[3]s
cgroupDriver: cgroupfs
cgroupRoot: %[4]s
# The machine's cgroups are v1 (hybrid): allowed, with this switch.
failCgroupV1: false
failSwapOn: false
%[5]sclusterDomain: cluster.local
resolvConf: %[6]q
podLogsDir: %[7]q
# Every image was imported by hand and cannot be pulled again: never collect them.
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: {"memory.available": "100Mi", "nodefs.available": "1%%", "imagefs.available": "1%%", "nodefs.inodesFree": "1%%"}
enableControllerAttachDetach: false
serializeImagePulls: false
protectKernelDefaults: false
makeIPTablesUtilChains: true
maxPods: 110
nodeStatusReportFrequency: 10s
# Secret volumes follow their Secrets sooner (CloudNativePG waits for its
# webhook certificate to appear in its pod).
syncFrequency: 10s
`, nodeIP, p.CACert, np.sock, cgroupRoot, clusterDNS, np.resolvConf, np.podLogs)

	// Pods with dnsPolicy Default get this file: CoreDNS, when it runs.
	resolv := "options ndots:1\n"
	if dns {
		resolv = "nameserver " + nodeIP + "\n"
	}
	files[np.resolvConf] = resolv

	files[np.kubeProxyConfig] = fmt.Sprintf(`apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection:
  kubeconfig: %[1]q
mode: iptables
clusterCIDR: %[2]s
hostnameOverride: %[3]s
bindAddress: %[4]s
metricsBindAddress: 127.0.0.1:10249
healthzBindAddress: 127.0.0.1:10256
# Conntrack sysctls are not namespaced: leave them alone.
conntrack:
  maxPerCore: 0
  tcpEstablishedTimeout: 0s
  tcpCloseWaitTimeout: 0s
`, kubeconfigs["kube-proxy"], podCIDR, nodeName, nodeIP)

	files[np.corefile] = fmt.Sprintf(`.:53 {
    bind %[1]s
    errors
    health 127.0.0.1:18080
    ready 127.0.0.1:18181
    kubernetes cluster.local in-addr.arpa ip6.arpa {
        kubeconfig %[2]s dbaas-local
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
    }
    cache 5
    loadbalance
}
`, nodeIP, filepath.Join(np.dir, "admin.kubeconfig"))

	for path, content := range files {
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			return err
		}
	}
	return nil
}
