// Command crm is the CRM and audit service the pypeman example calls:
// GET /customers/NAME answers a customer (acme and globex are known,
// spammer is blocked, down answers 500, any other name 404); POST /audit
// and POST /alert print what the example's hooks report. Run it beside
// flowrun serve to try the example by hand:
//
//	go run ./examples/pypeman/crm            # listens on 127.0.0.1:8081
package main

import (
	"flag"
	"io"
	"log"
	"net/http"
)

var customers = map[string]string{
	"acme":    `{"tier": "gold"}`,
	"globex":  `{"tier": "standard"}`,
	"spammer": `{"tier": "standard", "blocked": true}`,
}

func main() {
	addr := flag.String("listen", "127.0.0.1:8081", "address to listen on")
	flag.Parse()
	http.HandleFunc("GET /customers/{name}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		name := r.PathValue("name")
		switch c, ok := customers[name]; {
		case name == "down":
			w.WriteHeader(http.StatusInternalServerError)
			_, _ = io.WriteString(w, `{"error": "database gone"}`)
		case !ok:
			w.WriteHeader(http.StatusNotFound)
			_, _ = io.WriteString(w, `{"error": "unknown customer"}`)
		default:
			_, _ = io.WriteString(w, c)
		}
	})
	for _, path := range []string{"/audit", "/alert"} {
		http.HandleFunc("POST "+path, func(w http.ResponseWriter, r *http.Request) {
			b, _ := io.ReadAll(r.Body)
			log.Printf("%s %s", path, b)
			w.WriteHeader(http.StatusNoContent)
		})
	}
	log.Printf("crm listening on %s", *addr)
	log.Fatal(http.ListenAndServe(*addr, nil))
}
