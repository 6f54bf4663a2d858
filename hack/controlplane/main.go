// Command controlplane is a multi-call (busybox style) binary that embeds a real
// Kubernetes control plane built from the official Go modules:
//
//	controlplane etcd ...                     the etcd server (go.etcd.io/etcd/server/v3/etcdmain)
//	controlplane kube-apiserver ...           k8s.io/kubernetes/cmd/kube-apiserver
//	controlplane kube-controller-manager ...  k8s.io/kubernetes/cmd/kube-controller-manager
//	controlplane kubelet ...                  k8s.io/kubernetes/cmd/kubelet (the node, see node.go)
//	controlplane kube-scheduler ...           k8s.io/kubernetes/cmd/kube-scheduler
//	controlplane kube-proxy ...               k8s.io/kubernetes/cmd/kube-proxy
//	controlplane kubectl ...                  k8s.io/kubectl
//	controlplane helm ...                     helm.sh/helm/v4 (lint, template, install, ...)
//	controlplane up --data-dir DIR ...        orchestrator: PKI, etcd, apiserver, KCM, CRDs
//	controlplane install-crds ...             server-side apply CRDs into any cluster
//
// The subcommand may also be selected through the program name (argv[0]), so a
// symlink named "kubectl" pointing at the binary behaves like kubectl.
package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

const usage = `usage: controlplane <command> [flags]

commands:
  up --data-dir DIR [--crds PATH]... [--exit-on-stdin-close] [--cleanup]
                            start etcd + kube-apiserver + kube-controller-manager,
                            install CRDs, write DIR/kubeconfig, print the READY line
  install-crds --kubeconfig FILE --crds PATH...
                            server-side apply every CRD under PATH and wait until Established
  etcd [flags]              run etcd (same flags as the etcd binary)
  kube-apiserver [flags]    run kube-apiserver (same flags as upstream)
  kube-controller-manager [flags]
                            run kube-controller-manager (same flags as upstream)
  kubelet, kube-scheduler, kube-proxy [flags]
                            run the node's components (same flags as upstream)
  kubectl [args]            run kubectl
  helm [args]               run helm (helm.sh/helm/v4)
  version                   print the embedded component versions

Run "controlplane up --help" or "controlplane install-crds --help" for details.
`

type subcommand func(args []string) int

var subcommands = map[string]subcommand{
	"etcd":                    runEtcd,
	"kube-apiserver":          runKubeAPIServer,
	"kube-controller-manager": runKubeControllerManager,
	"kubelet":                 runKubelet,
	"kube-scheduler":          runKubeScheduler,
	"kube-proxy":              runKubeProxy,
	"kubectl":                 runKubectl,
	"helm":                    runHelm,
	"up":                      runUp,
	"install-crds":            runInstallCRDs,
	"version":                 runVersion,
}

func main() {
	// busybox style: dispatch on the program name first (symlink "kubectl" -> controlplane).
	if cmd, ok := subcommands[strings.TrimSuffix(filepath.Base(os.Args[0]), ".exe")]; ok {
		os.Exit(cmd(os.Args))
	}
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	name := os.Args[1]
	switch name {
	case "-h", "--help", "help":
		fmt.Fprint(os.Stdout, usage)
		os.Exit(0)
	}
	cmd, ok := subcommands[name]
	if !ok {
		fmt.Fprintf(os.Stderr, "controlplane: unknown command %q\n\n%s", name, usage)
		os.Exit(2)
	}
	// Make the embedded upstream main() functions see the argv they expect:
	// os.Args[0] = "<subcommand>", followed by its flags. Several of them (cobra,
	// kubectl plugin handling, etcd) read os.Args directly.
	os.Args = os.Args[1:]
	os.Exit(cmd(os.Args))
}
