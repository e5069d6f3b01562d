//go:build tools

// Package tools records the main packages build.sh compiles, so `go mod tidy` keeps their
// dependencies in go.mod/go.sum. It is never built itself.
package tools

import (
	_ "go.etcd.io/etcd/server/v3"
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
