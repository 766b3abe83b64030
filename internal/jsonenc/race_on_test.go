//go:build race

package jsonenc_test

// raceEnabled: the race detector makes sync.Pool drop items at random, so
// allocation counts are not checked under it.
const raceEnabled = true
