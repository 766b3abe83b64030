// Command purchase serves the fulfillment saga example: POST /purchases.
//
//	go run ./examples/fulfillment-saga/cmd/purchase -vendor demo -data /tmp/purchase
package main

import (
	"context"
	"flag"
	"fmt"
	"net/http/httptest"
	"os"
	"os/signal"
	"syscall"

	fulfillment "github.com/svcflow/svcflow/examples/fulfillment-saga"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:8080", "the HTTP source's address")
	data := flag.String("data", "data", "the folder of purchases.db and cache.db")
	vendor := flag.String("vendor", "", `the vendor API's URL, or "demo" for one in memory`)
	flag.Parse()
	if *vendor == "demo" {
		demo := httptest.NewServer(fulfillment.NewVendorAPI(10))
		defer demo.Close()
		*vendor = demo.URL
	}
	app, err := fulfillment.New(fulfillment.Options{Addr: *listen, DataDir: *data, VendorURL: *vendor})
	if err != nil {
		fmt.Fprintln(os.Stderr, "purchase:", err)
		os.Exit(1)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	fmt.Fprintln(os.Stderr, "purchase: serving POST http://"+app.Addr()+"/purchases")
	if err := app.Run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "purchase:", err)
		os.Exit(1)
	}
}
