package benchdata

import (
	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
	"github.com/prometheus/prometheus/tsdb/chunks"
)

// FloatSample is a float chunks.Sample, for building Prometheus list
// series (storage.NewListSeries) that tsdb.CreateBlock writes as a block.
type FloatSample struct {
	Time  int64
	Value float64
}

func (s FloatSample) T() int64                      { return s.Time }
func (s FloatSample) ST() int64                     { return 0 }
func (s FloatSample) F() float64                    { return s.Value }
func (s FloatSample) H() *histogram.Histogram       { return nil }
func (s FloatSample) FH() *histogram.FloatHistogram { return nil }
func (s FloatSample) Type() chunkenc.ValueType      { return chunkenc.ValFloat }
func (s FloatSample) Copy() chunks.Sample           { return s }
