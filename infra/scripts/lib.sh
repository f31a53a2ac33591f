# shellcheck shell=bash
# Helpers shared by the backup and restore scripts (sourced, not run).

# PostgreSQL client binaries: PG_BIN_DIR when set (e.g. the embedded server's bin directory, or
# /usr/lib/postgresql/17/bin), otherwise whatever is on PATH (the postgres image puts its own there).
pg_bin() {
  if [[ -n "${PG_BIN_DIR:-}" ]]; then
    printf '%s/%s' "${PG_BIN_DIR%/}" "$1"
  else
    printf '%s' "$1"
  fi
}

# libpq does not know SQLAlchemy's driver suffix: postgresql+psycopg2:// -> postgresql://
libpq_url() {
  local url=$1
  printf '%s' "${url/#postgresql+psycopg2:\/\//postgresql://}"
}

# The same server, another database: swap the path of a postgresql:// URL (query string kept).
url_with_database() {
  local url=$1 database=$2
  printf '%s' "$url" | sed -E "s#^(postgres(ql)?://[^/?]*)(/[^?]*)?#\\1/${database}#"
}

log() { printf '%s %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# Row count and an order-independent checksum of every table in the public schema, one "table<TAB>rows
# <TAB>md5" line each. Fed to a psql session so that it can run inside the dump's own snapshot.
# Rows are rendered with fixed TimeZone/DateStyle, so the text (and its md5) is the same after a restore.
table_stats_sql() {
  cat <<'SQL'
SET TimeZone = 'UTC';
SET DateStyle = 'ISO, YMD';
SET IntervalStyle = 'postgres';
SET extra_float_digits = 1;
SELECT format(
  'SELECT %L || E''\t'' || count(*) || E''\t'' || coalesce(md5(string_agg(h, '''' ORDER BY h)), ''-'')'
  ' FROM (SELECT md5(t::text) AS h FROM %I.%I t) s;', c.relname, n.nspname, c.relname)
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p')
ORDER BY c.relname
\gexec
SQL
}
