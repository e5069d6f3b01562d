//go:build tools

// Package tools records the main package build.sh compiles, so `go mod tidy` keeps its
// dependencies in go.mod/go.sum. It is never built itself.
package tools

import (
	_ "helm.sh/helm/v4/cmd/helm"
)
