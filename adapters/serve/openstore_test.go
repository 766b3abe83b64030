package serve_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/svcflow/svcflow/adapters/component"
	"github.com/svcflow/svcflow/adapters/message"
	"github.com/svcflow/svcflow/adapters/serve"
	"github.com/svcflow/svcflow/adapters/store"
)

func TestOpenStore(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		url     string
		kind    string // the OpError Store of a failed Get; "" when opening must fail
		errLike string // part of the error text
	}{
		{url: "memory:", kind: "memory"},
		{url: "file:" + filepath.Join(dir, "new", "files"), kind: "file"},
		{url: "sqlite:" + filepath.Join(dir, "new", "a.sqlite"), kind: "sqlite"},
		{url: "sqlite::memory:", kind: "sqlite"},
		{url: "bogus:x", errLike: `unknown store "bogus": expected one of file, memory, none, postgres, sqlite`},
		{url: "redis://localhost", errLike: `unknown store "redis"`},
		{url: "mem:", errLike: `unknown store "mem"`},
		{url: "", errLike: `store "": expected name:value, such as file:DIR, memory:, none:, postgres:URL, sqlite:PATH`},
		{url: filepath.Join(dir, "bare.db"), errLike: "expected name:value"},
		{url: "memory:extra", errLike: `memory takes nothing after "memory:"`},
		{url: "file:", errLike: "empty folder"},
		{url: "sqlite:", errLike: "empty path"},
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			s, err := serve.OpenStore(nil, tt.url)
			if tt.kind == "" {
				require.Error(t, err)
				assert.True(t, errors.Is(err, component.ErrInvalid) || errors.Is(err, component.ErrUnknown), err)
				assert.Contains(t, err.Error(), tt.errLike)
				assert.Nil(t, s)
				return
			}
			require.NoError(t, err)
			defer s.Close()
			ctx := context.Background()
			m := message.New("text/plain", []byte("x"), nil)
			require.NoError(t, s.Put(ctx, m))
			_, err = s.Get(ctx, m.ID)
			require.NoError(t, err)
			_, err = s.Get(ctx, "missing")
			var oe *store.OpError
			require.ErrorAs(t, err, &oe)
			assert.Equal(t, tt.kind, oe.Store)
		})
	}
}

func TestOpenStoreFailureIsNoStore(t *testing.T) {
	dir := t.TempDir()
	s, err := serve.OpenStore(nil, "sqlite:"+dir) // a directory is no database
	require.Error(t, err)
	assert.Nil(t, s, "no typed nil in the interface")
}
