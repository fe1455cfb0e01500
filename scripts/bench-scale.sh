#!/usr/bin/env bash
# bench-scale.sh: the 10k / 100k / 1M table of docs/benchmarks.md ("Reads at
# scale"), each figure beside its floor from the same minutes and `uptime`'s
# load average.
#
#   scripts/bench-scale.sh [documents ...]        # default: 10000 100000 1000000
#
# For each corpus size, in a fresh data directory:
#   1. `docstream dev --targets document` (PostgreSQL, migrations, no change
#      stream), then `docstream bench load`: the loader's own rate;
#   2. restart with every target: the CDC engine creates its slot and
#      snapshots the corpus as "r" events, the indexer builds the index;
#      `docstream bench index-wait` reports the build rate (progress line);
#   3. open mode, direct on the service ports: list at 64 connections beside
#      pgbench on the same SQL; get at 64 beside `docstream bench floor`;
#      search, the selective mix at 32 connections and "test" (95 % of the
#      corpus) at 8; index size on disk, RSS of the dev process;
#   4. restart in --auth-mode=required: list and search as corpus user
#      USER_K (~0.11 % of the corpus), pgbench on the list's SQL with that
#      user's readers filter, EXPLAIN ANALYZE of it;
#   5. stop and remove the data directory (KEEP=1 keeps it).
# Every dev runs with the search result cache off (--search-cache-entries
# 0): the search goals are uncached. Every step is bounded in time.
# Results: $WORK/results.md (one line per figure with its load average),
# raw JSON and logs beside it.
#
# Environment: DS (a docstream binary; default: built into $WORK), WORK
# (default /tmp/bench-scale), PORT (first of the ten ports used, default
# 28000), DURATION / WARMUP (each measured run, default 20s / 5s), USER_K
# (default 7), INDEX_TIMEOUT (default 40m), KEEP.
set -euo pipefail

