//go:build unix

package nats_test

import (
	"syscall"
	"time"
)

// cpuTime is the user and system CPU time the process has used, the
// embedded server's included. On a loaded machine it tells costs apart
// better than wall time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
