package app

import (
	"context"
	"errors"
	"fmt"

	"github.com/chmedic/chmedic/internal/store"
)

// errNoChannel: a freeze without a thread on a cluster without a Slack
// channel; its messages go to the log and the audit only.
var errNoChannel = errors.New("no Slack channel configured for the cluster (clusters[].slack_channel or slack.channel)")

// freezeThreadKey is the thread chmedic opens in the cluster's channel for
// a freeze that has none (requested with `chmedic request`): its first
// message is top-level, the later ones replies to it.
func freezeThreadKey(f store.FreezeRecord) string { return "freeze/" + f.ID }

// freezeChannel is the cluster's channel: clusters[].slack_channel, else
// slack.channel; "" without either.
func (k *FreezeKeeper) freezeChannel(cluster string) string {
	if k.Config == nil {
		return ""
	}
	for i := range k.Config.Clusters {
		if c := &k.Config.Clusters[i]; c.Name == cluster && c.SlackChannel != "" {
			return c.SlackChannel
		}
	}
	return k.Config.Slack.Channel
}

// threadFor returns where f's messages go: the thread of the request that
// made it, else chmedic's own thread of the freeze (if one was opened, or
// may be opened: open reports whether the next message must open it), else
// "" (no channel).
func (k *FreezeKeeper) threadFor(ctx context.Context, f store.FreezeRecord) (threadKey, groupKey string, open bool) {
	if threadKey, groupKey = k.thread(ctx, f); threadKey != "" {
		return threadKey, groupKey, false
	}
	key := freezeThreadKey(f)
	if _, err := k.Store.Thread(ctx, key); err == nil {
		return key, "", false
	}
	if k.freezeChannel(f.Cluster) == "" {
		return "", "", false
	}
	return key, "", true
}

// say posts body in threadKey: a reply, or (open) the top-level message
// that opens the freeze's own thread in the cluster's channel, through the
// outbox either way.
func (k *FreezeKeeper) say(ctx context.Context, f store.FreezeRecord, threadKey string, open bool, body []byte) error {
	switch {
	case threadKey == "":
		return errNoChannel
	case !open:
		return k.Approvals.Notice(ctx, threadKey, body)
	}
	ch := k.freezeChannel(f.Cluster)
	if _, err := k.Store.UpsertThreadMessage(context.WithoutCancel(ctx), store.Thread{Key: threadKey, Channel: ch, Cluster: f.Cluster, Status: "ddl_freeze"}, body); err != nil {
		return fmt.Errorf("posting in %s: %w", ch, err)
	}
	return nil
}
