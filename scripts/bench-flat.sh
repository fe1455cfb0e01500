#!/usr/bin/env bash
# bench-flat.sh: are the document service's reads flat in the corpus?
# list, get and stats at 1,000 and at 1,000,000 documents (issue 16: "cost
# the same at 1,000 and at 1,000,000 documents", ratio ≥ 0.8), in the same
# conditions: `docstream dev --targets document` (PostgreSQL, Redis, the
# document service; no change stream, so no index build runs beside the
# reads, and GETs are served without the in-process cache, which needs
# the change stream: Redis, then PostgreSQL), a corpus from `docstream
# bench load`, then each read at 64 connections direct on the service
# port. Search at scale is scripts/bench-scale.sh (it needs the index).
#
#   scripts/bench-flat.sh [documents ...]        # default: 1000 1000000
#
# Environment: DS (a docstream binary; default: built into $WORK), WORK
# (default /tmp/bench-flat), PORT (default 31000), DURATION / WARMUP
# (default 20s / 5s), KEEP. Results: $WORK/results.md.
set -euo pipefail

cd "$(dirname "$0")/.."
WORK=${WORK:-/tmp/bench-flat}
PORT=${PORT:-31000}
DURATION=${DURATION:-20s}
WARMUP=${WARMUP:-5s}
SIZES=("$@")
[ ${#SIZES[@]} -gt 0 ] || SIZES=(1000 1000000)
mkdir -p "$WORK"
if [ -z "${DS:-}" ]; then
	DS=$WORK/docstream
	go build -o "$DS" ./cmd/docstream
fi
RESULTS=$WORK/results.md
DOC=127.0.0.1:$((PORT + 5))

# shellcheck source=scripts/bench-lib.sh
. scripts/bench-lib.sh

DEV_PID=
DATA=
stop() { # stop: docstream dev stopped, its data directory removed (KEEP=1 keeps it)
	stop_dev
	[ -n "${KEEP:-}" ] || [ -z "$DATA" ] || rm -rf "$DATA"
}
trap stop EXIT

note ""
note "## bench-flat $(date -u +%FT%TZ) on $(nproc) cores, $(git rev-parse --short HEAD)"
note "| documents | figure | value | load average (1, 5, 15 min) at its end |"
note "|---|---|---|---|"
for N in "${SIZES[@]}"; do
	DATA=$WORK/data-$N
	OUT=$WORK/out-$N
	rm -rf "$DATA" "$OUT"
	mkdir -p "$OUT"
	"$DS" dev --data-dir "$DATA" --log-level warn --targets document --document-addr "$DOC" \
		--gateway-addr "127.0.0.1:$PORT" --document-grpc-addr "127.0.0.1:$((PORT + 51))" >"$OUT/dev.log" 2>&1 &
	DEV_PID=$!
	wait_http "$DOC"
	timeout 60m "$DS" bench load --documents "$N" --data-dir "$DATA" -o json >"$OUT/load.json" 2>"$OUT/load.log"
	note "| $N | corpus load | $(jq -r '"\(.load_docs_per_s | floor) docs/s (\(.documents) documents)"' "$OUT/load.json") | $(load) |"
	for s in list get stats; do
		timeout 10m "$DS" bench "$s" --document-url "http://$DOC" -c 64 --warmup "$WARMUP" -T "$DURATION" -o json >"$OUT/$s.json" 2>"$OUT/$s.log" || {
			note "| $N | $s | failed: $(tail -1 "$OUT/$s.log") | $(load) |"
			continue
		}
		note "| $N | $s | $(jq -r '"\(.ok_per_s | floor) 2xx/s, p50 \(.ok_latency_ms.p50) ms, p99 \(.ok_latency_ms.p99) ms, errors \(.errors)"' "$OUT/$s.json") | $(load) |"
	done
	stop
done
