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
#   pg_db NAME              creates database NAME in the last cluster started; its URI on stdout
#   pg_have                 pg_need without the exit: 1 and the reason in PG_WHY
#   pg_start_standby NAME [DIR]
#                           a streaming standby of the last cluster pg_start started (the
#                           primary): pg_basebackup -R into DIR/pg-NAME, its own Unix socket
#                           there (replication runs over the primary's Unix socket: no TCP);
#                           the primary then names it in synchronous_standby_names, and this
#                           returns once it is the synchronous standby. Sets PG_STANDBY_HOST,
#                           PG_STANDBY_PORT, PG_STANDBY_DATA, and PG_PRIMARY_HOST, _PORT, _DATA
#   pg_kill DATA            SIGKILL to the postmaster of cluster DATA and to all its children
#                           (a machine that dies: no shutdown checkpoint, no goodbye to clients)
#   pg_promote DATA         pg_ctl promote of standby DATA; returns once it accepts writes
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

# pg_have: 0 if the server binaries are found (PG_BIN) and can be run here, else 1 with the
# reason in PG_WHY (for callers that go on without PostgreSQL, such as tests/bench/run).
pg_have() {
        PG_BIN=$(pg_bindir)
        PG_WHY=
        for b in initdb pg_ctl postgres psql createdb; do
                [ -n "$PG_BIN" ] && [ -x "$PG_BIN/$b" ] && continue
                PG_WHY="PostgreSQL server binaries not found (no $b; apt-get install postgresql-15, or set PG_BINDIR)"
                return 1
        done
        if [ "$(id -u)" = 0 ] && ! id -u postgres >/dev/null 2>&1; then
                PG_WHY="running as root and there is no user postgres to run the PostgreSQL server"
                return 1
        fi
}

pg_need() {
        pg_have && return 0
        echo "SKIP: $PG_WHY"
        exit 77
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
        local name=$1 dir=${2:-${T:?}} base port
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
        pg_start_on_free_port "$base/data" "$base" || return 1
        port=$PG_STARTED_PORT
        PG_CLUSTERS="$PG_CLUSTERS $base/data"
        PG_HOST=$base PG_PORT=$port PG_USER=$name PG_DATA=$base/data
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

# Starts cluster DATA (its socket in BASE) on a free port: the port in PG_STARTED_PORT.
pg_start_on_free_port() {
        local data=$1 base=$2 port tries
        for tries in 1 2 3; do
                port=$(pg_free_port) || return 1
                if pg_as "$PG_BIN/pg_ctl" -D "$data" -l "$base/pg.log" -w -t 120 \
                        -o "-k $base -p $port -c listen_addresses=''" start >"$base/pg_ctl.log" 2>&1; then
                        PG_STARTED_PORT=$port
                        return 0
                fi
        done
        echo "pg_ctl start failed:"
        tail -n 20 "$base/pg.log" "$base/pg_ctl.log" 2>/dev/null
        return 1
}

pg_start_standby() {
        local name=$1 dir=${2:-${T:?}} base state
        [ -n "${PG_DATA:-}" ] || { echo "pg_start_standby: no primary (pg_start first)"; return 1; }
        PG_PRIMARY_HOST=$PG_HOST PG_PRIMARY_PORT=$PG_PORT PG_PRIMARY_DATA=$PG_DATA
        base=$dir/pg-$name
        mkdir -p "$base" || return 1
        [ "$(id -u)" = 0 ] && { chown postgres: "$base" || return 1; }
        chmod 0755 "$base"
        # -R writes standby.signal and primary_conninfo (the primary's socket dir and port);
        # application_name names the standby in the primary's synchronous_standby_names.
        pg_as "$PG_BIN/pg_basebackup" -D "$base/data" -h "$PG_HOST" -p "$PG_PORT" -U "$PG_USER" \
                -d "application_name=$name" -R -X stream -c fast >"$base/basebackup.log" 2>&1 ||
                { echo "pg_basebackup failed:"; tail -n 20 "$base/basebackup.log"; return 1; }
        pg_start_on_free_port "$base/data" "$base" || return 1
        PG_CLUSTERS="$PG_CLUSTERS $base/data"
        PG_STANDBY_HOST=$base PG_STANDBY_PORT=$PG_STARTED_PORT PG_STANDBY_DATA=$base/data
        # Only the primary waits for it (set after the backup: a promoted standby does not
        # wait for a standby it does not have).
        pg_sql "ALTER SYSTEM SET synchronous_standby_names = '\"$name\"'" >/dev/null &&
                pg_sql "SELECT pg_reload_conf()" >/dev/null || return 1
        for _ in $(seq 600); do
                state=$(pg_sql "SELECT sync_state FROM pg_stat_replication WHERE application_name = '$name'")
                [ "$state" = sync ] && return 0
                sleep 0.05
        done
        echo "the standby did not become synchronous (state '$state')"
        return 1
}

pg_kill() {
        local pm kids
        pm=$(head -n 1 "$1/postmaster.pid" 2>/dev/null) || return 1
        kids=$(ps -o pid= --ppid "$pm")
        # shellcheck disable=SC2086
        kill -KILL "$pm" $kids 2>/dev/null
        for _ in $(seq 200); do
                kill -0 "$pm" 2>/dev/null || return 0
                sleep 0.05
        done
        return 1
}

pg_promote() {
        pg_as "$PG_BIN/pg_ctl" -D "$1" -w -t 120 promote >/dev/null
}

pg_db() {
        "$PG_BIN/createdb" -h "$PG_HOST" -p "$PG_PORT" -U "$PG_USER" "$1" || return 1
        echo "postgresql:///$1?host=$PG_HOST&port=$PG_PORT&user=$PG_USER"
}
