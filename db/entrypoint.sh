#!/bin/sh
# Initialise the cluster on first start, then run Postgres in the foreground (signals reach it
# directly: a clean shutdown on docker stop). The role, password and database come from
# POSTGRES_USER/POSTGRES_PASSWORD/POSTGRES_DB, or else from the app's own DATABASE_URL, so the
# .env file stays the single place the password is written.
set -eu
export PATH="/usr/lib/postgresql/15/bin:$PATH"
: "${PGDATA:=/var/lib/postgresql/data}"
if [ -n "${DATABASE_URL:-}" ]; then
    eval "$(python3 - <<'PY'
import os, shlex
from urllib.parse import unquote, urlparse
u = urlparse(os.environ["DATABASE_URL"])
for key, value in (("URL_USER", u.username), ("URL_PASSWORD", u.password),
                   ("URL_DB", u.path.lstrip("/"))):
    print(f"{key}={shlex.quote(unquote(value or ''))}")
PY
)"
fi
POSTGRES_USER="${POSTGRES_USER:-${URL_USER:-app}}"
POSTGRES_PASSWORD="${POSTGRES_PASSWORD:-${URL_PASSWORD:-}}"
POSTGRES_DB="${POSTGRES_DB:-${URL_DB:-$POSTGRES_USER}}"
if [ ! -s "$PGDATA/PG_VERSION" ]; then
    pwfile=$(mktemp)
    printf '%s\n' "$POSTGRES_PASSWORD" > "$pwfile"
    initdb -D "$PGDATA" -U "$POSTGRES_USER" --pwfile="$pwfile" --auth-local=trust \
        --auth-host=scram-sha-256 -E UTF8 >/dev/null
    rm -f "$pwfile"
    echo "host all all 0.0.0.0/0 scram-sha-256" >> "$PGDATA/pg_hba.conf"
    pg_ctl -D "$PGDATA" -o "-c listen_addresses='' -c unix_socket_directories=/tmp" -w start >/dev/null
    if [ "$POSTGRES_DB" != "postgres" ]; then
        createdb -h /tmp -U "$POSTGRES_USER" "$POSTGRES_DB" 2>/dev/null || true
    fi
    pg_ctl -D "$PGDATA" -m fast -w stop >/dev/null
fi
exec postgres -D "$PGDATA" -c listen_addresses='*' -c unix_socket_directories=/tmp
