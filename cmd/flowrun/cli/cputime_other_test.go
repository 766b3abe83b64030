//go:build !unix

package cli

import "time"

// cpuTime is not measured here: TestB6Ratio then reports wall time only.
func cpuTime() time.Duration { return 0 }
