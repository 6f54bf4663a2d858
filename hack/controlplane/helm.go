package main

import (
	"errors"
	"fmt"
	"os"

	helmcmd "helm.sh/helm/v4/pkg/cmd"
	"helm.sh/helm/v4/pkg/kube"
)

// runHelm is the helm CLI (helm.sh/helm/v4/pkg/cmd), for `helm lint` and
// `helm template` of deploy/helm in the tests: Debian packages no helm.
func runHelm(args []string) int {
	// The field manager helm's own binary uses.
	kube.ManagedFieldsManager = "helm"
	command, err := helmcmd.NewRootCmd(os.Stdout, args[1:], helmcmd.SetupLogging)
	if err != nil {
		fmt.Fprintf(os.Stderr, "helm: %v\n", err)
		return 1
	}
	if err := command.Execute(); err != nil {
		var commandErr helmcmd.CommandError
		if errors.As(err, &commandErr) {
			return commandErr.ExitCode
		}
		return 1
	}
	return 0
}
