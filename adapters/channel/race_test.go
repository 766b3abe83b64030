//go:build race

package channel_test

// waitingMessages is how many messages TestWaitingMessagesAllocations
// parks: fewer under the race detector, which makes SQLite many times
// slower; the 10,000 run without it.
const waitingMessages = 100
