#!/usr/bin/env bash
# Starts (or stops) a local PostgreSQL from Debian's package on 127.0.0.1 and
# creates the role and databases Deal Ledger and its tests use.
# Skipped entirely when DEALLEDGER_DATABASE_URL points at an existing server.
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

PG_PORT="${DEALLEDGER_PG_PORT:-5432}"
PG_USER=dealledger
PG_PASSWORD=dealledger
PG_DATABASES=(dealledger dealledger_test dealledger_bench)
PG_LOG="$LOG_DIR/postgres.log"

pg_version() { ls /usr/lib/postgresql 2>/dev/null | sort -V | tail -1; }

install_postgres() {
  if [ -n "$(pg_version)" ] && command -v pg_ctlcluster >/dev/null; then
    return
  fi
  log "PostgreSQL is not installed; installing Debian's postgresql package"
  as_root apt-get update -qq >>"$PG_LOG" 2>&1 || die "apt-get update failed (see $PG_LOG)"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >>"$PG_LOG" 2>&1 \
    || die "apt-get install postgresql failed (see $PG_LOG)"
}

psql_admin() {
  as_root runuser -u postgres -- psql -X -q -v ON_ERROR_STOP=1 -p "$PG_PORT" -h /var/run/postgresql "$@"
}

up() {
  if [ -n "${DEALLEDGER_DATABASE_URL:-}" ]; then
    log "DEALLEDGER_DATABASE_URL is set; using that PostgreSQL, starting nothing"
    return
  fi
  install_postgres
  local ver; ver="$(pg_version)"
  if ! as_root pg_lsclusters -h | awk '{print $1" "$2}' | grep -qx "$ver main"; then
    log "creating PostgreSQL $ver cluster 'main' on port $PG_PORT"
    as_root pg_createcluster "$ver" main -p "$PG_PORT" >>"$PG_LOG" 2>&1 || die "pg_createcluster failed (see $PG_LOG)"
  fi
  local conf="/etc/postgresql/$ver/main/postgresql.conf"
  # Loopback only; a few more connections than the default for concurrency tests.
  as_root sed -i -E \
    -e "s/^#?listen_addresses\s*=.*/listen_addresses = '127.0.0.1'/" \
    -e "s/^#?max_connections\s*=.*/max_connections = 200/" \
    -e "s/^#?port\s*=.*/port = $PG_PORT/" "$conf"
  if ! as_root pg_ctlcluster "$ver" main status >/dev/null 2>&1; then
    log "starting PostgreSQL $ver on 127.0.0.1:$PG_PORT"
    as_root pg_ctlcluster "$ver" main start >>"$PG_LOG" 2>&1 || die "PostgreSQL did not start (see $PG_LOG and /var/log/postgresql/)"
  fi
  wait_for "PostgreSQL" 60 as_root runuser -u postgres -- pg_isready -q -h 127.0.0.1 -p "$PG_PORT" \
    || die "PostgreSQL did not become ready on 127.0.0.1:$PG_PORT within 60s (see /var/log/postgresql/)"
  psql_admin -d postgres <<SQL
DO \$\$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$PG_USER') THEN
    CREATE ROLE $PG_USER LOGIN PASSWORD '$PG_PASSWORD';
  END IF;
END \$\$;
SQL
  local db
  for db in "${PG_DATABASES[@]}"; do
    if [ "$(psql_admin -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = '$db'")" != "1" ]; then
      psql_admin -d postgres -c "CREATE DATABASE $db OWNER $PG_USER" >/dev/null
      log "created database $db"
    fi
  done
  log "PostgreSQL: postgresql://$PG_USER:$PG_PASSWORD@127.0.0.1:$PG_PORT/dealledger"
}

down() {
  if [ -n "${DEALLEDGER_DATABASE_URL:-}" ]; then
    log "DEALLEDGER_DATABASE_URL is set; not stopping an external PostgreSQL"
    return
  fi
  local ver; ver="$(pg_version)"
  [ -z "$ver" ] && return
  if as_root pg_ctlcluster "$ver" main status >/dev/null 2>&1; then
    log "stopping PostgreSQL $ver"
    as_root pg_ctlcluster "$ver" main stop -m fast >>"$PG_LOG" 2>&1 || die "PostgreSQL did not stop (see $PG_LOG)"
  fi
}

status() {
  if port_open 127.0.0.1 "$PG_PORT"; then log "PostgreSQL: up on 127.0.0.1:$PG_PORT"; else log "PostgreSQL: down"; fi
}

"${1:-up}"
