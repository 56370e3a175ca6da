package slack

import (
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/slack-go/slack"
)

// packSections lays lines out in as many sections of at most MaxTextLen
// characters as they need (block ids id, id-2, id-3, …), at most
// maxBlocks of them, so that a plan or a result is never clipped to one
// section. What does not fit in maxBlocks is cut at a line boundary, and
// the last section says how many lines were left out. A single line longer
// than a section is clipped.
func packSections(id string, lines []string, maxBlocks int) []slack.Block {
	if maxBlocks < 1 {
		maxBlocks = 1
	}
	const noteRoom = 200
	var chunks [][]string
	var cur []string
	n := 0
	for _, l := range lines {
		l = clip(l, MaxTextLen-noteRoom)
		ln := utf8.RuneCountInString(l)
		if len(cur) > 0 && n+1+ln > MaxTextLen {
			chunks = append(chunks, cur)
			cur, n = nil, 0
		}
		if len(cur) > 0 {
			n++
		}
		cur = append(cur, l)
		n += ln
	}
	if len(cur) > 0 {
		chunks = append(chunks, cur)
	}
	if len(chunks) > maxBlocks {
		shown := 0
		for _, c := range chunks[:maxBlocks-1] {
			shown += len(c)
		}
		last := chunks[maxBlocks-1]
		for len(last) > 1 && utf8.RuneCountInString(strings.Join(last, "\n")) > MaxTextLen-noteRoom {
			last = last[:len(last)-1]
		}
		shown += len(last)
		note := fmt.Sprintf("_… %d more not shown (Slack's %d-block limit); what runs is the whole stored plan, hash below._", len(lines)-shown, MaxBlocks)
		chunks = append(chunks[:maxBlocks-1], append(last, note))
	}
	out := make([]slack.Block, len(chunks))
	for i, c := range chunks {
		bid := id
		if i > 0 {
			bid = fmt.Sprintf("%s-%d", id, i+1)
		}
		out[i] = section(bid, strings.Join(c, "\n"))
	}
	return out
}
