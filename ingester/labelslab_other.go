//go:build slicelabels || dedupelabels

package ingester

import "github.com/prometheus/prometheus/model/labels"

// encodedLabels: labels.Labels is not stringlabels' encoded string, so
// labelSlab builds each label set on its own.
const encodedLabels = false

func labelsFromEncoded([]byte) labels.Labels {
	panic("ingester: labelsFromEncoded without stringlabels")
}
