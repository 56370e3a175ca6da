package testenv

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// ClickHouse is one ClickHouse server of the environment, a replica of the
// environment's single shard.
type ClickHouse struct {
	Name            string // "ch-1", "ch-2", ...; also its {replica} macro
	Host            string // "127.0.0.1"
	TCPPort         int    // native protocol
	HTTPPort        int
	InterserverPort int
	Shard           string // the {shard} macro, "01"
	Replica         string // the {replica} macro, equal to Name

	Dir          string // config.xml, data/ and the logs live here
	ConfigPath   string
	LogPath      string // the server's own log (level information)
	ErrorLogPath string // the server's error log
	StdoutPath   string // the process's stdout and stderr

	adminUser, adminPassword string
	client                   *http.Client
	proc                     *process
}

// clickHouseReadyTimeout bounds the wait for /ping after a start.
const clickHouseReadyTimeout = 30 * time.Second

// Addr is the native-protocol address "host:tcpport".
func (c *ClickHouse) Addr() string { return net.JoinHostPort(c.Host, strconv.Itoa(c.TCPPort)) }

// HTTPURL is the base URL of the HTTP interface, "http://host:httpport".
func (c *ClickHouse) HTTPURL() string {
	return "http://" + net.JoinHostPort(c.Host, strconv.Itoa(c.HTTPPort))
}

// Start starts the server (again) with the same config and data, and waits
// until /ping answers.
func (c *ClickHouse) Start(ctx context.Context) error {
	if err := c.proc.start(); err != nil {
		return err
	}
	return c.proc.waitReady(ctx, clickHouseReadyTimeout, "answering /ping on "+c.HTTPURL(), c.ping, c.ErrorLogPath)
}

// Stop stops the server with SIGTERM (SIGKILL after a bound) and waits for it.
// ClickHouse 18.16 takes ~2 s, ~5 s while ZooKeeper is down.
func (c *ClickHouse) Stop(ctx context.Context) error {
	defer c.client.CloseIdleConnections() // a POST is not retried on a dead keep-alive connection
	return c.proc.stop(ctx, stopGrace)
}

// Kill stops the server with SIGKILL (a crash).
func (c *ClickHouse) Kill(ctx context.Context) error {
	defer c.client.CloseIdleConnections()
	return c.proc.stop(ctx, 0)
}

// Running reports whether the server process is alive.
func (c *ClickHouse) Running() bool { return c.proc.running() }

// Pid is the server's process id, or 0 when it is not running.
func (c *ClickHouse) Pid() int { return c.proc.pid() }

func (c *ClickHouse) ping(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.HTTPURL()+"/ping", nil)
	if err != nil {
		return err
	}
	resp, err := c.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<10))
	if resp.StatusCode != http.StatusOK || strings.TrimSpace(string(body)) != "Ok." {
		return fmt.Errorf("/ping: HTTP %d %q", resp.StatusCode, body)
	}
	return nil
}

// Query runs sql as the admin user through the HTTP interface and returns the
// response body (TabSeparated unless sql says FORMAT). An error carries
// ClickHouse's message ("Code: 242, e.displayText() = DB::Exception: ...").
func (c *ClickHouse) Query(ctx context.Context, sql string) (string, error) {
	return c.QueryAs(ctx, c.adminUser, c.adminPassword, sql)
}

// QueryAs is Query as another user.
func (c *ClickHouse) QueryAs(ctx context.Context, user, password, sql string) (string, error) {
	// wait_end_of_query buffers the result, so that an exception thrown while
	// streaming becomes an HTTP error instead of a truncated 200 body.
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.HTTPURL()+"/?wait_end_of_query=1", strings.NewReader(sql))
	if err != nil {
		return "", err
	}
	req.Header.Set("X-ClickHouse-User", user)
	req.Header.Set("X-ClickHouse-Key", password)
	resp, err := c.client.Do(req)
	if err != nil {
		return "", fmt.Errorf("clickhouse %s: query %s: %w", c.Name, abbreviate(sql), err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", fmt.Errorf("clickhouse %s: query %s: read response: %w", c.Name, abbreviate(sql), err)
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("clickhouse %s: query %s: HTTP %d: %s", c.Name, abbreviate(sql), resp.StatusCode, strings.TrimSpace(string(body)))
	}
	return string(body), nil
}

// QueryInt runs sql as the admin user and parses its single-value result.
func (c *ClickHouse) QueryInt(ctx context.Context, sql string) (int64, error) {
	out, err := c.Query(ctx, sql)
	if err != nil {
		return 0, err
	}
	n, err := strconv.ParseInt(strings.TrimSpace(out), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("clickhouse %s: query %s: want one integer, got %q", c.Name, abbreviate(sql), out)
	}
	return n, nil
}

