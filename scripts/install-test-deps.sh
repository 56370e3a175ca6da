#!/usr/bin/env bash
# Installs the real servers that chmedic's integration tests run (see
# internal/testenv): ClickHouse server and client, ZooKeeper (and a Java
# runtime), Prometheus Alertmanager, from Debian packages.
#
# Idempotent: when everything is present it does nothing. Without root (or
# passwordless sudo) or apt-get it prints what is missing and how to install
# it, and exits 0: the integration tests then skip, or fail when
# CHMEDIC_REQUIRE_INTEGRATION=1. With CHMEDIC_REQUIRE_INTEGRATION=1 a failed
# install exits non-zero.
set -euo pipefail

PACKAGES=(clickhouse-server clickhouse-client zookeeper default-jre-headless prometheus-alertmanager netcat-openbsd)

have_exec() {
	local c
	for c in "$@"; do
		if command -v "$c" >/dev/null 2>&1 || [[ -x "$c" ]]; then
			return 0
		fi
	done
	return 1
}

have_zookeeper_jar() {
	[[ -f /usr/share/java/zookeeper.jar ]] && return 0
	compgen -G '/usr/share/java/zookeeper-[0-9]*.jar' >/dev/null
}

missing=()
have_exec clickhouse-server /usr/sbin/clickhouse-server || missing+=("clickhouse-server")
have_exec clickhouse-client /usr/bin/clickhouse-client || missing+=("clickhouse-client")
have_zookeeper_jar || missing+=("zookeeper (/usr/share/java/zookeeper.jar)")
have_exec java /usr/bin/java || missing+=("java (default-jre-headless)")
have_exec prometheus-alertmanager /usr/bin/prometheus-alertmanager || missing+=("prometheus-alertmanager")

if [[ ${#missing[@]} -eq 0 ]]; then
	exit 0
fi

echo "install-test-deps: missing: ${missing[*]}" >&2

sudo=()
if [[ $(id -u) -ne 0 ]]; then
	if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
		sudo=(sudo -n)
	else
		sudo=(none)
	fi
fi

if [[ "${sudo[0]:-}" == none ]] || ! command -v apt-get >/dev/null 2>&1; then
	cat >&2 <<EOF
install-test-deps: cannot install them here (needs root or passwordless sudo, and apt-get).
On Debian or Ubuntu, as root:
    apt-get update
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ${PACKAGES[*]}
Without them the integration tests skip (or fail with CHMEDIC_REQUIRE_INTEGRATION=1).
EOF
	exit 0
fi

apt=("${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 -q)
echo "install-test-deps: installing ${PACKAGES[*]}" >&2
if "${apt[@]}" update </dev/null &&
	"${apt[@]}" install -y --no-install-recommends "${PACKAGES[@]}" </dev/null; then
	echo "install-test-deps: done" >&2
	exit 0
fi

echo "install-test-deps: apt-get failed; the integration tests will skip (or fail with CHMEDIC_REQUIRE_INTEGRATION=1)" >&2
if [[ "${CHMEDIC_REQUIRE_INTEGRATION:-}" == 1 ]]; then
	exit 1
fi
exit 0
