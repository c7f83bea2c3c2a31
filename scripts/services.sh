#!/usr/bin/env bash
# Installs (from Debian, when missing) and starts the throwaway database servers the test suite
# talks to: PostgreSQL 15 at 127.0.0.1:5432 (user postgres, trust auth for loopback TCP,
# databases `test` and `postgres`) and MariaDB at 127.0.0.1:3306 (root over TCP with an empty
# password, database `test`); and SoftHSM2, the software HSM the PKCS#11 key wrapper is
# tested on (the tests make their own tokens in temp folders). Idempotent: run it as often as
# you like; it only does what is missing. Needs root (apt-get). Loopback only: these servers
# are for tests, never for data.
set -euo pipefail

log() { printf 'services: %s\n' "$*" >&2; }

tcp_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_for_port() {
  local port=$1 name=$2
  for _ in $(seq 1 60); do
    tcp_open "$port" && return 0
    sleep 1
  done
  log "$name did not open 127.0.0.1:$port within 60 s"
  return 1
}

apt_updated=0
apt_install() {
  if [ "$apt_updated" = 0 ]; then
    log "apt-get update"
    apt-get update -q >/dev/null
    apt_updated=1
  fi
  log "installing $*"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@" >/dev/null
}

# --- PostgreSQL 15 -------------------------------------------------------------------------
if [ ! -x /usr/lib/postgresql/15/bin/postgres ]; then
  apt_install postgresql-15 postgresql-client-15
fi
if ! pg_lsclusters -h 2>/dev/null | awk '{print $1" "$2}' | grep -qx '15 main'; then
  log "creating cluster 15/main"
  pg_createcluster 15 main >/dev/null
fi
hba=/etc/postgresql/15/main/pg_hba.conf
# Trust loopback TCP logins: the tests connect as postgres without a password. Put the lines
# first so they win over Debian's scram-sha-256 defaults.
if ! grep -q '^# tellonce test trust' "$hba"; then
  log "trusting loopback TCP logins in $hba"
  {
    echo '# tellonce test trust (scripts/services.sh): throwaway test server on loopback only'
    echo 'host all all 127.0.0.1/32 trust'
    echo 'host all all ::1/128 trust'
    cat "$hba"
  } >"$hba.new"
  mv "$hba.new" "$hba"
  chown postgres:postgres "$hba"
  if pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null; then
    pg_ctlcluster --skip-systemctl-redirect 15 main reload
  fi
fi
if ! pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null; then
  log "starting PostgreSQL 15"
  pg_ctlcluster --skip-systemctl-redirect 15 main start
fi
wait_for_port 5432 PostgreSQL
for _ in $(seq 1 30); do pg_isready -h 127.0.0.1 -p 5432 -q && break; sleep 1; done
if ! psql -h 127.0.0.1 -U postgres -d postgres -tAc "select 1 from pg_database where datname='test'" \
  | grep -q 1; then
  log "creating PostgreSQL database test"
  psql -h 127.0.0.1 -U postgres -d postgres -qc 'create database test' >/dev/null
fi

# --- MariaDB -------------------------------------------------------------------------------
if [ ! -x /usr/sbin/mariadbd ]; then
  apt_install mariadb-server mariadb-client
fi
if ! tcp_open 3306; then
  log "starting MariaDB"
  mkdir -p /run/mysqld
  chown mysql:mysql /run/mysqld 2>/dev/null || true
  start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd -- \
    --user=mysql --bind-address=127.0.0.1 --port=3306
fi
wait_for_port 3306 MariaDB
# Debian's root logs in through the unix socket only; the tests log in over TCP with an empty
# password. Allow that for root@127.0.0.1 and root@localhost (throwaway, loopback-only server).
mariadb -uroot --protocol=socket -e "
  CREATE USER IF NOT EXISTS 'root'@'127.0.0.1' IDENTIFIED BY '';
  GRANT ALL PRIVILEGES ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION;
  ALTER USER 'root'@'localhost' IDENTIFIED VIA unix_socket OR mysql_native_password USING PASSWORD('');
  CREATE DATABASE IF NOT EXISTS test;
  FLUSH PRIVILEGES;" 2>/dev/null \
  || mariadb -h127.0.0.1 -P3306 -uroot -e 'CREATE DATABASE IF NOT EXISTS test' \
  || { log "cannot log in to MariaDB as root"; exit 1; }
mariadb -h127.0.0.1 -P3306 -uroot -e 'select 1' >/dev/null

# --- SoftHSM2 (PKCS#11 module and softhsm2-util; no daemon) ------------------------------
if [ ! -e /usr/lib/softhsm/libsofthsm2.so ] || ! command -v softhsm2-util >/dev/null; then
  apt_install softhsm2
fi
log "PostgreSQL 15 at 127.0.0.1:5432, MariaDB at 127.0.0.1:3306 and SoftHSM2 are ready"