func abbreviate(sql string) string {
	sql = strings.Join(strings.Fields(sql), " ")
	if len(sql) > 120 {
		sql = sql[:117] + "..."
	}
	return strconv.Quote(sql)
}

// clickHouseConfig writes the server's config.xml. all lists every replica of
// the shard, for remote_servers.
func (c *ClickHouse) writeConfig(all []*ClickHouse, cluster, usersPath, zkAddr string, zkSessionTimeout time.Duration) error {
	data := filepath.Join(c.Dir, "data")
	for _, d := range []string{data, filepath.Join(data, "tmp"), filepath.Join(data, "user_files"), filepath.Join(data, "format_schemas")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	zkHost, zkPort, err := net.SplitHostPort(zkAddr)
	if err != nil {
		return err
	}
	var replicas strings.Builder
	for _, r := range all {
		fmt.Fprintf(&replicas, `
                <replica>
                    <host>%s</host>
                    <port>%d</port>
                    <user>%s</user>
                    <password>%s</password>
                </replica>`, x(r.Host), r.TCPPort, x(c.adminUser), x(c.adminPassword))
	}
	ms := zkSessionTimeout.Milliseconds()
	cfg := fmt.Sprintf(`<?xml version="1.0"?>
<!-- Written by chmedic internal/testenv. -->
<yandex>
    <logger>
        <level>information</level>
        <log>%[1]s</log>
        <errorlog>%[2]s</errorlog>
        <size>100M</size>
        <count>2</count>
    </logger>
    <listen_host>127.0.0.1</listen_host>
    <tcp_port>%[3]d</tcp_port>
    <http_port>%[4]d</http_port>
    <interserver_http_port>%[5]d</interserver_http_port>
    <interserver_http_host>%[6]s</interserver_http_host>
    <max_connections>1024</max_connections>
    <keep_alive_timeout>3</keep_alive_timeout>
    <max_concurrent_queries>100</max_concurrent_queries>
    <uncompressed_cache_size>67108864</uncompressed_cache_size>
    <mark_cache_size>67108864</mark_cache_size>
    <path>%[7]s/</path>
    <tmp_path>%[7]s/tmp/</tmp_path>
    <user_files_path>%[7]s/user_files/</user_files_path>
    <format_schema_path>%[7]s/format_schemas/</format_schema_path>
    <users_config>%[8]s</users_config>
    <default_profile>default</default_profile>
    <default_database>default</default_database>
    <timezone>UTC</timezone>
    <mlock_executable>false</mlock_executable>
    <remote_servers>
        <%[9]s>
            <shard>
                <internal_replication>true</internal_replication>%[10]s
            </shard>
        </%[9]s>
    </remote_servers>
    <zookeeper>
        <node index="1">
            <host>%[11]s</host>
            <port>%[12]s</port>
        </node>
        <session_timeout_ms>%[13]d</session_timeout_ms>
        <operation_timeout_ms>%[14]d</operation_timeout_ms>
    </zookeeper>
    <macros>
        <cluster>%[9]s</cluster>
        <shard>%[15]s</shard>
        <replica>%[16]s</replica>
    </macros>
    <distributed_ddl>
        <path>/clickhouse/task_queue/ddl</path>
    </distributed_ddl>
    <builtin_dictionaries_reload_interval>3600</builtin_dictionaries_reload_interval>
    <max_session_timeout>3600</max_session_timeout>
    <default_session_timeout>60</default_session_timeout>
    <query_log>
        <database>system</database>
        <table>query_log</table>
        <partition_by>toYYYYMM(event_date)</partition_by>
        <flush_interval_milliseconds>1000</flush_interval_milliseconds>
    </query_log>
    <part_log>
        <database>system</database>
        <table>part_log</table>
        <flush_interval_milliseconds>1000</flush_interval_milliseconds>
    </part_log>
    <max_table_size_to_drop>0</max_table_size_to_drop>
    <max_partition_size_to_drop>0</max_partition_size_to_drop>
</yandex>
`, x(c.LogPath), x(c.ErrorLogPath), c.TCPPort, c.HTTPPort, c.InterserverPort, x(c.Host), x(data), x(usersPath),
		cluster, replicas.String(), x(zkHost), x(zkPort), ms, max(ms/2, 1000), x(c.Shard), x(c.Replica))
	return os.WriteFile(c.ConfigPath, []byte(cfg), 0o644)
}

// x escapes s for XML text.
func x(s string) string {
	r := strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;", "'", "&apos;")
	return r.Replace(s)
}
