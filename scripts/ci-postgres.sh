#!/usr/bin/env bash
# Start a throwaway PostgreSQL server on loopback for the store tests (installing Debian's package if
# needed) and print the URL to use. Usage: eval "$(scripts/ci-postgres.sh start DIR PORT)"; ... stop DIR.
set -euo pipefail
action=${1:?start|stop}; dir=${2:?data directory}; port=${3:-55432}
bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)
if [ "$action" = stop ]; then
  [ -n "$bin" ] && [ -d "$dir" ] && su postgres -c "$bin/pg_ctl -D $dir -m fast -w stop" >/dev/null 2>&1 || true
  exit 0
fi
if [ -z "$bin" ]; then
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql) >&2
  bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
fi
rm -rf "$dir" && mkdir -p "$dir" && chown postgres "$dir"
su postgres -c "$bin/initdb -D $dir -A trust -U postgres" >/dev/null
su postgres -c "$bin/pg_ctl -D $dir -l $dir/server.log -o '-p $port -k /tmp -c listen_addresses=127.0.0.1' -w start" >/dev/null
echo "export RELAYER_TEST_POSTGRES_URL=postgresql://postgres@127.0.0.1:$port/postgres"
