package grants

import (
	"fmt"
	"strings"
)

// Scope is the ON clause of a grant.
type Scope struct {
	// Database is empty for *.* (and for a parameter scope).
	Database string `json:"database,omitempty"`
	// Table is empty for db.* and *.*.
	Table string `json:"table,omitempty"`
	// Columns, when set, narrow a table scope to these columns.
	Columns []string `json:"columns,omitempty"`
	// Wildcard: the last name is a prefix (db*.* or db.tab*).
	Wildcard bool `json:"wildcard,omitempty"`
	// Parameter is set for global privileges with a parameter (ON S3,
	// ON named_collection, ON * when AnyParameter).
	Parameter    string `json:"parameter,omitempty"`
	IsParameter  bool   `json:"is_parameter,omitempty"`
	AnyParameter bool   `json:"any_parameter,omitempty"`
}

// Depth is the level the scope stands for.
func (s Scope) Depth() Level {
	switch {
	case s.IsParameter || s.Database == "":
		return Global
	case s.Table == "":
		return Database
	case len(s.Columns) == 0:
		return Table
	default:
		return Column
	}
}

// IsGlobal reports whether the scope is *.*.
func (s Scope) IsGlobal() bool { return !s.IsParameter && s.Database == "" }

// String formats the object of the ON clause, identifiers quoted
// (`db`.`t`, `db`.*, *.*); columns are not part of it.
func (s Scope) String() string {
	switch {
	case s.IsParameter && s.AnyParameter:
		return "*"
	case s.IsParameter:
		return QuoteIdent(s.Parameter) + wild(s.Wildcard)
	case s.Database == "":
		return "*.*"
	case s.Table == "":
		return QuoteIdent(s.Database) + wild(s.Wildcard) + ".*"
	default:
		return QuoteIdent(s.Database) + "." + QuoteIdent(s.Table) + wild(s.Wildcard)
	}
}

func wild(w bool) string {
	if w {
		return "*"
	}
	return ""
}

// Grant is one privilege of a SHOW GRANTS statement.
type Grant struct {
	// Privilege is the canonical name ("ALTER UPDATE", "CREATE", "SELECT").
	Privilege   string `json:"privilege"`
	Scope       Scope  `json:"scope"`
	GrantOption bool   `json:"grant_option,omitempty"`
	// PartialRevoke marks a REVOKE line: the privilege (or, with
	// GrantOption, only its grant option) is taken away on Scope from what
	// wider grants gave.
	PartialRevoke bool `json:"partial_revoke,omitempty"`
}

// String formats the grant as ClickHouse would print it, without grantee:
// "CREATE TABLE ON `db`.*", "SELECT(`a`) ON `db`.`t`".
func (g Grant) String() string {
	s := g.Privilege + columns(g.Scope.Columns) + " ON " + g.Scope.String()
	switch {
	case g.PartialRevoke && g.GrantOption:
		return "REVOKE GRANT OPTION FOR " + s
	case g.PartialRevoke:
		return "REVOKE " + s
	case g.GrantOption:
		return s + " WITH GRANT OPTION"
	}
	return s
}

func columns(cols []string) string {
	if len(cols) == 0 {
		return ""
	}
	q := make([]string, len(cols))
	for i, c := range cols {
		q[i] = QuoteIdent(c)
	}
	return "(" + strings.Join(q, ", ") + ")"
}

// RoleGrant is a role granted to the target (GRANT r TO u).
type RoleGrant struct {
	Role        string `json:"role"`
	AdminOption bool   `json:"admin_option,omitempty"`
}

// Statement is one parsed GRANT or REVOKE statement.
type Statement struct {
	Revoke bool
	// Grants is set for privilege statements (with the statement's grant
	// option and revoke flag copied into each).
	Grants []Grant
	// Roles is set for role statements.
	Roles       []string
	AdminOption bool
	Grantees    []string
}

// ParseStatement parses one GRANT or REVOKE statement in the form SHOW
// GRANTS prints it (an optional trailing semicolon and a leading ATTACH are
// accepted). Errors say what was expected and where.
func ParseStatement(text string) (Statement, error) {
	toks, err := tokenize(text)
	if err != nil {
		return Statement{}, err
	}
	p := &parser{toks: toks, text: text}
	st, err := p.statement()
	if err != nil {
		return Statement{}, fmt.Errorf("parse %q: %w", text, err)
	}
	return st, nil
}

