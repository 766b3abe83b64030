package branch_test

import (
	"reflect"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/svcflow/svcflow/branch"
	"github.com/svcflow/svcflow/errors"
)

func TestDataErrorIsAStopNamingTheKeys(t *testing.T) {
	e := branch.MustParse("price * qty")
	require.NoError(t, e.Compile(map[string]reflect.Type{"price": nil, "qty": nil}))
	env := map[string]any{"price": "x", "qty": 2}
	_, err := e.Eval(env)
	require.Error(t, err)
	err = e.DataError(`set "total"`, env, err)
	assert.True(t, errors.IsStop(err))
	stop, ok := errors.AsType[*errors.StopError](err)
	require.True(t, ok)
	assert.Equal(t, `set "total": expr "price * qty" at 1:7: invalid operation: string * int (price: string, qty: number)`, stop.Reason)

	cond := branch.MustParse("items")
	require.NoError(t, cond.Compile(map[string]reflect.Type{"items": nil}))
	env = map[string]any{"items": []any{}}
	_, err = cond.EvalBool(env)
	err = cond.DataError("condition", env, err)
	assert.True(t, errors.IsStop(err), "a condition that is not a bool")
	assert.ErrorContains(t, err, "(items: list)")

	assert.NoError(t, e.DataError("x", env, nil))
	_, err = branch.MustParse("a").Eval(nil)
	err = e.DataError("x", nil, err)
	assert.False(t, errors.IsStop(err), "not compiled is not the data's fault")
	assert.ErrorIs(t, err, branch.ErrNotCompiled)
}
