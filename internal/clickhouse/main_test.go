package clickhouse

import (
	"os"
	"testing"

	"github.com/chmedic/chmedic/internal/testenv"
)

// The integration tests share one real environment (ZooKeeper and two
// ClickHouse 18.16 replicas), started on first use.
func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }
