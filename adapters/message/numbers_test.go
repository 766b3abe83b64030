package message_test

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/svcflow/svcflow/adapters/message"
)

func TestContextNumbersKeepTheirDigits(t *testing.T) {
	m := message.New("application/json", []byte(`{"id": 12345678901234567891}`), nil)
	m.Context = map[string]any{"id": json.Number("12345678901234567891"), "n": 1.5}
	data, err := json.Marshal(m)
	require.NoError(t, err)
	assert.Contains(t, string(data), `"context":{"id":12345678901234567891,"n":1.5}`)
	var back message.Message
	require.NoError(t, json.Unmarshal(data, &back))
	assert.Equal(t, m.Context, back.Context)
	assert.Equal(t, m.Payload, back.Payload)

	err = json.Unmarshal([]byte(`{"id": "x", "context": {"a": 12345678901234567891`), &back)
	assert.Error(t, err)
}
