package slack

import (
	"fmt"
	"strings"
	"time"

	"github.com/slack-go/slack"
)

// FreezeView is a DDL freeze as its reminder and its expiry notice show it.
type FreezeView struct {
	ID        string
	Cluster   string
	State     string // active, partial, expired, ...
	Method    string
	Targets   []string
	ExpiresAt time.Time
	// Nodes are "name: state" lines.
	Nodes []string
	// ExtendOffer and UnfreezeOffer are the offers the reminder's buttons
	// carry (empty: no button); Extend is the duration an Extend asks for.
	ExtendOffer, UnfreezeOffer string
	Extend                     time.Duration
	// Partial renders the partial-freeze notice instead of the reminder:
	// Extend becomes "Retry failed nodes" (a ddl_freeze on an open freeze
	// retries the nodes not frozen), Unfreeze "Unfreeze all".
	Partial bool
}

// RenderFreezeReminder renders the reminder posted before a freeze
// expires, with Extend and Unfreeze buttons (each requests its action:
// the approval flow applies, as for any offered action).
func RenderFreezeReminder(v FreezeView) Message {
	head := fmt.Sprintf(":snowflake: *DDL freeze on %s expires %s* — chmedic lifts it by itself then.", escape(v.Cluster), slackDate(v.ExpiresAt))
	extend, unfreeze := "Extend "+shortDuration(v.Extend), "Unfreeze now"
	if v.Partial {
		head = fmt.Sprintf(":warning: *DDL freeze on %s is partial*: some nodes are not frozen. It expires %s either way.", escape(v.Cluster), slackDate(v.ExpiresAt))
		extend, unfreeze = "Retry failed nodes", "Unfreeze all"
	}
	body := fmt.Sprintf("%s freeze (%s) of %s.", escape(v.State), escape(v.Method), escape(strings.Join(v.Targets, ", ")))
	if len(v.Nodes) > 0 {
		body += "\nNodes: " + escape(strings.Join(v.Nodes, ", "))
	}
	if v.Partial {
		body += "\nRetry asks for a new freeze request that applies the freeze to the nodes not frozen (approval applies); Unfreeze all lifts it everywhere (its own policy)."
	} else {
		body += "\nExtend asks for a new freeze request (approval applies); Unfreeze lifts it now (its own policy)."
	}
	bs := []slack.Block{section("freeze-reminder", head+"\n"+body)}
	var els []slack.BlockElement
	if v.ExtendOffer != "" {
		els = append(els, slack.NewButtonBlockElement("chmedic:ddl_freeze:0", v.ExtendOffer, plain(clip(extend, MaxButtonText))))
	}
	if v.UnfreezeOffer != "" {
		b := slack.NewButtonBlockElement("chmedic:ddl_unfreeze:1", v.UnfreezeOffer, plain(unfreeze))
		b.Style = slack.StylePrimary
		els = append(els, b)
	}
	if len(els) > 0 {
		bs = append(bs, slack.NewActionBlock("freeze-actions", els...))
	}
	bs = append(bs, slack.NewContextBlock("freeze-id", mrkdwn("freeze `"+escape(v.ID)+"` · `chmedic freezes` lists it")))
	text := fmt.Sprintf("DDL freeze on %s expires at %s; chmedic lifts it by itself then", v.Cluster, v.ExpiresAt.UTC().Format("15:04 UTC"))
	return Message{Text: clip(escape(text), MaxFallbackText), Blocks: slack.Blocks{BlockSet: bs}, Plain: text}
}

// RenderFreezeNotice is a one-section notice about a freeze (its lift at
// expiry, a failed lift).
func RenderFreezeNotice(text string) Message {
	return Message{Text: clip(escape(text), MaxFallbackText), Blocks: slack.Blocks{BlockSet: []slack.Block{section("freeze-notice", escape(text))}}, Plain: text}
}

// shortDuration writes 30m0s as 30m and 2h0m0s as 2h.
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
