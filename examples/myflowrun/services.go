package main

import (
	"context"
	_ "embed"
	"math"
	"strings"

	"github.com/svcflow/svcflow/cmd/flowrun/cli"
	"github.com/svcflow/svcflow/errors"
	"github.com/svcflow/svcflow/flow"
)

// shippingYAML is the example flow, embedded: myflowrun run --example shipping.
//
//go:embed shipping.yaml
var shippingYAML []byte

// Options are the services and example this flowrun adds.
func Options() []cli.Option {
	return []cli.Option{
		cli.WithService(Geocode, "look up a city's country and distance from the warehouse"),
		cli.WithService(Quote, "price a parcel by weight and distance"),
		cli.WithExample("shipping", shippingYAML),
	}
}

type place struct {
	country string
	km      float64
}

var places = map[string]place{
	"paris":  {"FR", 0},
	"lyon":   {"FR", 465},
	"berlin": {"DE", 1050},
	"madrid": {"ES", 1270},
}

// GeocodeOut is what Geocode provides.
type GeocodeOut struct {
	Country    string
	DistanceKM float64 `flow:"distance_km"`
}

// Geocode is a typed service: it needs "city" (a string) and provides
// "country" and "distance_km".
var Geocode = flow.Func("geocode", func(_ context.Context, in struct{ City string }) (GeocodeOut, error) {
	p, ok := places[strings.ToLower(in.City)]
	if !ok {
		return GeocodeOut{}, errors.Stopf("unknown city %q", in.City)
	}
	return GeocodeOut{Country: p.country, DistanceKM: p.km}, nil
})

// QuoteIn is what Quote needs: a weight in kg (a float) and a distance.
type QuoteIn struct {
	WeightKG   float64 `flow:"weight_kg"`
	DistanceKM float64 `flow:"distance_km"`
}

// Quote prices a parcel: a base fee, per kg, per 100 km.
var Quote = flow.Func("quote", func(_ context.Context, in QuoteIn) (struct{ Price float64 }, error) {
	if in.WeightKG <= 0 {
		return struct{ Price float64 }{}, errors.Stop("weight must be positive")
	}
	p := 4.9 + 1.2*in.WeightKG + 0.8*math.Ceil(in.DistanceKM/100)
	return struct{ Price float64 }{math.Round(p*100) / 100}, nil
})
