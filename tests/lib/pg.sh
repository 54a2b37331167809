# SPDX-License-Identifier: MIT
# Sourced by shell tests that need a PostgreSQL server: a private cluster in the test's temp
# dir, reachable only through a Unix socket in that dir (listen_addresses=''), never the
# system cluster (docs/testing.md, "PostgreSQL in tests").
#
#   pg_need                 exits 77 (SKIP) unless the PostgreSQL server binaries are found
#                           ($PG_BINDIR, else the newest /usr/lib/postgresql/*/bin, else PATH)
#                           and, as root, the user postgres exists to run them
#   pg_start NAME [DIR]     initdb + start a cluster in DIR/pg-NAME (DIR defaults to $T), with
#                           a database NAME owned by the role NAME; exports its libpq URI as
#                           PG_URI (postgresql:///NAME?host=SOCKDIR&port=PORT&user=NAME)
#   pg_stop                 stops every cluster pg_start started (immediate: call it from the
#                           EXIT trap before the temp dir goes)
#   pg_sql SQL              runs SQL through psql on the last cluster started (tuples only)
#   pg_freeze / pg_thaw     SIGSTOP / SIGCONT every process of the last cluster started (the
#                           postmaster and its children): a server that no longer answers,
#                           its sockets still open; pg_stop thaws it first
#
# As root the server runs as postgres (runuser), which must reach the data and socket dirs:
# DIR gets o+x (search, not read) and DIR/pg-NAME belongs to postgres. The port only names
# the socket file in that private dir; it is a free one the kernel chose all the same, so that
# nothing collides with a cluster listening elsewhere.

PG_CLUSTERS=
PG_URI=

pg_bindir() {
        local d
        if [ -n "${PG_BINDIR:-}" ]; then
                echo "$PG_BINDIR"
                return
        fi
        d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
        if [ -n "$d" ] && [ -x "$d/initdb" ]; then
                echo "$d"
                return
        fi
        d=$(command -v initdb 2>/dev/null) && dirname "$d"
}

pg_need() {
        PG_BIN=$(pg_bindir)
        for b in initdb pg_ctl postgres psql createdb; do
                [ -n "$PG_BIN" ] && [ -x "$PG_BIN/$b" ] && continue
                echo "SKIP: PostgreSQL server binaries not found (no $b; apt-get install postgresql-15, or set PG_BINDIR)"
                exit 77
        done
        if [ "$(id -u)" = 0 ] && ! id -u postgres >/dev/null 2>&1; then
                echo "SKIP: running as root and there is no user postgres to run the PostgreSQL server"
                exit 77
        fi
}

# Runs a PostgreSQL server binary as the user that owns the cluster.
pg_as() {
        if [ "$(id -u)" = 0 ]; then
                runuser -u postgres -- "$@"
        else
                "$@"
        fi
}

# A TCP port no socket is bound to right now (the kernel's choice).
pg_free_port() {
        python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

pg_start() {
        local name=$1 dir=${2:-${T:?}} base port tries
        [ -n "${PG_BIN:-}" ] || pg_need
        base=$dir/pg-$name
        mkdir -p "$base" || return 1
        if [ "$(id -u)" = 0 ]; then
                chmod o+x "$dir" && chown postgres: "$base" || return 1
        fi
        chmod 0755 "$base"
        pg_as "$PG_BIN/initdb" -D "$base/data" -A trust -N -U "$name" -E UTF8 --locale=C.UTF-8 \
                >"$base/initdb.log" 2>&1 || { echo "initdb failed:"; tail -n 20 "$base/initdb.log"; return 1; }
        # A port taken between the choice and the start: choose again.
        for tries in 1 2 3; do
                port=$(pg_free_port) || return 1
                if pg_as "$PG_BIN/pg_ctl" -D "$base/data" -l "$base/pg.log" -w -t 120 \
                        -o "-k $base -p $port -c listen_addresses=''" start >"$base/pg_ctl.log" 2>&1; then
                        break
                fi
                port=
        done
        if [ -z "$port" ]; then
                echo "pg_ctl start failed:"
                tail -n 20 "$base/pg.log" "$base/pg_ctl.log" 2>/dev/null
                return 1
        fi
        PG_CLUSTERS="$PG_CLUSTERS $base/data"
        PG_HOST=$base PG_PORT=$port PG_USER=$name
        "$PG_BIN/createdb" -h "$base" -p "$port" -U "$name" "$name" || { pg_stop; return 1; }
        PG_URI="postgresql:///$name?host=$base&port=$port&user=$name"
        export PG_URI
}

# The postmaster of the last cluster started, then its children (by their pids only).
pg_pids() {
        local pm
        pm=$(head -n 1 "$PG_HOST/data/postmaster.pid" 2>/dev/null) || return 1
        [ -n "$pm" ] || return 1
        echo "$pm"
        ps -o pid= --ppid "$pm"
}

PG_FROZEN=
pg_freeze() {
        local p
        PG_FROZEN=$(pg_pids) || return 1
        for p in $PG_FROZEN; do kill -STOP "$p" 2>/dev/null; done
        return 0
}

pg_thaw() {
        local p
        for p in $PG_FROZEN; do kill -CONT "$p" 2>/dev/null; done
        PG_FROZEN=
        return 0
}

pg_stop() {
        local d
        pg_thaw
        for d in $PG_CLUSTERS; do
                [ -f "$d/postmaster.pid" ] && pg_as "$PG_BIN/pg_ctl" -D "$d" -m immediate -w stop >/dev/null 2>&1
        done
        PG_CLUSTERS=
        return 0
}

pg_sql() {
        "$PG_BIN/psql" -X -q -t -A -v ON_ERROR_STOP=1 -d "$PG_URI" -c "$1"
}
