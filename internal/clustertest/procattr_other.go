//go:build !linux

package clustertest

import "os/exec"

// dieWithParent is a no-op where the kernel cannot tie a child's life to
// its parent's; t.Cleanup still kills children on a normal exit.
func dieWithParent(*exec.Cmd) {}
