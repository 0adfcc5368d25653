package ring

import (
	"errors"
	"fmt"
)

// ErrEmptyRing means the ring has no instance to place a series on.
var ErrEmptyRing = errors.New("ring has no instances")

// ErrTooFewHealthy means fewer healthy instances than a quorum (or than a read
// can tolerate losing) were found; the operation must fail, not degrade.
var ErrTooFewHealthy = errors.New("too few healthy instances")

// ErrCorruptDesc means an encoded ring state could not be decoded.
var ErrCorruptDesc = errors.New("corrupt ring state")

// ErrUnknownInstance means an operation named an instance the ring does not hold.
var ErrUnknownInstance = errors.New("unknown instance")

func corruptf(format string, args ...any) error {
	return fmt.Errorf("decode ring state: %s: %w", fmt.Sprintf(format, args...), ErrCorruptDesc)
}

// tooFewHealthyError carries the detail of an ErrTooFewHealthy.
type tooFewHealthyError struct {
	op            string
	found, needed int
}

func (e tooFewHealthyError) Error() string {
	return fmt.Sprintf("%s: found %d healthy instances, need %d: %s", e.op, e.found, e.needed, ErrTooFewHealthy)
}

func (e tooFewHealthyError) Is(target error) bool { return target == ErrTooFewHealthy }
