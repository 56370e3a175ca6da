package testenv

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
)

// binaries are the installed programs the environment runs.
type binaries struct {
	clickhouse     string   // clickhouse-server, or the multi-call clickhouse binary
	clickhouseArgs []string // ["server"] for the multi-call binary
	java           string
	zkClasspath    []string // zookeeper jar first, then logging jars
	alertmanager   string
}

// Environment variables that override where the programs are found.
const (
	envClickHouseServer = "CHMEDIC_CLICKHOUSE_SERVER" // path to clickhouse-server
	envJava             = "CHMEDIC_JAVA"              // path to java
	envZooKeeperJar     = "CHMEDIC_ZOOKEEPER_JAR"     // path to the ZooKeeper server jar
	envAlertmanager     = "CHMEDIC_ALERTMANAGER"      // path to alertmanager
)

const javaDir = "/usr/share/java"

// findBinaries locates every program; its error names all that are missing.
func findBinaries() (*binaries, error) {
	var b binaries
	var missing []string

	switch p := firstExecutable(os.Getenv(envClickHouseServer), "clickhouse-server", "/usr/sbin/clickhouse-server", "/usr/bin/clickhouse-server"); {
	case p != "":
		b.clickhouse = p
	default:
		if p := firstExecutable("clickhouse", "/usr/bin/clickhouse"); p != "" {
			b.clickhouse, b.clickhouseArgs = p, []string{"server"}
		} else {
			missing = append(missing, "clickhouse-server (Debian package clickhouse-server)")
		}
	}

	javaHome := ""
	if h := os.Getenv("JAVA_HOME"); h != "" {
		javaHome = filepath.Join(h, "bin", "java")
	}
	if b.java = firstExecutable(os.Getenv(envJava), "java", javaHome, "/usr/bin/java"); b.java == "" {
		missing = append(missing, "java (Debian package default-jre-headless, a dependency of zookeeper)")
	}

	zk := os.Getenv(envZooKeeperJar)
	if zk == "" {
		zk = findJar("zookeeper")
	}
	if zk == "" || !isFile(zk) {
		missing = append(missing, "the ZooKeeper server jar "+javaDir+"/zookeeper.jar (Debian package zookeeper)")
	} else {
		b.zkClasspath = append(b.zkClasspath, zk)
		// The Debian jar's manifest names its dependencies; these are the
		// jute classes and the log4j binding it does not name.
		for _, name := range []string{"zookeeper-jute", "slf4j-api", "slf4j-log4j12", "log4j-1.2"} {
			if j := findJar(name); j != "" {
				b.zkClasspath = append(b.zkClasspath, j)
			}
		}
	}

	if b.alertmanager = firstExecutable(os.Getenv(envAlertmanager), "prometheus-alertmanager", "/usr/bin/prometheus-alertmanager", "alertmanager"); b.alertmanager == "" {
		missing = append(missing, "prometheus-alertmanager (Debian package prometheus-alertmanager)")
	}

	if len(missing) > 0 {
		return nil, errors.New("missing " + strings.Join(missing, ", "))
	}
	return &b, nil
}

// firstExecutable returns the first candidate that is an executable file; a
// candidate without a slash is looked up in PATH.
func firstExecutable(candidates ...string) string {
	for _, c := range candidates {
		if c == "" {
			continue
		}
		if p, err := exec.LookPath(c); err == nil {
			if abs, err := filepath.Abs(p); err == nil {
				return abs
			}
			return p
		}
	}
	return ""
}

// findJar finds /usr/share/java/NAME.jar, else the newest NAME-<version>.jar.
func findJar(name string) string {
	if p := filepath.Join(javaDir, name+".jar"); isFile(p) {
		return p
	}
	matches, _ := filepath.Glob(filepath.Join(javaDir, name+"-[0-9]*.jar"))
	sort.Strings(matches)
	for i := len(matches) - 1; i >= 0; i-- {
		if isFile(matches[i]) {
			return matches[i]
		}
	}
	return ""
}

func isFile(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.Mode().IsRegular()
}

// Available reports nil when all the servers the environment runs are
// installed, else an error naming each one that is missing.
func Available() error {
	_, err := findBinaries()
	if err != nil {
		return fmt.Errorf("testenv: %w", err)
	}
	return nil
}
