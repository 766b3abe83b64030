//go:build !race

package channel_test

// waitingMessages is how many messages TestWaitingMessagesAllocations
// parks.
const waitingMessages = 10000
