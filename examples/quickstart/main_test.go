package main

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	fc "github.com/svcflow/svcflow/context"
	"github.com/svcflow/svcflow/errors"
)

// Services are tested alone, table-driven: input context in, expected
// writes or control error out.
func TestValidate(t *testing.T) {
	tests := []struct {
		name  string
		items []Item
		stop  string
	}{
		{"ok", []Item{{SKU: "a", Price: 1, Qty: 1}}, ""},
		{"empty", nil, "stop: no items"},
		{"zero quantity", []Item{{SKU: "a", Qty: 0}}, "stop: item 1 (a): quantity must be positive, got 0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := fc.New()
			Items.Set(c, tt.items)
			err := Validate.Call(context.Background(), c)
			if tt.stop == "" {
				require.NoError(t, err)
				return
			}
			assert.True(t, errors.IsStop(err))
			assert.EqualError(t, err, tt.stop)
		})
	}
}

func TestOrderFlow(t *testing.T) {
	f, err := Order()
	require.NoError(t, err)
	tests := []struct {
		name  string
		input string
		total float64
		stop  bool
	}{
		{"gold gets 20%", `{"tier": "gold", "items": [{"sku": "a", "price": 10, "qty": 2}]}`, 16, false},
		{"silver gets 10%", `{"tier": "silver", "items": [{"sku": "a", "price": 10, "qty": 2}]}`, 18, false},
		{"others pay full", `{"tier": "new", "items": [{"sku": "a", "price": 10, "qty": 2}]}`, 20, false},
		{"empty order stops", `{"tier": "gold", "items": []}`, 0, true},
		{"missing tier stops before any step", `{"items": [{"sku": "a", "price": 10, "qty": 2}]}`, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := fc.FromJSON([]byte(tt.input))
			require.NoError(t, err)
			err = f.RunContext(context.Background(), c)
			if tt.stop {
				assert.True(t, errors.IsStop(err), "want a Stop, got %v", err)
				return
			}
			require.NoError(t, err)
			total, err := fc.Key[float64]("total").Get(c)
			require.NoError(t, err)
			assert.InDelta(t, tt.total, total, 1e-9)
		})
	}
}

func TestMainOnEmbeddedDefaults(t *testing.T) {
	var out, errOut bytes.Buffer
	require.Equal(t, 0, run(nil, &out, &errOut), errOut.String())
	var got map[string]any
	require.NoError(t, json.Unmarshal(out.Bytes(), &got))
	assert.InDelta(t, 6.0, got["total"], 1e-9) // (3 + 4.5) * 0.8
	assert.Equal(t, 0.2, got["discount_rate"])

	out.Reset()
	errOut.Reset()
	assert.Equal(t, 2, run([]string{`{"tier": "gold", "items": []}`}, &out, &errOut))
	assert.Contains(t, errOut.String(), `stopped: flow "order": step "validate": stop: no items`)

	assert.Equal(t, 1, run([]string{`{not json`}, &out, &errOut))
}
