//go:build tools

// Package tools pins the mariadb-operator module, whose controller command
// build.sh builds (`go build github.com/mariadb-operator/mariadb-operator/v25/cmd/controller`:
// one binary holding the operator and the `webhook`, `cert-controller`,
// `backup`, `init` and `agent` subcommands). The blank import keeps
// `go mod tidy` from dropping the requirement and makes go.sum record every
// module that command needs.
package tools

import _ "github.com/mariadb-operator/mariadb-operator/v25/cmd/controller"
