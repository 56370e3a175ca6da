package probe

import (
	"os"
	"testing"

	"github.com/chmedic/chmedic/internal/testenv"
)

// Integration tests of this package share one real environment (ZooKeeper,
// two ClickHouse 18.16 replicas), started on first use and closed here.
func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }
