package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"

	"github.com/svcflow/svcflow/branch"
)

func init() {
	register(&Command{
		Name:    "eval",
		Summary: "evaluate an expression on a JSON input: a playground for set:, stop: and fork:",
		Usage:   "flowrun eval EXPR [--input JSON|@FILE|-] [--cond]",
		Help: `Evaluates one expr-lang expression, as set:, stop: if:, fork: on: and the
other steps evaluate theirs, on the context given by --input (a JSON
object; default {}), and prints the result as JSON and its type (number,
string, bool, list, map or null). Numbers behave as in a run: JSON
numbers are float64, but for those a float64 would not keep, which stay
exact. An expression that does not parse, reads a key the input does not
have or fails on the input's values is an error with its line and column,
shown under the expression. --cond evaluates it as a condition (if:),
which must give true or false.`,
		Example: `flowrun eval 'sum(map(items, #.price * #.qty))' --input '{"items": [{"price": 2, "qty": 3}]}'
flowrun eval 'customer.tier == "gold"' --cond --input @order.json
echo '{"n": 4}' | flowrun eval 'n * 2' --input -`,
		Run: evalCmd,
	})
}

func evalCmd(ctx context.Context, e *Env, args []string) int {
	c := e.cmds["eval"]
	fs := e.FlagSet(c)
	input := fs.String("input", "", "the context: a JSON object, @FILE, or - for standard input (default {})")
	cond := fs.Bool("cond", false, "evaluate as a condition (if:): the result must be true or false")
	pos, code, ok := e.Parse(fs, args)
	if !ok {
		return code
	}
	if len(pos) != 1 {
		return e.usageError(c, "expected one expression (quote it), got %d arguments", len(pos))
	}
	in := map[string]any{}
	if *input != "" {
		if in, code, ok = e.readInput(c, nil, "", *input); !ok {
			return code
		}
	}
	src := pos[0]
	x, err := branch.Parse(src)
	if err == nil {
		known := make(map[string]reflect.Type, len(in))
		for k := range in {
			known[k] = nil
		}
		var opts []branch.Option
		if *cond {
			opts = append(opts, branch.AsBool())
		}
		err = x.Compile(known, opts...)
		if err != nil {
			if keys := slices.Sorted(maps.Keys(in)); len(keys) > 0 {
				err = fmt.Errorf("%w (the input has: %v)", err, keys)
			} else {
				err = fmt.Errorf("%w (the input is empty: give one with --input)", err)
			}
		}
	}
	var out any
	if err == nil {
		out, err = x.Eval(in)
		if err != nil {
			var types []string
			for _, id := range x.Idents() {
				if v, ok := in[id]; ok {
					types = append(types, id+": "+valueType(v))
				} else {
					types = append(types, id+": missing")
				}
			}
			if len(types) > 0 {
				err = fmt.Errorf("%w (%s)", err, strings.Join(types, ", "))
			}
		}
	}
	if err != nil {
		fmt.Fprintf(e.Stderr, "flowrun eval: %v\n", err)
		var be *branch.Error
		if errors.As(err, &be) {
			if s := be.Snippet(); s != "" {
				fmt.Fprintln(e.Stderr, indent(s, "  "))
			}
		}
		return ExitFailure
	}
	data, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		fmt.Fprintf(e.Stderr, "flowrun eval: encoding the result: %v\n", err)
		return ExitFailure
	}
	fmt.Fprintln(e.Stdout, string(data))
	fmt.Fprintf(e.Stdout, "type: %s\n", valueType(out))
	return ExitOK
}

// valueType names the JSON type of v: number, string, bool, list, map
// or null; other Go values by their Go type.
func valueType(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string:
		return "string"
	case bool:
		return "bool"
	case json.Number, float64, float32, int, int8, int16, int32, int64, uint, uint8, uint16, uint32, uint64:
		return "number"
	}
	switch reflect.ValueOf(v).Kind() {
	case reflect.Slice, reflect.Array:
		return "list"
	case reflect.Map:
		return "map"
	}
	return fmt.Sprintf("%T", v)
}
