package ruler

import "errors"

// ErrNotFound is returned by the store for a namespace or group it does not
// hold.
var ErrNotFound = errors.New("no rule groups found")

// ErrTooManyGroups is returned by Store.SetGroupLimited for a new group of a
// tenant at its limit of groups.
var ErrTooManyGroups = errors.New("too many rule groups")
