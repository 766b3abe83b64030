package storeutil

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestLifeCloseWaitsForOperations(t *testing.T) {
	var l Life
	require.True(t, l.Enter(), "the zero Life is open")
	closed := make(chan bool)
	go func() { closed <- l.Close() }()
	select {
	case <-closed:
		t.Fatal("Close returned while an operation was running")
	case <-time.After(20 * time.Millisecond):
	}
	l.Exit()
	assert.True(t, <-closed, "the first Close closes")
	assert.False(t, l.Enter(), "no operation starts after Close")
	assert.False(t, l.Close(), "closing again reports it was closed")
}

func TestLifeOperationsRunTogether(t *testing.T) {
	var l Life
	require.True(t, l.Enter())
	require.True(t, l.Enter(), "operations share the guard")
	l.Exit()
	l.Exit()
	assert.True(t, l.Close())
}

func TestNow(t *testing.T) {
	n := Now()
	assert.Equal(t, time.UTC, n.Location())
	assert.Equal(t, n, n.Round(0), "no monotonic reading")
}

func TestContextHelpers(t *testing.T) {
	var none context.Context // the stores accept a nil context
	assert.NoError(t, CtxErr(none))
	assert.NotNil(t, OrBackground(none))
	ctx, cancel := context.WithCancel(context.Background())
	assert.Same(t, ctx, OrBackground(ctx))
	assert.NoError(t, CtxErr(ctx))
	cancel()
	assert.ErrorIs(t, CtxErr(ctx), context.Canceled)
}

func TestDecodeContext(t *testing.T) {
	m, err := DecodeContext(nil)
	require.NoError(t, err)
	assert.Nil(t, m)
	m, err = DecodeContext([]byte(`{}`))
	require.NoError(t, err)
	assert.Equal(t, map[string]any{}, m)
	m, err = DecodeContext([]byte(`{"n":1,"l":[{"k":"v"}]}`))
	require.NoError(t, err)
	assert.Equal(t, map[string]any{"n": 1.0, "l": []any{map[string]any{"k": "v"}}}, m)
	_, err = DecodeContext([]byte(`{`))
	assert.ErrorContains(t, err, "decode context")
}
