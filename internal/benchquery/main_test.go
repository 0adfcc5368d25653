package benchquery

import (
	"os"
	"testing"

	"github.com/argus-tsdb/argus/internal/clustertest"
)

// TestMain removes the argus binary clustertest may have built. There is no
// goleak check, as in internal/benchcluster: the goroutines that wait for the
// killed argus processes and those of closed HTTP connections end
// asynchronously, after the cleanups.
func TestMain(m *testing.M) { os.Exit(clustertest.Main(m)) }
