package slashcmd

import (
	"fmt"
	"strings"
)

// Subcommands of the slash command.
const (
	SubDiagnose = "diagnose"
	SubDigest   = "digest"
	SubFreezes  = "freezes"
	SubHelp     = "help"
)

// FlagPrivate makes diagnose and digest answer only the user who typed it,
// also in a channel where they would answer in the channel.
const FlagPrivate = "--private"

// maxText bounds the text read from a command (Slack sends at most a few
// thousand characters; nothing chmedic understands is longer than this).
const maxText = 512

// Invocation is a parsed command text.
type Invocation struct {
	Sub     string // one of the Sub* constants
	Cluster string // "" when none was named
	Private bool
}

// ParseError is a command text chmedic does not understand; its message is
// shown to the user (it holds what they typed: escape it for mrkdwn).
type ParseError struct{ Msg string }

func (e *ParseError) Error() string { return e.Msg }

// Parse reads the text after the command: a subcommand (help when empty),
// at most one cluster for diagnose and digest, and --private.
func Parse(text string) (Invocation, error) {
	if len(text) > maxText {
		return Invocation{}, &ParseError{Msg: fmt.Sprintf("The command is too long (%d characters; at most %d).", len(text), maxText)}
	}
	fields := strings.Fields(text)
	if len(fields) == 0 {
		return Invocation{Sub: SubHelp}, nil
	}
	inv := Invocation{Sub: strings.ToLower(fields[0])}
	var args []string
	for _, f := range fields[1:] {
		switch {
		case f == FlagPrivate:
			inv.Private = true
		case strings.HasPrefix(f, "-"):
			return inv, &ParseError{Msg: fmt.Sprintf("Unknown option %q (the only option is %s).", f, FlagPrivate)}
		default:
			args = append(args, f)
		}
	}
	switch inv.Sub {
	case SubDiagnose, SubDigest:
		if len(args) > 1 {
			return inv, &ParseError{Msg: fmt.Sprintf("%s takes at most one cluster, got %d: %s.", inv.Sub, len(args), strings.Join(args, " "))}
		}
		if len(args) == 1 {
			inv.Cluster = args[0]
		}
	case SubFreezes, SubHelp:
		if len(args) > 0 { // --private changes nothing: they always answer privately
			return inv, &ParseError{Msg: fmt.Sprintf("%s takes no argument.", inv.Sub)}
		}
	default:
		return inv, &ParseError{Msg: fmt.Sprintf("Unknown subcommand %q.", fields[0])}
	}
	return inv, nil
}
