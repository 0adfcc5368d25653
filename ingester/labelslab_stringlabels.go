//go:build !slicelabels && !dedupelabels

package ingester

import (
	"unsafe"

	"github.com/prometheus/prometheus/model/labels"
)

// encodedLabels: labels.Labels is stringlabels' one string of encoded
// labels, which labelsFromEncoded can wrap.
const encodedLabels = true

// Fails to compile unless labels.Labels is the size of one string.
var (
	_ [unsafe.Sizeof(labels.Labels{}) - unsafe.Sizeof("")]struct{}
	_ [unsafe.Sizeof("") - unsafe.Sizeof(labels.Labels{})]struct{}
)

// labelsFromEncoded returns the labels whose stringlabels encoding is b,
// without a copy: b must never change. The names must be sorted and
// distinct, as labels.New would leave them.
func labelsFromEncoded(b []byte) labels.Labels {
	s := unsafe.String(unsafe.SliceData(b), len(b))
	return *(*labels.Labels)(unsafe.Pointer(&s))
}
