// Package poll is a channel source that calls a function on an interval
// and hands the messages it returns to the channel: the polling business
// service of the interoperability model, for systems that cannot push (a
// database table of pending rows, a remote API, a mailbox).
//
//	src, err := poll.New("pending orders", 30*time.Second,
//		func(ctx context.Context) ([]*message.Message, error) {
//			rows, err := db.PendingOrders(ctx)
//			// one message per row, with a stable ID (the row's key)
//		},
//		poll.WithSettle(func(ctx context.Context, m *message.Message, r channel.Result) {
//			// mark the row done on Ack, leave it pending otherwise
//		}))
//
// Messages are handed over one at a time, in the order returned, and polls
// never overlap. The source keeps nothing between polls: a message that was
// not acknowledged is offered again when the poll function returns it
// again, which is the natural behaviour of a function that reads what is
// still pending. Give such messages a stable ID (the row's key, say) so the
// channel's store recognizes them.
//
// The source waits with ordinary timers and reads time.Now, so tests can
// drive it with testing/synctest and a fake clock.
package poll
