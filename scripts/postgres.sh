#!/usr/bin/env bash
# Start (or reuse) a throwaway PostgreSQL server on 127.0.0.1 for the integration tests and
# print its SQLAlchemy URL. Installs Debian's postgresql package if no server binaries exist.
# Stop it with: scripts/postgres.sh stop
set -euo pipefail
DIR=${CIRCINUS_PG_DIR:-/tmp/circinus-pg}
PORT=${CIRCINUS_PG_PORT:-54329}
URL="postgresql+psycopg://postgres@127.0.0.1:${PORT}/circinus_test"

find_bin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1; }
PGBIN=$(find_bin)
if [[ -z "$PGBIN" ]]; then
  echo "installing postgresql (Debian package)..." >&2
  apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >&2
  PGBIN=$(find_bin)
fi

as_pg() {  # initdb and postgres refuse to run as root
  if [[ "$(id -u)" == 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi
}

if [[ "${1:-}" == "stop" ]]; then
  as_pg "$PGBIN/pg_ctl" -D "$DIR/data" -m fast stop >/dev/null 2>&1 || true
  exit 0
fi

if ! as_pg "$PGBIN/pg_ctl" -D "$DIR/data" status >/dev/null 2>&1; then
  rm -rf "$DIR" && mkdir -p "$DIR"
  [[ "$(id -u)" == 0 ]] && chown postgres "$DIR"
  as_pg "$PGBIN/initdb" -D "$DIR/data" -A trust -U postgres >/dev/null
  as_pg "$PGBIN/pg_ctl" -D "$DIR/data" -l "$DIR/server.log" -w \
    -o "-p $PORT -k $DIR -c listen_addresses=127.0.0.1" start >/dev/null
  as_pg "$PGBIN/createdb" -h 127.0.0.1 -p "$PORT" -U postgres circinus_test
fi
echo "$URL"
