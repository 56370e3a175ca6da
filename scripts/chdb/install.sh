#!/usr/bin/env bash
# Installs the chdb package pinned in package-lock.json (the ClickHouse 26.x
# engine, in-process) into scripts/chdb/node_modules, for the test that checks
# the probes' modern queries (playbooks/probe, TestModernQueriesOnClickHouse26).
# Idempotent: a second run with the right version installed does nothing.
# Needs node and npm (Debian package nodejs); ~550 MB on disk, ~10 s.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
	echo "chdb: node and npm are needed (apt-get install -y nodejs npm)" >&2
	exit 1
fi
want=$(node -p "require('./package-lock.json').packages['node_modules/chdb'].version")
have=$(node -p "try { require('./node_modules/chdb/package.json').version } catch (e) { '' }")
if [[ "$want" == "$have" ]] && node -e "require('chdb').query('SELECT 1')" >/dev/null 2>&1; then
	echo "chdb $have: already installed"
	exit 0
fi
start=$(date +%s)
# Not `npm ci`: it refuses this lock file because chdb lists prebuilt
# libraries for other platforms as optional dependencies that the registry
# does not serve, so they cannot be in the lock. `npm install` with the lock
# in place installs exactly the locked versions and leaves the lock alone.
npm install --no-save --no-audit --no-fund --loglevel=error 2>&1 | grep -v 'Unknown user config' || true
node -e "require('chdb').query('SELECT 1')" >/dev/null
echo "chdb $want: installed in $(( $(date +%s) - start ))s, $(du -sh node_modules | cut -f1) in scripts/chdb/node_modules"
