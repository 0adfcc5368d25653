package storage

import (
	"errors"
	"fmt"
	"strings"
)

// ErrClosed means the store was used after Close.
var ErrClosed = errors.New("chunk store closed")

// ErrLocked means another process (or another Open in this one) holds the
// store file.
var ErrLocked = errors.New("chunk store file locked")

// ErrUnsupportedFormat means the file was written with another on-disk format
// version.
var ErrUnsupportedFormat = errors.New("unsupported chunk store format")

// ErrOutOfOrderChunk means a chunk is not newer than the chunk before it, in
// the batch or in the store.
var ErrOutOfOrderChunk = errors.New("out of order chunk")

// ErrInvalidChunk means a chunk is malformed (MinTime after MaxTime, unknown
// encoding or no data).
var ErrInvalidChunk = errors.New("invalid chunk")

// ErrInvalidLabels means a label set cannot be stored (no label with a value,
// duplicate or unsorted names, an empty name, a name containing byte 0xff, or
// more than about 32 KiB encoded).
var ErrInvalidLabels = errors.New("invalid labels")

// ErrCorrupt means the file content contradicts the on-disk format.
var ErrCorrupt = errors.New("chunk store corrupt")

// outOfOrderChunkError reports a chunk whose MinTime is not after the MaxTime
// of the previous chunk of the same series.
type outOfOrderChunkError struct {
	series      string // formatted eagerly: the labels may be pooled
	minTime     int64
	prevMaxTime int64
	stored      bool // the previous chunk was written before (not in this series' chunks)
}

func (e outOfOrderChunkError) Error() string {
	where := "previous chunk"
	if e.stored {
		where = "last written chunk"
	}
	return fmt.Sprintf("out of order chunk for series %s: min time %d not after %s max time %d",
		e.series, e.minTime, where, e.prevMaxTime)
}

func (outOfOrderChunkError) Is(target error) bool { return target == ErrOutOfOrderChunk }

// invalidChunkError reports a malformed chunk.
type invalidChunkError struct {
	series string
	reason string
}

func (e invalidChunkError) Error() string {
	return fmt.Sprintf("invalid chunk for series %s: %s", e.series, e.reason)
}

func (invalidChunkError) Is(target error) bool { return target == ErrInvalidChunk }

// invalidLabelsError reports a label set that cannot be stored.
type invalidLabelsError struct {
	series string
	reason string
}

func (e invalidLabelsError) Error() string {
	return fmt.Sprintf("invalid labels %s: %s", e.series, e.reason)
}

func (invalidLabelsError) Is(target error) bool { return target == ErrInvalidLabels }

// corruptError lists the inconsistencies found in a store file.
type corruptError struct {
	problems []string // the first maxReportedProblems
	total    int
}

// maxReportedProblems bounds the size of a corruptError message.
const maxReportedProblems = 20

func (e corruptError) Error() string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "chunk store corrupt: %d problems", e.total)
	for _, p := range e.problems {
		sb.WriteString("; ")
		sb.WriteString(p)
	}
	if e.total > len(e.problems) {
		fmt.Fprintf(&sb, "; and %d more", e.total-len(e.problems))
	}
	return sb.String()
}

func (corruptError) Is(target error) bool { return target == ErrCorrupt }

// corruptf returns a corruptError with one problem.
func corruptf(format string, args ...any) error {
	return corruptError{problems: []string{fmt.Sprintf(format, args...)}, total: 1}
}
