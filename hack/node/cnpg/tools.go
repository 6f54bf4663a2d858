//go:build tools

// Package tools pins the CloudNativePG operator module, whose manager command
// build.sh builds (`go build github.com/cloudnative-pg/cloudnative-pg/cmd/manager`).
// The blank import keeps `go mod tidy` from dropping the requirement and makes
// go.sum record every module the manager needs.
package tools

import _ "github.com/cloudnative-pg/cloudnative-pg/cmd/manager"
