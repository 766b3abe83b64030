// Command hubstub stands in for the IoT hub of the two-process
// microservicebus example (hub.yaml, edge.yaml): it takes the readings
// com forwards and the emails emailhandler sends, prints each once by its
// Idempotency-Key, and answers repeats as the first time.
//
//	go run ./examples/microservicebus/hubstub            # listens on 127.0.0.1:8083
package main

import (
	"flag"
	"io"
	"log"
	"net/http"
	"sync"
)

func main() {
	addr := flag.String("listen", "127.0.0.1:8083", "address to listen on")
	flag.Parse()
	var mu sync.Mutex
	seen := map[string]bool{}
	handle := func(what string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
			key := r.Header.Get("Idempotency-Key")
			if err != nil || key == "" {
				http.Error(w, `{"error": "want a body and an Idempotency-Key"}`, http.StatusBadRequest)
				return
			}
			mu.Lock()
			first := !seen[what+key]
			seen[what+key] = true
			mu.Unlock()
			if first {
				log.Printf("%s %s: %s", what, key, body)
			}
			w.Header().Set("Content-Type", "application/json")
			_, _ = io.WriteString(w, `{"ok": true}`)
		}
	}
	http.HandleFunc("POST /readings", handle("reading"))
	http.HandleFunc("POST /emails", handle("email"))
	log.Printf("hub stub on %s", *addr)
	log.Fatal(http.ListenAndServe(*addr, nil))
}
