package errors_test

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/svcflow/svcflow/errors"
)

func ExampleStop() {
	validate := func(qty int) error {
		if qty <= 0 {
			return errors.Stopf("quantity must be positive, got %d", qty)
		}
		return nil
	}
	err := fmt.Errorf("step validate: %w", validate(0))
	fmt.Println(err)
	fmt.Println(errors.Is(err, errors.ErrStop), errors.KindOf(err))
	// Output:
	// step validate: stop: quantity must be positive, got 0
	// true stop
}

func ExampleDrop() {
	// A filter: messages of other types are consumed silently.
	err := fmt.Errorf("step %q: %w", "only-orders", errors.Drop("not an order"))
	fmt.Println(errors.KindOf(err), errors.Is(err, errors.ErrDrop), errors.IsStop(err))
	fmt.Println(err)
	// Output:
	// dropped true false
	// step "only-orders": dropped: not an order
}

func ExampleStopf() {
	cause := errors.New("unexpected end of JSON input")
	err := errors.Stopf("decode order %d: %w", 42, cause)
	fmt.Println(err)
	fmt.Println(errors.Is(err, cause))
	// Output:
	// stop: decode order 42: unexpected end of JSON input
	// true
}

func ExamplePolicy_Do() {
	p := errors.Policy{Initial: time.Millisecond, MaxAttempts: 5}
	attempts, err := p.Do(context.Background(), func(ctx context.Context, attempt int) error {
		if attempt < 3 {
			return errors.Retry(errors.New("backend busy"))
		}
		return nil
	})
	fmt.Println(attempts, err)
	// Output:
	// 3 <nil>
}

func ExamplePolicy_Do_exhausted() {
	p := errors.Policy{Initial: time.Millisecond, MaxAttempts: 3}
	attempts, err := p.Do(context.Background(), func(ctx context.Context, attempt int) error {
		return errors.RetryAfter(errors.New("rate limited"), time.Millisecond)
	})
	fmt.Println(attempts, err)
	fmt.Println(errors.Is(err, errors.ErrExhausted), errors.Is(err, errors.ErrRetry))
	if after, ok := errors.RetryAfterHint(err); ok {
		fmt.Println("Retry-After:", after)
	}
	// Output:
	// 3 retries exhausted after 3 attempts: retry: rate limited
	// true true
	// Retry-After: 1ms
}

func ExampleKindOf() {
	for _, err := range []error{
		nil,
		errors.New("boom"),
		errors.Retry(nil),
		errors.Stop("no work"),
		errors.Fatal(errors.New("disk full")),
		errors.Join(errors.Retry(nil), context.Canceled),
	} {
		fmt.Println(errors.KindOf(err))
	}
	// Output:
	// ok
	// failed
	// retry
	// stop
	// fatal
	// canceled
}

func ExampleRecovered() {
	run := func() (err error) {
		defer func() {
			if r := recover(); r != nil {
				err = errors.Recovered(r)
			}
		}()
		panic("nil map write")
	}
	err := run()
	fmt.Println(err)
	var pe *errors.PanicError
	fmt.Println(errors.As(err, &pe) && len(pe.Stack) > 0)
	// Output:
	// panic: nil map write
	// true
}

func ExampleKind() {
	k := errors.KindOf(&errors.ExhaustedError{Attempts: 3, Last: errors.Retry(nil)})
	b, _ := json.Marshal(map[string]errors.Kind{"outcome": k})
	fmt.Println(k, string(b))
	var back struct{ Outcome errors.Kind }
	_ = json.Unmarshal(b, &back)
	fmt.Println(back.Outcome == errors.KindRetryExhausted)
	// Output:
	// retry-exhausted {"outcome":"retry-exhausted"}
	// true
}

// An engine that makes the attempts itself asks Retries what follows each
// failed attempt, before it reports the attempt.
func ExamplePolicy_Retries() {
	p := errors.Policy{Initial: time.Millisecond, MaxAttempts: 3}
	r := p.Retries(time.Now())
	ctx := context.Background()
	for attempt := 1; ; attempt++ {
		err := r.Next(ctx, errors.Retry(errors.New("busy"))) // the attempt failed
		fmt.Println(attempt, errors.KindOf(err))
		if errors.KindOf(err) != errors.KindWillRetry {
			break
		}
		if err := r.Wait(ctx); err != nil {
			break
		}
	}
	// Output:
	// 1 will-retry
	// 2 will-retry
	// 3 retry-exhausted
}