type parser struct {
	toks []token
	text string
}

func (p *parser) statement() (Statement, error) {
	var st Statement
	toks := p.toks
	if n := len(toks); n > 0 && toks[n-1].is(";") {
		toks = toks[:n-1]
	}
	if len(toks) > 0 && toks[0].word("ATTACH") {
		toks = toks[1:]
	}
	if len(toks) == 0 {
		return st, fmt.Errorf("empty statement")
	}
	switch {
	case toks[0].word("GRANT"):
	case toks[0].word("REVOKE"):
		st.Revoke = true
	default:
		return st, fmt.Errorf("want GRANT or REVOKE, got %s", toks[0])
	}
	toks = toks[1:]
	grantOption := false
	if st.Revoke && len(toks) >= 2 && toks[1].word("OPTION") && (toks[0].word("GRANT") || toks[0].word("ADMIN")) {
		if toks[0].word("GRANT") {
			grantOption = true
		} else {
			st.AdminOption = true
		}
		toks = toks[2:]
		if len(toks) > 0 && toks[0].word("FOR") {
			toks = toks[1:]
		}
	}
	// Trailing WITH ... OPTION.
	if n := len(toks); n >= 3 && toks[n-3].word("WITH") && toks[n-1].word("OPTION") {
		switch {
		case toks[n-2].word("GRANT"):
			grantOption = true
		case toks[n-2].word("ADMIN"):
			st.AdminOption = true
		case toks[n-2].word("REPLACE"):
		default:
			return st, fmt.Errorf("unknown option WITH %s OPTION", toks[n-2])
		}
		toks = toks[:n-3]
	}
	// Grantees, read backwards: name {, name} after the last TO / FROM.
	i := len(toks) - 1
	for {
		if i < 0 || !toks[i].isName() {
			return st, fmt.Errorf("want a grantee at the end")
		}
		st.Grantees = append([]string{toks[i].text}, st.Grantees...)
		i--
		if i >= 0 && toks[i].is(",") {
			i--
			continue
		}
		break
	}
	kw := "TO"
	if st.Revoke {
		kw = "FROM"
	}
	if i < 0 || !toks[i].word(kw) {
		return st, fmt.Errorf("want %s before the grantees", kw)
	}
	body := toks[:i]
	if len(body) == 0 {
		return st, fmt.Errorf("nothing to %s", strings.ToLower(toks[0].text))
	}
	if hasTopLevelOn(body) {
		if st.AdminOption {
			return st, fmt.Errorf("ADMIN OPTION with privileges")
		}
		gs, err := parsePrivileges(body)
		if err != nil {
			return st, err
		}
		for j := range gs {
			gs[j].GrantOption = grantOption
			gs[j].PartialRevoke = st.Revoke
		}
		st.Grants = gs
		return st, nil
	}
	if grantOption {
		return st, fmt.Errorf("GRANT OPTION with roles")
	}
	for j := 0; j < len(body); j++ {
		if !body[j].isName() {
			return st, fmt.Errorf("want a role name, got %s", body[j])
		}
		st.Roles = append(st.Roles, body[j].text)
		if j+1 < len(body) {
			j++
			if !body[j].is(",") {
				return st, fmt.Errorf("want , between roles, got %s", body[j])
			}
		}
	}
	return st, nil
}

func hasTopLevelOn(toks []token) bool {
	depth := 0
	for _, t := range toks {
		switch {
		case t.is("("):
			depth++
		case t.is(")"):
			depth--
		case depth == 0 && t.word("ON"):
			return true
		}
	}
	return false
}

