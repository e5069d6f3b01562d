//go:build tools

// Package tools records the main packages build.sh compiles, so `go mod tidy` keeps their
// dependencies in go.mod/go.sum. It is never built itself.
package tools

import (
	_ "github.com/prometheus/prometheus/cmd/prometheus"
	_ "github.com/prometheus/prometheus/cmd/promtool"
)
