// Package profile owns the profile method of the DDL freeze: the users.d
// override file that sets allow_ddl to 0 in the targets' settings profiles
// (for servers without SQL access control, such as 18.16, and for users
// defined in users.xml, which SQL cannot change), a local-path writer for a
// chmedic that runs beside the server, and the verifier that reads the
// effective setting in a new session.
//
// ClickHouse merges every *.xml file of the users.d directory beside its
// users config (users.xml → users.d/) into it and re-reads the result by
// itself when a file's modification time changes or a file appears or
// disappears (about every 2 s on 18.16): an element of the override merges
// into the element of the same name, so <profiles><app_profile><allow_ddl>
// changes one setting of an existing profile and nothing else. New sessions
// of the profile's users then get code 392 (QUERY_IS_PROHIBITED, "DDL
// queries are prohibited for the user") on CREATE, ALTER, DROP, RENAME,
// TRUNCATE and OPTIMIZE; INSERT and SELECT keep working. A session opened
// before the freeze keeps the settings it logged in with: a pooled native
// connection keeps running DDL until it reconnects. The plan must say so.
//
// CREATE TEMPORARY TABLE stays allowed (18.16 exempts temporary tables from
// allow_ddl), as it should: it does not touch the coordination service.
package profile

import (
	"bytes"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/chmedic/chmedic/internal/clickhouse"
)

// FileName is the override's name in users.d.
const FileName = "chmedic-ddl-freeze.xml"

// DefaultDir is the users.d directory of the Debian/RPM packages and the
// official images (beside /etc/clickhouse-server/users.xml).
const DefaultDir = "/etc/clickhouse-server/users.d"

// Setting is the setting the override sets to 0.
const Setting = "allow_ddl"

// headerPrefix starts the comment that marks a file as chmedic's.
const headerPrefix = "<!-- Written by chmedic: DDL freeze "

// Root elements of ClickHouse config files.
const (
	RootYandex     = "yandex"
	RootClickHouse = "clickhouse"
)

// RootFor returns the root element for a server version. Before 21.x
// ClickHouse required every merged file to have the main file's root, which
// could only be <yandex>; <clickhouse> came with ClickHouse PR #29182
// (autumn 2021), together with accepting a mix of the two. chmedic writes
// <yandex> below 22.1 (and for an unknown version: every release accepts it
// when the main users file uses it, and releases that know <clickhouse>
// accept a mix) and <clickhouse> from 22.1 on, well past the change.
func RootFor(v clickhouse.Version) string {
	if v.IsZero() || !v.AtLeast(22, 1) {
		return RootYandex
	}
	return RootClickHouse
}

// Override is the content of the freeze file.
type Override struct {
	// FreezeID names the freeze in the header (letters, digits, ._:-).
	FreezeID string
	// Profiles are the settings profiles to freeze (valid XML names).
	Profiles []string
	// Expires is when chmedic lifts the freeze by itself.
	Expires time.Time
	// Root is RootYandex or RootClickHouse (RootFor).
	Root string
}

var (
	xmlName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_.-]*$`)
	idChars = regexp.MustCompile(`^[A-Za-z0-9._:-]+$`)
)

// Render returns the file's content, fixed by chmedic: the header comment
// (chmedic, the freeze id, the expiry in UTC), then allow_ddl = 0 in each
// profile, sorted and deduplicated, so that the same freeze always gives
// the same bytes.
func Render(o Override) ([]byte, error) {
	if o.Root != RootYandex && o.Root != RootClickHouse {
		return nil, fmt.Errorf("ddl freeze override: root element %q: want %s or %s", o.Root, RootYandex, RootClickHouse)
	}
	if !idChars.MatchString(o.FreezeID) || strings.Contains(o.FreezeID, "--") {
		return nil, fmt.Errorf("ddl freeze override: freeze id %q: want letters, digits and ._:- (no --)", o.FreezeID)
	}
	if o.Expires.IsZero() {
		return nil, fmt.Errorf("ddl freeze override: no expiry")
	}
	profiles := slices.Clone(o.Profiles)
	slices.Sort(profiles)
	profiles = slices.Compact(profiles)
	if len(profiles) == 0 {
		return nil, fmt.Errorf("ddl freeze override: no profiles")
	}
	for _, p := range profiles {
		if !xmlName.MatchString(p) || strings.HasPrefix(strings.ToLower(p), "xml") {
			return nil, fmt.Errorf("ddl freeze override: profile %q is not a name users.xml can hold", p)
		}
	}
	var b bytes.Buffer
	b.WriteString("<?xml version=\"1.0\"?>\n")
	fmt.Fprintf(&b, "%s%s, expires %s. -->\n", headerPrefix, o.FreezeID, o.Expires.UTC().Format(time.RFC3339))
	b.WriteString("<!-- chmedic removes this file when it lifts the freeze; removing it by hand lifts it too. -->\n")
	fmt.Fprintf(&b, "<%s>\n    <profiles>\n", o.Root)
	for _, p := range profiles {
		fmt.Fprintf(&b, "        <%[1]s>\n            <%[2]s>0</%[2]s>\n        </%[1]s>\n", p, Setting)
	}
	fmt.Fprintf(&b, "    </profiles>\n</%s>\n", o.Root)
	return b.Bytes(), nil
}

// Header is what the header comment of a chmedic override says.
type Header struct {
	FreezeID string
	Expires  time.Time
}

var headerRE = regexp.MustCompile(`(?m)^<!-- Written by chmedic: DDL freeze ([A-Za-z0-9._:-]+), expires ([0-9TZ:+-]+)\. -->$`)

// ParseHeader reports whether content was written by chmedic (Render) and
// what its header says.
func ParseHeader(content []byte) (Header, bool) {
	head := content
	if len(head) > 1024 {
		head = head[:1024]
	}
	m := headerRE.FindSubmatch(head)
	if m == nil {
		return Header{}, false
	}
	exp, err := time.Parse(time.RFC3339, string(m[2]))
	if err != nil {
		return Header{}, false
	}
	return Header{FreezeID: string(m[1]), Expires: exp}, true
}
