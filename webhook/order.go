package webhook

import (
	"fmt"

	"github.com/chmedic/chmedic/internal/store"
)

// Ordering of one group's notifications.
//
// Alertmanager's version-4 payload carries no notification timestamp or
// sequence number: each notification is a snapshot of the group's alerts,
// each with its fingerprint, status, startsAt and (once resolved) endsAt.
// One Alertmanager sends a group's notifications one after the other, but
// chmedic can process them out of order (a failed attempt retried after a
// newer one succeeded, a replay after a restart), and an HA pair can deliver
// a late twin. The queue processes one group's notifications one at a time
// and compares each with the group's last processed one (its mark):
//
//   - Per alert present in both, the timestamps decide only when they prove
//     two different episodes of the alert: a resolved alert whose endsAt is
//     not after the other's later startsAt is older (that episode ended
//     before the other began); a firing or resolved alert that started at or
//     after the other's endsAt is newer (it fired again).
//   - Any other pair is the same episode: firing then resolved with the same
//     startsAt, or two firings whose startsAt differ because Alertmanager
//     merged an HA Prometheus pair's copies (it keeps the earliest startsAt,
//     so a later snapshot may carry an earlier startsAt). The timestamps
//     cannot order these: Alertmanager itself sends "firing" with the
//     original startsAt after a "resolved" when the source resumes after its
//     endsAt passed, so a resolved group is not always newer than a firing
//     one with the same startsAt.
//   - If some alert is newer, the notification is newer (it is processed,
//     even if another alert is older: new information is not dropped). Else,
//     if some alert is older, it is stale. Else (same episodes, or no alert
//     in common) the order in which chmedic accepted them decides: a
//     notification accepted before the mark's is stale.
//
// Only alerts present in both are compared: a payload truncated by
// max_alerts (truncatedAlerts > 0) carries a subset of the group, and an
// alert that left the group proves nothing. Alertmanager adds no other
// ordering data to the payload.
//
// A stale notification is not processed: it is stored as "stale" with the
// reason and counted in chmedic_notifications_processed_total{result="stale"},
// so a retried firing processed after its resolve cannot flip the thread
// back to firing.

// order is how a notification relates to its group's mark.
type order int

const (
	older order = iota - 1
	sameEpisodes
	newer
)

// versions returns the message's alerts by fingerprint.
func (m *Message) versions() map[string]store.AlertVersion {
	out := make(map[string]store.AlertVersion, len(m.Alerts))
	for _, a := range m.Alerts {
		v := store.AlertVersion{StartsAt: a.StartsAt}
		if a.Status == "resolved" {
			v.EndsAt = a.EndsAt
		}
		out[alertID(a)] = v
	}
	return out
}

// compareAlerts orders n's alerts against last's by the rule above.
func compareAlerts(n, last map[string]store.AlertVersion) order {
	isOlder := false
	for fp, v := range n {
		l, ok := last[fp]
		if !ok {
			continue
		}
		switch {
		case !l.EndsAt.IsZero() && l.StartsAt.Before(v.StartsAt) && !l.EndsAt.After(v.StartsAt):
			return newer
		case !v.EndsAt.IsZero() && v.StartsAt.Before(l.StartsAt) && !v.EndsAt.After(l.StartsAt):
			isOlder = true
		}
	}
	if isOlder {
		return older
	}
	return sameEpisodes
}

// staleReason says why notification id (with alerts n) is older than the
// group's mark, or "" when it is not and must be processed.
func staleReason(id int64, n map[string]store.AlertVersion, mark store.GroupMark) string {
	if id == mark.NotificationID {
		return ""
	}
	switch compareAlerts(n, mark.Alerts) {
	case older:
		return fmt.Sprintf("stale: an alert of it ended before the same alert fired again in notification %d, already processed", mark.NotificationID)
	case sameEpisodes:
		if id < mark.NotificationID {
			return fmt.Sprintf("stale: notification %d of the same group, accepted later with the same alert episodes, was already processed", mark.NotificationID)
		}
	}
	return ""
}
