package auth

import "errors"

// ErrTokenFile means the token file could not be read, parsed or validated;
// the last good one stays in force.
var ErrTokenFile = errors.New("invalid token file")
