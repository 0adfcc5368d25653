package auth

import (
	"errors"
	"fmt"
)

// ErrTokenFile means the token file could not be read, parsed or validated;
// the last good one stays in force.
var ErrTokenFile = errors.New("invalid token file")

// tokenFileError says which file failed and why.
type tokenFileError struct {
	file string
	err  error
}

func (e tokenFileError) Error() string {
	return fmt.Sprintf("token file %s: %v", e.file, e.err)
}

func (e tokenFileError) Is(target error) bool { return target == ErrTokenFile }

func (e tokenFileError) Unwrap() error { return e.err }
