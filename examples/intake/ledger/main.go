// Command ledger is the booking service the intake example calls: it
// books each order once, by its idempotency key, and answers repeats with
// the first booking. Run it beside flowrun serve to try the example by hand:
//
//	go run ./examples/intake/ledger            # listens on 127.0.0.1:8082
package main

import (
	"encoding/json"
	"flag"
	"log"
	"net/http"
	"sync"
)

func main() {
	addr := flag.String("listen", "127.0.0.1:8082", "address to listen on")
	flag.Parse()
	var mu sync.Mutex
	booked := map[string]float64{}
	http.HandleFunc("POST /bookings", func(w http.ResponseWriter, r *http.Request) {
		var b struct {
			ID    string  `json:"id"`
			Total float64 `json:"total"`
		}
		if err := json.NewDecoder(r.Body).Decode(&b); err != nil || b.ID == "" {
			http.Error(w, `{"error": "want {\"id\": ..., \"total\": ...}"}`, http.StatusBadRequest)
			return
		}
		mu.Lock()
		total, again := booked[b.ID]
		if !again {
			booked[b.ID], total = b.Total, b.Total
			log.Printf("booked %s: %.2f", b.ID, b.Total)
		}
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"booked": b.ID, "total": total, "repeat": again})
	})
	log.Printf("ledger listening on %s", *addr)
	log.Fatal(http.ListenAndServe(*addr, nil))
}
