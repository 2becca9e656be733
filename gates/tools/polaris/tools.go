//go:build tools

// Package tools pins Polaris and its dependencies: its checksum is not in the public checksum database, so
// this module's go.sum is what verifies the download. gates/run.py builds it with -mod=readonly.
package tools

import _ "github.com/fairwindsops/polaris"
