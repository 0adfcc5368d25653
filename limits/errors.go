package limits

import (
	"errors"
	"fmt"
)

var (
	// ErrInvalidLimit means a limit has a value it cannot take (a negative
	// count or duration).
	ErrInvalidLimit = errors.New("invalid limit")
	// ErrRuntimeConfig means the runtime config file could not be read,
	// parsed or validated; the last good config stays in force.
	ErrRuntimeConfig = errors.New("invalid runtime config")
)

// invalidLimitError names the limit, by its flag, and the value it was given.
type invalidLimitError struct {
	flag   string
	value  any
	reason string
}

func (e invalidLimitError) Error() string {
	return fmt.Sprintf("-%s %s, got %v", e.flag, e.reason, e.value)
}

func (e invalidLimitError) Is(target error) bool { return target == ErrInvalidLimit }