// parsePrivileges reads: priv[(cols)] {, priv[(cols)]} ON object {, ...}.
func parsePrivileges(toks []token) ([]Grant, error) {
	var out, pending []Grant
	i := 0
	for i < len(toks) {
		// One privilege: words up to ( , or ON.
		var words []string
		for i < len(toks) && toks[i].kind == tWord && !toks[i].word("ON") {
			words = append(words, toks[i].text)
			i++
		}
		if len(words) == 0 {
			return nil, fmt.Errorf("want a privilege, got %s", at(toks, i))
		}
		g := Grant{Privilege: Canonical(strings.Join(words, " "))}
		if i < len(toks) && toks[i].is("(") {
			i++
			for {
				if i >= len(toks) || !toks[i].isName() {
					return nil, fmt.Errorf("want a column name, got %s", at(toks, i))
				}
				c := toks[i].text
				i++
				if i < len(toks) && toks[i].is("*") {
					c += "*"
					i++
				}
				g.Scope.Columns = append(g.Scope.Columns, c)
				if i < len(toks) && toks[i].is(",") {
					i++
					continue
				}
				if i < len(toks) && toks[i].is(")") {
					i++
					break
				}
				return nil, fmt.Errorf("want , or ) in a column list, got %s", at(toks, i))
			}
		}
		pending = append(pending, g)
		if i < len(toks) && toks[i].is(",") {
			i++
			continue
		}
		if i >= len(toks) || !toks[i].word("ON") {
			return nil, fmt.Errorf("want ON after %s, got %s", g.Privilege, at(toks, i))
		}
		i++
		scope, n, err := parseObject(toks[i:])
		if err != nil {
			return nil, err
		}
		i += n
		for _, pg := range pending {
			cols := pg.Scope.Columns
			pg.Scope = scope
			pg.Scope.Columns = cols
			if len(cols) > 0 && (scope.Table == "" || scope.Wildcard) {
				return nil, fmt.Errorf("%s: columns need a table, got ON %s", pg.Privilege, scope)
			}
			if pg.Privilege == "NONE" {
				continue // USAGE: nothing
			}
			out = append(out, pg)
		}
		pending = nil
		if i < len(toks) {
			if !toks[i].is(",") {
				return nil, fmt.Errorf("want , or TO after ON %s, got %s", scope, at(toks, i))
			}
			i++
			if i >= len(toks) {
				return nil, fmt.Errorf("want a privilege after ,")
			}
		}
	}
	if len(pending) > 0 {
		return nil, fmt.Errorf("want ON after %s", pending[len(pending)-1].Privilege)
	}
	return out, nil
}

// parseObject reads *.*, *, db.*, db*.*, db.t, db.t*, or a parameter name
// (with an optional parenthesised filter), and returns how many tokens it
// used.
func parseObject(toks []token) (Scope, int, error) {
	var s Scope
	i := 0
	if i < len(toks) && toks[i].is("*") {
		i++
		if i+1 < len(toks) && toks[i].is(".") && toks[i+1].is("*") {
			return s, i + 2, nil
		}
		return Scope{IsParameter: true, AnyParameter: true}, i, nil
	}
	if i >= len(toks) || !toks[i].isName() {
		return s, 0, fmt.Errorf("want *.*, db.*, db.table or a name after ON, got %s", at(toks, i))
	}
	first := toks[i].text
	i++
	firstWild := false
	if i < len(toks) && toks[i].is("*") {
		firstWild = true
		i++
	}
	if i < len(toks) && toks[i].is(".") {
		i++
		s.Database = first
		if firstWild {
			if i >= len(toks) || !toks[i].is("*") {
				return s, 0, fmt.Errorf("want .* after the database prefix %s*", first)
			}
			s.Wildcard = true
			return s, i + 1, nil
		}
		if i < len(toks) && toks[i].is("*") {
			return s, i + 1, nil
		}
		if i >= len(toks) || !toks[i].isName() {
			return s, 0, fmt.Errorf("want a table or * after %s., got %s", first, at(toks, i))
		}
		s.Table = toks[i].text
		i++
		if i < len(toks) && toks[i].is("*") {
			s.Wildcard = true
			i++
		}
		return s, i, nil
	}
	s = Scope{IsParameter: true, Parameter: first, Wildcard: firstWild}
	if i < len(toks) && toks[i].is("(") { // a filter: ON URL('...')
		depth := 0
		for ; i < len(toks); i++ {
			if toks[i].is("(") {
				depth++
			} else if toks[i].is(")") {
				depth--
				if depth == 0 {
					i++
					break
				}
			}
		}
	}
	return s, i, nil
}

