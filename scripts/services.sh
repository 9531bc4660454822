# Sourced by .ci/run and scripts/test.sh: makes sure PostgreSQL and Redis answer on their
# standard local ports, starting them when this machine has them installed. With CI=true a
# service that still does not answer fails the run instead of letting tests skip it.

PG_HOST="${PGHOST:-127.0.0.1}"
PG_PORT="${PGPORT:-5432}"
REDIS_HOST="${REDIS_HOST:-127.0.0.1}"
REDIS_PORT="${REDIS_PORT:-6379}"

port_open() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }

postgres_up() {
  if command -v pg_isready >/dev/null; then pg_isready -q -h "$PG_HOST" -p "$PG_PORT"; else port_open "$PG_HOST" "$PG_PORT"; fi
}

redis_up() {
  if command -v redis-cli >/dev/null; then
    [ "$(redis-cli -h "$REDIS_HOST" -p "$REDIS_PORT" ping 2>/dev/null)" = "PONG" ]
  else
    port_open "$REDIS_HOST" "$REDIS_PORT"
  fi
}

start_postgres() {
  if command -v pg_ctlcluster >/dev/null && [ -d /etc/postgresql ]; then
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
  fi
}

start_redis() {
  if command -v redis-server >/dev/null; then
    mkdir -p /var/lib/redis /var/log/redis 2>/dev/null || true
    redis-server --daemonize yes --bind 127.0.0.1 -::1 --port "$REDIS_PORT" --save "" \
      --appendonly no --dir /var/lib/redis --logfile /var/log/redis/ci.log || true
  fi
}

wait_for() { # name check-function
  for _ in $(seq 1 30); do "$2" && return 0; sleep 1; done
  return 1
}

ensure_services() {
  local missing=()
  postgres_up || { echo "PostgreSQL not answering on $PG_HOST:$PG_PORT, starting it"; start_postgres; wait_for PostgreSQL postgres_up || missing+=("PostgreSQL ($PG_HOST:$PG_PORT)"); }
  redis_up || { echo "Redis not answering on $REDIS_HOST:$REDIS_PORT, starting it"; start_redis; wait_for Redis redis_up || missing+=("Redis ($REDIS_HOST:$REDIS_PORT)"); }
  if [ ${#missing[@]} -gt 0 ]; then
    echo "required service(s) unreachable: ${missing[*]}" >&2
    if [ "${CI:-}" = "true" ]; then
      echo "CI=true: refusing to run the tests without them" >&2
      exit 1
    fi
    echo "warning: tests that need them will fail" >&2
  else
    echo "PostgreSQL and Redis are up"
  fi
}
