package promimport

import (
	"os"
	"testing"

	"github.com/argus-tsdb/argus/internal/clustertest"
)

// TestMain removes the argus binary that the end-to-end test may have built.
func TestMain(m *testing.M) { os.Exit(clustertest.Main(m)) }
