package actions

import (
	"regexp"
	"strings"
)

// Redaction of secrets in everything collect_logs writes: queries in
// system tables, server log lines (which quote queries), four-letter-word
// outputs. It runs before anything reaches a file; each replacement is
// counted, and the manifest reports the counts.

// Redacted replaces a secret.
const Redacted = "[REDACTED]"

var (
	// 'string literal' with SQL escapes.
	sqlString = `'(?:[^'\\]|\\.|'')*'`
	// "string" with escapes.
	dqString = `"(?:[^"\\]|\\.)*"`

	redactRules = []struct {
		re   *regexp.Regexp
		repl string
	}{
		// CREATE/ALTER USER ... IDENTIFIED [WITH method] BY 'secret'
		{regexp.MustCompile(`(?i)(\bIDENTIFIED\s+(?:WITH\s+\w+\s+)?BY\s+)(` + sqlString + `|` + dqString + `)`), "${1}'" + Redacted + "'"},
		// IDENTIFIED WITH plaintext_password|sha256_password ... 'x' written
		// without BY is not valid SQL; nothing to do.
		// PASSWORD 'x', password = 'x', SET PASSWORD 'x', key = 'x' for
		// secret-bearing keys (named collections, settings).
		{regexp.MustCompile(`(?i)(\b(?:password|passwd|secret|secret_access_key|access_key_id|aws_secret_access_key|session_token|token|api_key|private_key|connection_string)\b\s*(?:=|:)?\s*)(` + sqlString + `|` + dqString + `)`), "${1}'" + Redacted + "'"},
		// user:password@ in URLs and DSNs.
		{regexp.MustCompile(`(?i)(\b[a-z][a-z0-9+.-]*://[^\s/:@'"]*:)([^\s@/'"]+)(@)`), "${1}" + Redacted + "${3}"},
		// password=... in URLs, DSNs and key=value strings.
		{regexp.MustCompile(`(?i)(\b(?:password|passwd|pwd|secret|token|access_key|secret_access_key|api_key|sig|signature)=)([^\s&;'",)]+)`), "${1}" + Redacted},
		// Authorization headers, in any quoting: Authorization: Bearer x,
		// 'Authorization'='Basic x', X-ClickHouse-Key: x.
		{regexp.MustCompile(`(?i)((?:proxy-)?authorization|x-clickhouse-key|x-api-key)(['"]?\s*[:=]\s*['"]?)((?:bearer|basic|token|digest)\s+)?([^\s'",)]+)`), "${1}${2}${3}" + Redacted},
		// ZooKeeper digest credentials: addauth digest user:pass,
		// superDigest=super:hash
		{regexp.MustCompile(`(?i)(digest[\s=:]+[^\s:'"]+:)([^\s'",)]+)`), "${1}" + Redacted},
	}

	// Table functions whose arguments carry credentials, and which argument
	// positions (0-based) do.
	tableFuncRE = regexp.MustCompile(`(?i)\b(s3|s3Cluster|gcs|oss|cosn|url|urlCluster|mysql|postgresql|remote|remoteSecure|mongodb|redis|azureBlobStorage|azureBlobStorageCluster|hdfs|deltaLake|hudi|iceberg|icebergS3|s3Queue|jdbc|odbc|sqlite|MySQL|PostgreSQL|MongoDB|S3)\s*\(`)

	formatNameRE = regexp.MustCompile(`(?i)^(auto|CSV\w*|TSV\w*|TabSeparated\w*|JSON\w*|Parquet|ORC|Arrow\w*|Avro\w*|Native|RowBinary\w*|Values|Raw\w*|LineAsString\w*|Protobuf\w*|CapnProto|Template\w*|Regexp|MsgPack|Npy|BSON\w*|One|Form|Markdown|Pretty\w*|XML|Vertical|Null|Prometheus|SQLInsert|CustomSeparated\w*|MySQLDump|Hive\w*|NDJSON|JSONL)$`)
)

// Redactor redacts secrets and counts the replacements.
type Redactor struct {
	Count int
}

// String returns s with its secrets replaced by [REDACTED].
func (r *Redactor) String(s string) string {
	if s == "" {
		return s
	}
	s = r.tableFunctions(s)
	for _, rule := range redactRules {
		s = rule.re.ReplaceAllStringFunc(s, func(m string) string {
			out := rule.re.ReplaceAllString(m, rule.repl)
			if out != m {
				r.Count++
			}
			return out
		})
	}
	return s
}

