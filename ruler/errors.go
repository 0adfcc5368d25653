package ruler

import "errors"

// ErrNotFound is returned by the store for a namespace or group it does not
// hold.
var ErrNotFound = errors.New("no rule groups found")
