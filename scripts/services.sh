# Sourced by .ci/run and scripts/test.sh: makes sure PostgreSQL and Redis answer on their
# standard local ports, installing them (Debian packages, as root) when they are missing and
# starting them when they are down, and that the programs the tests drive (curl, nginx, pebble,
# chromium and chromedriver) exist.
# With CI=true a service that still does not answer fails the run instead of letting tests skip
# it.

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

apt_install() { # package...
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
    echo "missing: $*; install these packages (Debian: apt-get install $*) or run as root" >&2
    return 1
  fi
  echo "installing $* (Debian packages)"
  { [ -n "${HTTVPS_APT_UPDATED:-}" ] || apt-get update -qq; } && HTTVPS_APT_UPDATED=1 &&
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

# A PostgreSQL installed here: trust on the local addresses (as on the development machines) and
# the database the tests use.
install_postgres() {
  apt_install postgresql postgresql-client || return 1
  local version hba
  version="$(ls /etc/postgresql | head -n1)"
  hba="/etc/postgresql/$version/main/pg_hba.conf"
  if ! grep -q '^# httvps-tests' "$hba"; then
    { echo '# httvps-tests: trust on loopback, like the development machines'
      echo 'host all all 127.0.0.1/32 trust'
      echo 'host all all ::1/128 trust'
      cat "$hba"; } > "$hba.new" && mv "$hba.new" "$hba"
  fi
  start_postgres
  wait_for PostgreSQL postgres_up || return 1
  # The package may have started the cluster before the trust lines were added.
  pg_ctlcluster --skip-systemctl-redirect "$version" main reload || true
  su postgres -c "psql -qc 'CREATE DATABASE test'" 2>/dev/null || true
  su postgres -c "psql -qc 'CREATE ROLE root SUPERUSER LOGIN'" 2>/dev/null || true
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

ensure_tools() {
  local want=()
  command -v curl >/dev/null || want+=(curl)
  command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || want+=(nginx-light)
  [ -x /usr/bin/pebble ] || want+=(pebble)
  # The VPN-mode tests (sdk/client/tests/tun.rs): namespaces and routes, a capture on the veth,
  # DNS lookups, and a run without privileges.
  command -v ip >/dev/null || want+=(iproute2)
  command -v tcpdump >/dev/null || [ -x /usr/bin/tcpdump ] || want+=(tcpdump)
  command -v dig >/dev/null || want+=(dnsutils)
  command -v setpriv >/dev/null || want+=(util-linux)
  # The operator console's browser test (sdk/client/tests/console_browser.rs) drives a real
  # headless Chromium over WebDriver.
  command -v chromium >/dev/null || want+=(chromium)
  command -v chromedriver >/dev/null || want+=(chromium-driver)
  [ ${#want[@]} -eq 0 ] || apt_install "${want[@]}" || {
    echo "the end-to-end, VPN-mode, camouflage, ACME and console browser tests drive the real ${want[*]}" >&2
    [ "${CI:-}" = "true" ] && exit 1
  }
}

ensure_services() {
  local missing=()
  ensure_tools
  if ! postgres_up && ! command -v pg_ctlcluster >/dev/null; then install_postgres || true; fi
  if ! redis_up && ! command -v redis-server >/dev/null; then apt_install redis-server || true; fi
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
