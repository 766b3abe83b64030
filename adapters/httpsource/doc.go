// Package httpsource serves HTTP requests as channel messages: one
// [Server] listens on one address and has many routes, and each route is a
// [channel.Source] of its own, so several channels share a port.
//
//	srv := httpsource.NewServer(httpsource.Config{Addr: ":8080"})
//	orders, err := srv.Route("POST", "/orders")
//	// give orders to a channel, whose Start calls orders.Run(ctx, handler)
//	err = srv.Serve(ctx) // until ctx is done, then a graceful shutdown
//
// # Requests
//
// A request becomes a message whose payload is the body (at most
// Config.MaxBodyBytes, else 413) and whose content type is the request's
// (application/octet-stream for a body without one). A JSON content type
// requires the body to be one JSON object; anything else is refused with
// 400 and a message saying what is wrong ("body: invalid JSON at offset 7:
// ..."). The message's meta holds:
//
//	http.method          POST
//	http.path            /orders
//	http.remote          the client's address
//	http.query.<name>    each query parameter (repeated values joined by ",")
//	http.header.<name>   the headers in Config.Headers and WithHeaders,
//	                     names in lower case (repeated values joined by ", ")
//
// The message ID is the Idempotency-Key request header when there is one
// (1 to 200 printable ASCII characters, else 400), so a client that
// retries sends the same message again; otherwise it is a new UUID. Every
// answer to a routed request carries it in the X-Message-Id header.
//
// Keys follow the IETF draft "The Idempotency-Key HTTP Header Field": a
// key names one request. A keyed message also carries, as meta
// request_hash ([message.MetaRequestHash]), "sha256:" and the hex SHA-256
// of the request's method, path, query, content type and body; the store
// keeps it with the message, so it holds across restarts. The same key
// with the same request is answered from the channel's store; with a
// different request it is refused with 422 {"error": "Idempotency-Key:
// reused with a different request ...", "id": ...}, runs nothing and does
// not show the first answer ([channel.ErrIDReused]). While a request with
// a key is being answered, another with the same key on the same route
// gets 409 {"error": "Idempotency-Key: a request with this key is still
// being processed"} with Retry-After: 1.
//
// The handler gets the request's context: a client that goes away cancels
// the run.
//
// # Responses
//
// Every body is JSON (unless a Response template says otherwise). The
// handler's [channel.Result] decides the status:
//
//	Ack, done          200, the run's output context without meta as the body
//	Ack, dropped       204, no body (a Drop: consumed silently)
//	Ack, rejected      422 {"error": <stop reason>, "id": ...}
//	Ack, waiting       202 {"id": ..., "state": "waiting"} (a durable channel's run parked at a wait step)
//	Nack               503 {"error": "temporarily unavailable", "id": ...},
//	                   Retry-After in whole seconds (rounded up, at least 1)
//	Fail               500 {"error": "internal error", "error_id": ..., "id": ...}
//	Leave              503 {"error": "not processed, retry", "id": ...}
//
// A 500 never shows the error's text or a stack: clients quote the
// error_id, which the logs carry. A handler that panics is answered like
// Fail, with the panic logged under a new error id.
//
// The message's meta (the client's address, headers, the message ID) is
// never echoed by default. [WithResponse] (`response:` in YAML) shapes the
// answer of a done message: only some keys, meta included on request, or
// a template; and the status code of each outcome (ok, stop, drop,
// error, retry). See [Response].
//
// Other answers: 503 {"error": "not ready"} with Retry-After: 1 while the
// route's source is not running (before its channel starts, and during a
// graceful stop), 404 for an unknown path, 405 with an Allow header for a known
// path and another method, 408 when the body is not received in time.
// HealthPath (/healthz) always answers 200 {"status": "ok"}; ReadyPath
// (/readyz) answers 200 when every route's source is running and 503
// listing those that are not otherwise.
//
// A few answers come from net/http itself, before the server sees the
// request, and are not JSON: 417 with no body for an Expect header other
// than 100-continue, and the text answers to requests it cannot parse
// (400, 431 for headers beyond http.DefaultMaxHeaderBytes, 505).
//
// # Timeouts and shutdown
//
// The server bounds reading headers, reading the whole request, writing the
// response (which includes running the flow) and idle keep-alive
// connections; see [Config]. A client that sends its headers and then
// stalls its body has its connection closed when ReadTimeout passes, and the
// handler is never called. When Serve's context is done the server stops
// accepting connections and waits, up to Config.ShutdownTimeout, for the
// requests in flight to be answered.
package httpsource