// tableFunctions redacts the credential arguments of table functions:
// s3-like (url, key id, secret, ...) unless the second argument is a
// format; mysql/postgresql/remote/mongodb/redis-like (…, user, password):
// the fifth argument; jdbc/odbc connection strings are left to the
// password= rule.
func (r *Redactor) tableFunctions(s string) string {
	locs := tableFuncRE.FindAllStringSubmatchIndex(s, -1)
	if locs == nil {
		return s
	}
	var b strings.Builder
	last := 0
	for _, loc := range locs {
		if loc[0] < last {
			continue
		}
		name := strings.ToLower(s[loc[2]:loc[3]])
		open := loc[1] // just after '('
		args, end := splitArgs(s, open)
		if end < 0 {
			continue
		}
		var redact []int
		switch name {
		case "s3", "s3cluster", "gcs", "oss", "cosn", "azureblobstorage", "azureblobstoragecluster", "deltalake", "hudi", "iceberg", "icebergs3", "s3queue":
			first := 1
			if name == "s3cluster" || name == "azureblobstoragecluster" {
				first = 2
			}
			if len(args) > first+1 && !isFormatArg(s, args[first]) {
				redact = []int{first, first + 1}
			}
		case "mysql", "postgresql", "remote", "remotesecure", "mongodb", "redis":
			if len(args) > 4 {
				redact = []int{4}
			}
		}
		if len(redact) == 0 {
			continue
		}
		b.WriteString(s[last:loc[0]])
		pos := loc[0]
		for _, i := range redact {
			a := args[i]
			lit := strings.TrimSpace(s[a[0]:a[1]])
			if !strings.HasPrefix(lit, "'") || lit == "'"+Redacted+"'" {
				continue
			}
			b.WriteString(s[pos:a[0]])
			lead := s[a[0]:a[1]][:len(s[a[0]:a[1]])-len(strings.TrimLeft(s[a[0]:a[1]], " \t\n"))]
			b.WriteString(lead + "'" + Redacted + "'")
			pos = a[1]
			r.Count++
		}
		b.WriteString(s[pos:end])
		last = end
	}
	if last == 0 {
		return s
	}
	b.WriteString(s[last:])
	return b.String()
}

func isFormatArg(s string, a [2]int) bool {
	lit := strings.TrimSpace(s[a[0]:a[1]])
	lit = strings.Trim(lit, `'"`)
	return formatNameRE.MatchString(lit)
}

// splitArgs returns the [start, end) offsets of the top-level arguments of
// a call whose "(" ends at open, and the offset just past its ")", or -1
// when the call is not closed (a truncated line).
func splitArgs(s string, open int) ([][2]int, int) {
	var args [][2]int
	depth := 0
	start := open
	for i := open; i < len(s); i++ {
		switch c := s[i]; c {
		case '\'', '"', '`':
			j := i + 1
			for j < len(s) && s[j] != c {
				if s[j] == '\\' {
					j++
				}
				j++
			}
			i = j
		case '(', '[':
			depth++
		case ')', ']':
			if depth == 0 {
				if i > start || len(args) > 0 {
					args = append(args, [2]int{start, i})
				}
				return args, i + 1
			}
			depth--
		case ',':
			if depth == 0 {
				args = append(args, [2]int{start, i})
				start = i + 1
			}
		}
	}
	return nil, -1
}

// Value redacts the strings in a row value (string, []string, maps of
// strings); other values are returned as they are.
func (r *Redactor) Value(v any) any {
	switch x := v.(type) {
	case string:
		return r.String(x)
	case *string:
		if x == nil {
			return nil
		}
		return r.String(*x)
	case []string:
		out := make([]string, len(x))
		for i, s := range x {
			out[i] = r.String(s)
		}
		return out
	case map[string]string:
		out := make(map[string]string, len(x))
		for k, s := range x {
			out[k] = r.String(s)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = r.Value(e)
		}
		return out
	case [][]string:
		out := make([][]string, len(x))
		for i, e := range x {
			out[i] = r.Value(e).([]string)
		}
		return out
	}
	return v
}
