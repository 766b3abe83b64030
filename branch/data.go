package branch

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/svcflow/svcflow/errors"
)

// DataError returns err, an error of e's Eval or EvalBool over env, as a
// Stop error when it is the data that failed: any run-time error of a
// compiled expression (a string where a number is needed, a field of a
// nil map, a non-bool condition, a division by zero) is about the values
// it was given, so a run over input of the wrong types is rejected (an
// HTTP 422), not failed. The reason is what (such as `set "total"`), the
// expression's error, and the types of the top-level keys it reads:
//
//	set "total": expr "price * qty" at 1:7: invalid operation: string * int (price: string, qty: number)
//
// Other errors (an expression not compiled) and nil are returned as they
// are.
func (e *Expr) DataError(what string, env map[string]any, err error) error {
	if err == nil {
		return nil
	}
	var be *Error
	if !errors.As(err, &be) || errors.Is(err, ErrNotCompiled) {
		return fmt.Errorf("%s: %w", what, err)
	}
	var types []string
	for _, id := range e.idents {
		if v, ok := env[id]; ok {
			types = append(types, id+": "+typeName(v))
		} else {
			types = append(types, id+": missing")
		}
	}
	if len(types) == 0 {
		return errors.Stopf("%s: %w", what, err)
	}
	return errors.Stopf("%s: %w (%s)", what, err, strings.Join(types, ", "))
}

// typeName names a context value's type as JSON would: null, string,
// number, bool, list, map; other Go types by their Go name.
func typeName(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string:
		return "string"
	case bool:
		return "bool"
	case int, int8, int16, int32, int64, uint, uint8, uint16, uint32, uint64, float32, float64, json.Number:
		return "number"
	case []any:
		return "list"
	case map[string]any:
		return "map"
	}
	return fmt.Sprintf("%T", v)
}
