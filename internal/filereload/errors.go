package filereload

import "fmt"

// loadError is a failed load: which file, and why. It matches the sentinel of
// the file's owner (Config.Err) with errors.Is, and unwraps to the cause (a
// *fs.PathError, or the parse error).
type loadError struct {
	what     string
	path     string
	sentinel error
	err      error
}

func (e loadError) Error() string {
	return fmt.Sprintf("%s %s: %v", e.what, e.path, e.err)
}

func (e loadError) Is(target error) bool { return e.sentinel != nil && target == e.sentinel }

func (e loadError) Unwrap() error { return e.err }
