//go:build tools

// Package tools records what build.sh compiles (controller-gen) and the API package it reads,
// so `go mod tidy` keeps both in go.mod/go.sum. It is never built itself.
package tools

import (
	_ "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	_ "sigs.k8s.io/controller-tools/cmd/controller-gen"
)
