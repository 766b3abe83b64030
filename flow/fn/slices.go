package fn

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"

	"github.com/samber/lo"

	fc "github.com/svcflow/svcflow/context"
	ferrors "github.com/svcflow/svcflow/errors"
	"github.com/svcflow/svcflow/flow"
)

// Number is the constraint of [SumBy]'s results: integers and floats.
type Number interface {
	~int | ~int8 | ~int16 | ~int32 | ~int64 |
		~uint | ~uint8 | ~uint16 | ~uint32 | ~uint64 | ~uintptr |
		~float32 | ~float64
}

// sliceStep reads the slice at from, computes a value from it and writes
// it at into.
type sliceStep[T, R any] struct {
	name string
	from fc.Key[[]T]
	into fc.Key[R]
	op   func([]T) R
	err  error // a construction error, reported when the flow is built
}

func newSlice[T, R any](name string, from fc.Key[[]T], into fc.Key[R], op func([]T) R, err error) flow.Service {
	if err == nil {
		switch {
		case from == "":
			err = errors.New("empty from key")
		case into == "":
			err = errors.New("empty into key")
		}
	}
	return &sliceStep[T, R]{name: name, from: from, into: into, op: op, err: err}
}

func (s *sliceStep[T, R]) Name() string { return s.name }

// Contract needs from, typed []T, and provides into, typed R.
func (s *sliceStep[T, R]) Contract() flow.Contract {
	return flow.Contract{Needs: []fc.KeyInfo{s.from.Info()}, Provides: []fc.KeyInfo{s.into.Info()}}
}

// Prepare reports a construction error as a build error of the step.
func (s *sliceStep[T, R]) Prepare(map[string]reflect.Type) (flow.Service, error) { return s, s.err }

// Call reads from (a value of another type is converted as fc.Convert
// does; one that cannot be is a Stop), computes and writes into.
func (s *sliceStep[T, R]) Call(_ context.Context, c *fc.Context) error {
	if s.err != nil {
		return s.err
	}
	in, err := s.from.Get(c)
	if err != nil {
		return ferrors.Stopf("%w", err)
	}
	s.into.Set(c, s.op(in))
	return nil
}

// nilFunc is the construction error of a service given a nil function.
func nilFunc(f any) error {
	if reflect.ValueOf(f).IsNil() {
		return errors.New("nil function")
	}
	return nil
}

// Map writes into the result of f for each element of the slice at from,
// in order (lo.Map).
//
//	fn.Map("prices", Items, Prices, func(it Item) float64 { return it.Price * it.Qty })
func Map[T, R any](name string, from fc.Key[[]T], into fc.Key[[]R], f func(T) R) flow.Service {
	return newSlice(name, from, into, func(in []T) []R {
		return lo.Map(in, func(x T, _ int) R { return f(x) })
	}, nilFunc(f))
}

// Filter writes into the elements of the slice at from for which keep
// returns true, in order (lo.Filter). into may be from.
func Filter[T any](name string, from, into fc.Key[[]T], keep func(T) bool) flow.Service {
	return newSlice(name, from, into, func(in []T) []T {
		return lo.Filter(in, func(x T, _ int) bool { return keep(x) })
	}, nilFunc(keep))
}

// Reject writes into the elements of the slice at from for which drop
// returns false, in order (lo.Reject): the opposite of [Filter].
func Reject[T any](name string, from, into fc.Key[[]T], drop func(T) bool) flow.Service {
	return newSlice(name, from, into, func(in []T) []T {
		return lo.Reject(in, func(x T, _ int) bool { return drop(x) })
	}, nilFunc(drop))
}

// GroupBy writes into a map from each key that by returns to the
// elements with that key, in their order (lo.GroupBy).
func GroupBy[T any, K comparable](name string, from fc.Key[[]T], into fc.Key[map[K][]T], by func(T) K) flow.Service {
	return newSlice(name, from, into, func(in []T) map[K][]T { return lo.GroupBy(in, by) }, nilFunc(by))
}

// KeyBy writes into a map from each key that by returns to the element
// with that key; of elements with the same key, the last wins (lo.KeyBy).
func KeyBy[T any, K comparable](name string, from fc.Key[[]T], into fc.Key[map[K]T], by func(T) K) flow.Service {
	return newSlice(name, from, into, func(in []T) map[K]T { return lo.KeyBy(in, by) }, nilFunc(by))
}

// Chunk writes into the slice at from cut into slices of size elements
// (the last may be shorter), each a copy (lo.Chunk). A size below 1 is a
// build error.
func Chunk[T any](name string, from fc.Key[[]T], into fc.Key[[][]T], size int) flow.Service {
	var err error
	if size < 1 {
		err = fmt.Errorf("chunk size must be at least 1, got %d", size)
	}
	return newSlice(name, from, into, func(in []T) [][]T { return lo.Chunk(in, size) }, err)
}

// UniqBy writes into the elements of the slice at from whose key, as by
// returns it, was not seen before: the first of each key, in order
// (lo.UniqBy).
func UniqBy[T any, K comparable](name string, from, into fc.Key[[]T], by func(T) K) flow.Service {
	return newSlice(name, from, into, func(in []T) []T { return lo.UniqBy(in, by) }, nilFunc(by))
}

// Flatten writes into the slices of the slice at from joined into one,
// in order (lo.Flatten).
func Flatten[T any](name string, from fc.Key[[][]T], into fc.Key[[]T]) flow.Service {
	return newSlice(name, from, into, func(in [][]T) []T { return lo.Flatten(in) }, nil)
}

// SortBy writes into a sorted copy of the slice at from, ordered by the
// key by returns, smallest first; elements with equal keys keep their
// order (a stable sort: slices.SortStableFunc; lo has no sort). The
// slice at from is not changed.
func SortBy[T any, K cmp.Ordered](name string, from, into fc.Key[[]T], by func(T) K) flow.Service {
	return newSlice(name, from, into, func(in []T) []T { return sortBy(in, by, false) }, nilFunc(by))
}

// SortByDesc is [SortBy], largest key first (equal keys keep their order).
func SortByDesc[T any, K cmp.Ordered](name string, from, into fc.Key[[]T], by func(T) K) flow.Service {
	return newSlice(name, from, into, func(in []T) []T { return sortBy(in, by, true) }, nilFunc(by))
}

func sortBy[T any, K cmp.Ordered](in []T, by func(T) K, desc bool) []T {
	out := slices.Clone(in)
	slices.SortStableFunc(out, func(a, b T) int {
		if desc {
			return cmp.Compare(by(b), by(a))
		}
		return cmp.Compare(by(a), by(b))
	})
	return out
}

// SumBy writes into the sum of what of returns for each element of the
// slice at from (lo.SumBy); 0 for an empty slice.
func SumBy[T any, N Number](name string, from fc.Key[[]T], into fc.Key[N], of func(T) N) flow.Service {
	return newSlice(name, from, into, func(in []T) N { return lo.SumBy(in, of) }, nilFunc(of))
}
