package deploytest

import (
	"os"
	"testing"

	"github.com/argus-tsdb/argus/internal/clustertest"
)

func TestMain(m *testing.M) { os.Exit(clustertest.Main(m)) }
