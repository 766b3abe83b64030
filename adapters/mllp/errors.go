package mllp

import (
	"fmt"

	"github.com/svcflow/svcflow/adapters/component"
)

// fieldErr is an ErrInvalid error about one spec field, which a
// configuration reader reports at the field's position.
func fieldErr(field, format string, args ...any) error {
	return &component.FieldError{Field: field, Err: invalid(fmt.Sprintf(format, args...))}
}

// invalid is the text of a spec error; errors.Is(err, ErrInvalid) holds.
type invalid string

func (e invalid) Error() string { return string(e) }

func (e invalid) Is(target error) bool { return target == ErrInvalid }
