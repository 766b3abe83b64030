package errors

// This file is the only one that imports the backoff library, so moving to
// another major version (or another library) is a one-file change.

import (
	"time"

	"github.com/cenkalti/backoff/v4"
)

// intervals yields the successive waits between attempts of one Policy.Do
// call. It is stateful and not safe for concurrent use.
type intervals struct {
	b *backoff.ExponentialBackOff
}

// newIntervals builds a fresh exponential schedule for a Policy whose
// defaults have already been filled in.
func newIntervals(p Policy) intervals {
	b := &backoff.ExponentialBackOff{
		InitialInterval:     p.Initial,
		RandomizationFactor: p.Jitter, // library default is 0.5: always set it
		Multiplier:          p.Multiplier,
		MaxInterval:         p.MaxInterval,
		// The library default (15 min) silently ends retries. Policy.Do
		// enforces MaxElapsed itself, measured from the first attempt
		// rather than from this (lazily created) schedule, so never stop here.
		MaxElapsedTime: 0,
		Stop:           backoff.Stop,
		Clock:          backoff.SystemClock,
	}
	// Attempts are counted by Policy.Do, so no backoff.WithMaxRetries
	// (whose n means n+1 attempts).
	b.Reset() // required before first use
	return intervals{b: b}
}

// next returns the next wait, or false when the schedule has ended.
func (it intervals) next() (time.Duration, bool) {
	d := it.b.NextBackOff()
	if d == backoff.Stop {
		return 0, false
	}
	return d, true
}