func at(toks []token, i int) string {
	if i >= len(toks) {
		return "the end"
	}
	return toks[i].String()
}

type tokenKind int

const (
	tWord   tokenKind = iota // bare identifier or keyword
	tQuoted                  // `quoted` or "quoted" identifier
	tString                  // 'string'
	tPunct
)

type token struct {
	kind tokenKind
	text string // unquoted
}

func (t token) is(p string) bool   { return t.kind == tPunct && t.text == p }
func (t token) word(w string) bool { return t.kind == tWord && strings.EqualFold(t.text, w) }
func (t token) isName() bool       { return t.kind == tWord || t.kind == tQuoted }
func (t token) String() string {
	switch t.kind {
	case tQuoted:
		return QuoteIdent(t.text)
	case tString:
		return "'" + t.text + "'"
	}
	return fmt.Sprintf("%q", t.text)
}

func tokenize(s string) ([]token, error) {
	var out []token
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c == '`' || c == '"' || c == '\'':
			text, n, err := unquote(s[i:], c)
			if err != nil {
				return nil, fmt.Errorf("parse %q at %d: %w", s, i, err)
			}
			kind := tQuoted
			if c == '\'' {
				kind = tString
			}
			out = append(out, token{kind, text})
			i += n
		case isWordByte(c):
			j := i
			for j < len(s) && isWordByte(s[j]) {
				j++
			}
			out = append(out, token{tWord, s[i:j]})
			i = j
		case strings.IndexByte(",().*;", c) >= 0:
			out = append(out, token{tPunct, string(c)})
			i++
		default:
			return nil, fmt.Errorf("parse %q at %d: unexpected %q", s, i, c)
		}
	}
	return out, nil
}

func isWordByte(c byte) bool {
	return c == '_' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= 0x80
}

// unquote reads a quoted token starting at s[0] == q: a doubled quote or a
// backslash escape stands for itself (ClickHouse writes \` and \\; \n, \t,
// \r, \0, \b, \f, \a, \v, \e and \xHH are decoded).
func unquote(s string, q byte) (string, int, error) {
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\\' && i+1 < len(s):
			i++
			switch e := s[i]; e {
			case 'n':
				b.WriteByte('\n')
			case 't':
				b.WriteByte('\t')
			case 'r':
				b.WriteByte('\r')
			case '0':
				b.WriteByte(0)
			case 'b':
				b.WriteByte('\b')
			case 'f':
				b.WriteByte('\f')
			case 'a':
				b.WriteByte('\a')
			case 'v':
				b.WriteByte('\v')
			case 'e':
				b.WriteByte(0x1b)
			case 'x':
				if i+2 < len(s) {
					var v byte
					if _, err := fmt.Sscanf(s[i+1:i+3], "%02x", &v); err == nil {
						b.WriteByte(v)
						i += 2
						continue
					}
				}
				b.WriteByte('x')
			default:
				b.WriteByte(e)
			}
		case c == q:
			if i+1 < len(s) && s[i+1] == q {
				b.WriteByte(q)
				i++
				continue
			}
			return b.String(), i + 1, nil
		default:
			b.WriteByte(c)
		}
	}
	return "", 0, fmt.Errorf("unterminated %c", q)
}

// QuoteIdent back-quotes an identifier for a ClickHouse statement, always
// (a bare user name such as ALL or CURRENT_USER would change the meaning of
// a REVOKE): backslash and back-quote are escaped with a backslash, control
// characters as \n, \t, \r, \0 or \xHH.
func QuoteIdent(name string) string {
	var b strings.Builder
	b.WriteByte('`')
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c == '`' || c == '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case c == '\n':
			b.WriteString(`\n`)
		case c == '\t':
			b.WriteString(`\t`)
		case c == '\r':
			b.WriteString(`\r`)
		case c == 0:
			b.WriteString(`\0`)
		case c < 0x20 || c == 0x7f:
			fmt.Fprintf(&b, `\x%02x`, c)
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('`')
	return b.String()
}
