//go:build tools

// Package consulbuild only pins github.com/hashicorp/consul so that
// `go build github.com/hashicorp/consul` can build the agent binary from
// the Go module proxy. See ../infra.sh (consul_build).
package consulbuild
