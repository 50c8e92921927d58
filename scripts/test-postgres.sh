#!/usr/bin/env bash
# Start the machine's PostgreSQL (installing it with apt-get if missing) and make a
# role that may create test databases. Prints the URL for PINGAN_TEST_POSTGRES_URL.
# Everything it says goes to stderr, so `URL=$(scripts/test-postgres.sh)` works.
set -euo pipefail
# fd 3 is the caller's stdout. Only the last line writes to it; everything else runs
# with it closed, because a server started here (pg_ctlcluster, apt-get's postinst)
# would inherit it and `$(...)` would wait for that server to exit: forever.
exec 3>&1 1>&2
{
if ! command -v pg_ctlcluster >/dev/null || [ -z "$(ls /usr/lib/postgresql 2>/dev/null)" ]; then
  if [ "$(id -u)" != 0 ]; then echo "test-postgres: PostgreSQL missing and not root"; exit 1; fi
  echo "test-postgres: installing PostgreSQL with apt-get"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
fi
version=$(ls /usr/lib/postgresql | sort -n | tail -1)
if ! pg_lsclusters -h | awk -v v="$version" '$1==v && $2=="main"' | grep -q .; then
  pg_createcluster "$version" main >/dev/null
fi
if ! pg_lsclusters -h | awk -v v="$version" '$1==v && $2=="main" && $4=="online"' | grep -q .; then
  pg_ctlcluster "$version" main start
fi
port=$(pg_lsclusters -h | awk -v v="$version" '$1==v && $2=="main" {print $3}')
for _ in $(seq 1 50); do
  su postgres -c "psql -p $port -qtAc 'select 1'" >/dev/null 2>&1 && break
  sleep 0.2
done
su postgres -c "psql -p $port -qtAc \"select 1 from pg_roles where rolname='pingan_test'\"" | grep -q 1 ||
  su postgres -c "psql -p $port -qc \"create role pingan_test login createdb password 'pingan_test'\""
su postgres -c "psql -p $port -qtAc \"select 1 from pg_database where datname='pingan_test'\"" | grep -q 1 ||
  su postgres -c "psql -p $port -qc 'create database pingan_test owner pingan_test'"
} 3>&-
echo "postgresql+psycopg://pingan_test:pingan_test@127.0.0.1:$port/pingan_test" >&3