cd "$(dirname "$0")/.."
WORK=${WORK:-/tmp/bench-scale}
PORT=${PORT:-28000}
DURATION=${DURATION:-20s}
WARMUP=${WARMUP:-5s}
USER_K=${USER_K:-7}
INDEX_TIMEOUT=${INDEX_TIMEOUT:-40m}
SIZES=("$@")
[ ${#SIZES[@]} -gt 0 ] || SIZES=(10000 100000 1000000)
mkdir -p "$WORK"
if [ -z "${DS:-}" ]; then
	DS=$WORK/docstream
	go build -o "$DS" ./cmd/docstream
fi
RESULTS=$WORK/results.md

DOC=127.0.0.1:$((PORT + 5))
SEARCH=127.0.0.1:$((PORT + 3))
FLOOR=127.0.0.1:$((PORT + 9))
# shellcheck source=scripts/bench-lib.sh
. scripts/bench-lib.sh
dev_ports


DEV_PID=
start_dev() { # start_dev <log> <args...>: docstream dev in the background, not waiting
	local log=$1
	shift
	# The search goals are uncached: the result cache is off.
	"$DS" dev --data-dir "$DATA" --log-level warn --gateway-rate-limit 0 --search-cache-entries 0 "${PORTS[@]}" "$@" >"$log" 2>&1 &
	DEV_PID=$!
}
wait_ready() { # wait_ready <host:port>: ready; sets DB (each start of dev's PostgreSQL takes a new port)
	wait_http "$1" && DB=$(jq -r .database_url "$DATA/dev.json")
}
FLOOR_PID=
cleanup() {
	[ -z "$FLOOR_PID" ] || kill "$FLOOR_PID" 2>/dev/null || true
	stop_dev
	[ -n "${KEEP:-}" ] || [ -z "${DATA:-}" ] || rm -rf "$DATA"
}
trap cleanup EXIT

# bench <name> <args...>: a bounded `docstream bench` run, its JSON kept,
# one line of results with the load average at its end.
bench() {
	local name=$1
	shift
	timeout 10m "$DS" bench "$@" --warmup "$WARMUP" -T "$DURATION" -o json >"$OUT/$name.json" 2>"$OUT/$name.log" || {
		note "| $N | $name | failed: $(tail -1 "$OUT/$name.log") | $(load) |"
		return 0
	}
	note "| $N | $name | $(jq -r '"\(.ok_per_s | floor) 2xx/s, p50 \(.ok_latency_ms.p50) ms, p99 \(.ok_latency_ms.p99) ms, errors \(.errors)"' "$OUT/$name.json") | $(load) |"
}

# pgbench_floor <name> <sql> [pgbench args]: the same SQL by pgbench, 64
# clients, sent as the service's pgx sends it: unnamed statements of the
# extended protocol, each planned with its values (-M prepared would let
# PostgreSQL switch to a generic plan after five executions, which for the
# required-mode list at 1M walked the created_at index: 63 tps, below the
# service it should bound).
pgbench_floor() {
	local name=$1
	echo "$2" >"$OUT/$name.sql"
	shift 2
	timeout 5m pgbench -n -M extended -c 64 -j 2 -T "${DURATION%s}" "$@" -f "$OUT/$name.sql" "$DB" >"$OUT/$name.txt" 2>&1 || true
	note "| $N | $name | pgbench 64 clients: $(grep -o 'tps = [0-9.]*' "$OUT/$name.txt" | head -1), $(grep -o 'latency average = [0-9.]* ms' "$OUT/$name.txt") | $(load) |"
}

COLUMNS="id, title, coalesce(content_type, ''), coalesce(content_size, 0), coalesce(s3_key, ''), status, created_by, created_at, updated_at, coalesce(version, 1), coalesce(content_sha256, ''), coalesce(owner, '')"
OWNER="user:user$USER_K@bench.example"

note ""
note "## bench-scale $(date -u +%FT%TZ) on $(nproc) cores, $(git rev-parse --short HEAD)"
note "| documents | figure | value | load average (1, 5, 15 min) at its end |"
note "|---|---|---|---|"
for N in "${SIZES[@]}"; do
	DATA=$WORK/data-$N
	OUT=$WORK/out-$N
	rm -rf "$DATA" "$OUT"
	mkdir -p "$OUT"
	note "| $N | disk before | $(df -h --output=avail "$WORK" | tail -1 | tr -d ' ') free | $(load) |"

	# 1. The corpus, with no change stream running.
	start_dev "$OUT/dev-load.log" --targets document
	wait_ready "$DOC"
	timeout 60m "$DS" bench load --documents "$N" --data-dir "$DATA" -o json >"$OUT/load.json" 2>"$OUT/load.log"
	note "| $N | corpus load (bench load) | $(jq -r '"\(.load_docs_per_s | floor) docs/s (\(.documents) documents, \(.shares) shares, \(.load_ns / 1e9 | floor) s)"' "$OUT/load.json") | $(load) |"
	stop_dev

	# 2. The index, from the snapshot.
	start_dev "$OUT/dev-open.log"
	if timeout "$INDEX_TIMEOUT" "$DS" bench index-wait --documents "$N" --search-url "http://$SEARCH" --timeout "$INDEX_TIMEOUT" -o json >"$OUT/index.json" 2>"$OUT/index.log"; then
		note "| $N | index build (dev start → all indexed, snapshot r events → indexer) | $(jq -r '"\(.docs_per_s | floor) docs/s (\(.indexed) in \(.wait_ns / 1e9 | floor) s)\(if .timed_out then ", gave up" else "" end)"' "$OUT/index.json") | $(load) |"
	else
		note "| $N | index build | stopped at $INDEX_TIMEOUT: $(tr '\r' '\n' <"$OUT/index.log" | grep indexed | tail -1) | $(load) |"
	fi
	wait_ready "$DOC"
	wait_ready "$SEARCH"
	note "| $N | index size on disk | $(du -sh "$DATA/index" | cut -f1) | $(load) |"
	note "| $N | RSS of docstream dev after the build | $(($(ps -o rss= -p "$DEV_PID") / 1024)) MB | $(load) |"

	# 3. Open mode.
	bench list-open list --document-url "http://$DOC" -c 64
	pgbench_floor list-open-floor "SELECT $COLUMNS FROM documents.documents ORDER BY created_at DESC, id DESC LIMIT 101;"
	timeout 15m "$DS" bench floor --document-url "http://$DOC" --listen "$FLOOR" 2>"$OUT/floor.log" &
	FLOOR_PID=$!
	for _ in $(seq 300); do curl -fs -o /dev/null "http://$FLOOR/documents" && break; sleep 0.2; done
	bench get get --document-url "http://$DOC" -c 64
	bench get-floor get --document-url "http://$FLOOR" -c 64
	kill "$FLOOR_PID" 2>/dev/null || true
	wait "$FLOOR_PID" 2>/dev/null || true
	FLOOR_PID=
	bench search-selective search --search-url "http://$SEARCH" -c 32
	bench search-test search --search-url "http://$SEARCH" -c 8 --query test
	note "| $N | RSS of docstream dev after the reads | $(($(ps -o rss= -p "$DEV_PID") / 1024)) MB | $(load) |"
	stop_dev

	# 4. Required mode, as one corpus user.
	start_dev "$OUT/dev-required.log" --auth-mode required
	wait_ready "$DOC"
	wait_ready "$SEARCH"
	TOKEN=$("$DS" token mint --subject "user$USER_K@bench.example" --auth-jwt-secret "$(cat "$DATA/auth.secret")" 2>/dev/null)
	SEES=$(psql "$DB" -Atc "SELECT count(*) FROM documents.documents WHERE readers && ARRAY['$OWNER']")
	note "| $N | user$USER_K@bench.example may view | $SEES documents | $(load) |"
	bench list-required list --document-url "http://$DOC" -c 64 --token "$TOKEN"
	# As the service sends it: the caller's keys a parameter of the
	# statement (pgbench -M extended sends :owner as $1).
	REQUIRED_SQL="SELECT $COLUMNS FROM documents.documents WHERE readers && ARRAY[:owner]::text[] ORDER BY created_at DESC, id DESC LIMIT 101;"
	pgbench_floor list-required-floor "$REQUIRED_SQL" -D "owner=$OWNER"
	QUOTED="'$OWNER'"
	psql "$DB" -c "EXPLAIN (ANALYZE, BUFFERS) ${REQUIRED_SQL/:owner/$QUOTED}" >"$OUT/list-required-explain.txt" 2>&1 || true
	# The plan a prepared statement may switch to after five executions
	# (generic: the keys unknown when planned).
	psql "$DB" >>"$OUT/list-required-explain.txt" 2>&1 <<-SQL || true
		SET plan_cache_mode = force_generic_plan;
		PREPARE required_list(text) AS ${REQUIRED_SQL/:owner/\$1}
		EXPLAIN (ANALYZE, BUFFERS) EXECUTE required_list($QUOTED);
	SQL
	note "| $N | required list plan (with the key / generic) | $(grep -o 'Bitmap Heap Scan\|Index Scan Backward using [a-z_]*\|Seq Scan' "$OUT/list-required-explain.txt" | paste -sd /), $(grep -o 'Execution Time: .*' "$OUT/list-required-explain.txt" | paste -sd /) | $(load) |"
	bench search-required-selective search --search-url "http://$SEARCH" -c 32 --token "$TOKEN"
	bench search-required-test search --search-url "http://$SEARCH" -c 8 --query test --token "$TOKEN"
	stop_dev

	note "| $N | disk used by the data dir | $(du -sh "$DATA" | cut -f1) | $(load) |"
	[ -n "${KEEP:-}" ] || rm -rf "$DATA"
done
