package main

import (
	"context"
	"fmt"
	"os"
	_ "time/tzdata" // CronJob time zone support, as in the upstream binaries

	"go.etcd.io/etcd/server/v3/etcdmain"
	"k8s.io/component-base/cli"
	"k8s.io/component-base/logs"
	_ "k8s.io/component-base/logs/json/register"          // JSON log format, as upstream
	_ "k8s.io/component-base/metrics/prometheus/clientgo" // client-go metrics, as upstream
	_ "k8s.io/component-base/metrics/prometheus/version"  // version metric, as upstream
	"k8s.io/component-base/version"
	kubectlcmd "k8s.io/kubectl/pkg/cmd"
	kubectlutil "k8s.io/kubectl/pkg/cmd/util"
	apiserverapp "k8s.io/kubernetes/cmd/kube-apiserver/app"
	kcmapp "k8s.io/kubernetes/cmd/kube-controller-manager/app"
	proxyapp "k8s.io/kubernetes/cmd/kube-proxy/app"
	schedulerapp "k8s.io/kubernetes/cmd/kube-scheduler/app"
	kubeletapp "k8s.io/kubernetes/cmd/kubelet/app"

	etcdversion "go.etcd.io/etcd/api/v3/version"
)

// Each function below is the body of the corresponding upstream main() package;
// args[0] is the component name, args[1:] its flags (os.Args has been set likewise).

func runEtcd(args []string) int {
	etcdmain.Main(args) // exits the process itself on fatal errors
	return 0
}

func runKubeAPIServer(args []string) int {
	command := apiserverapp.NewAPIServerCommand()
	command.SetArgs(args[1:])
	return cli.Run(command)
}

func runKubeControllerManager(args []string) int {
	command := kcmapp.NewControllerManagerCommand()
	command.SetArgs(args[1:])
	return cli.Run(command)
}

// The node's components (see node.go): the same command constructors as the
// upstream kubelet, kube-scheduler and kube-proxy main packages.

func runKubelet(args []string) int {
	command := kubeletapp.NewKubeletCommand(context.Background())
	command.SetArgs(args[1:])
	return cli.Run(command)
}

func runKubeScheduler(args []string) int {
	command := schedulerapp.NewSchedulerCommand()
	command.SetArgs(args[1:])
	return cli.Run(command)
}

func runKubeProxy(args []string) int {
	command := proxyapp.NewProxyCommand()
	command.SetArgs(args[1:])
	return cli.Run(command)
}

func runKubectl(args []string) int {
	// Same as k8s.io/kubernetes/cmd/kubectl: set the verbosity before building the command.
	logs.GlogSetter(kubectlcmd.GetLogVerbosity(args)) //nolint:errcheck
	command := kubectlcmd.NewDefaultKubectlCommand()
	command.SetArgs(args[1:])
	if err := cli.RunNoErrOutput(command); err != nil {
		kubectlutil.CheckErr(err) // prints and exits
		return 1
	}
	return 0
}

func runVersion(args []string) int {
	v := version.Get()
	fmt.Printf("kubernetes: %s (%s)\netcd: %s\ngo: %s %s\n", v.GitVersion, v.GitTreeState, etcdversion.Version, v.GoVersion, v.Platform)
	if len(args) > 1 {
		fmt.Fprintln(os.Stderr, "version: no arguments expected")
		return 2
	}
	return 0
}
