package probe

import (
	"context"
	"fmt"

	"github.com/chmedic/chmedic/internal/keeper"
)

// keeper.dirs — size of the snapshot and transaction-log directories.
//
// Facts: data_bytes, log_bytes.
func keeperDirs() Spec {
	return Spec{Name: "keeper.dirs", Kind: KindKeeper, Doc: "Snapshot and transaction log sizes (dirs).",
		Run: func(_ context.Context, t *Target) Result {
			raw, fail := keeperAnswer(t, "dirs")
			if fail != nil {
				return *fail
			}
			d, err := keeper.ParseDirs(raw)
			if err != nil {
				return parseFailed("dirs", err)
			}
			r := keeperResult(t, "dirs")
			r.SetFact("data_bytes", float64(d.DataBytes))
			r.SetFact("log_bytes", float64(d.LogBytes))
			r.Summary = fmt.Sprintf("snapshots %s, transaction log %s", bytesText(d.DataBytes), bytesText(d.LogBytes))
			return r
		}}
}

func bytesText(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
