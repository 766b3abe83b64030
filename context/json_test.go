package context_test

import (
	"encoding/json"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	fc "github.com/svcflow/svcflow/context"
)

func ExampleAppendJSON() {
	c := fc.New()
	c.Set("total", 8.5)
	c.Set("items", []any{map[string]any{"sku": "apple", "qty": 2}})
	buf := make([]byte, 0, 256) // reusable: AppendJSON allocates nothing for these values
	buf, err := fc.AppendJSON(buf, c.View())
	if err != nil {
		panic(err)
	}
	fmt.Println(string(buf))
	// Output: {"items":[{"qty":2,"sku":"apple"}],"total":8.5}
}

func ExampleContext_Track() {
	c := fc.New()
	c.Set("input", 1)
	rec := c.Track()
	c.Set("subtotal", 10)
	c.Set("total", 12)
	fmt.Println(rec.Stop(nil))
	// Output: [subtotal total]
}

func TestBigNumbersKeepTheirDigits(t *testing.T) {
	in := `{"id":12345678901234567891,"n":-9223372036854775808,"price":2.5,"tiny":0.1000000000000000000001}`
	c, err := fc.FromJSON([]byte(in))
	require.NoError(t, err)
	v, _ := c.Get("id")
	assert.Equal(t, json.Number("12345678901234567891"), v, "kept as its text")
	v, _ = c.Get("price")
	assert.Equal(t, 2.5, v, "other numbers are float64 as before")
	out, err := c.MarshalJSON()
	require.NoError(t, err)
	assert.Equal(t, in, string(out))

	u, err := fc.Key[uint64]("id").Get(c)
	require.NoError(t, err)
	assert.Equal(t, uint64(12345678901234567891), u)
	f, err := fc.Key[float64]("id").Get(c)
	require.NoError(t, err)
	assert.Equal(t, 12345678901234567891.0, f, "rounded as a float64 decoding rounds it")
	_, err = fc.Key[int64]("id").Get(c)
	assert.ErrorIs(t, err, fc.ErrType, "beyond int64")
	i, err := fc.Key[int64]("n").Get(c)
	require.NoError(t, err)
	assert.Equal(t, int64(-9223372036854775808), i)
	_, err = fc.Key[string]("id").Get(c)
	assert.ErrorIs(t, err, fc.ErrType, "a number is not a string")
	a, err := fc.Key[any]("id").Get(c)
	require.NoError(t, err)
	assert.Equal(t, json.Number("12345678901234567891"), a)
	type order struct{ ID uint64 }
	o, err := fc.Convert[order](map[string]any{"ID": json.Number("12345678901234567891")})
	require.NoError(t, err)
	assert.Equal(t, uint64(12345678901234567891), o.ID)
}
