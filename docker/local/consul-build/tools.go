//go:build tools

// Package consulbuild pins the Consul agent so that infra.sh can build it from
// the Go module proxy:
//
//	GOWORK=off go build -o ../../../bin/consul github.com/hashicorp/consul
//
// (the usual tools.go pattern: the build tag keeps this file out of every
// build, while `go mod tidy` keeps the requirement and its go.sum lines).
package consulbuild

import _ "github.com/hashicorp/consul"
