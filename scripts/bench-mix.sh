#!/usr/bin/env bash
# bench-mix.sh: the reference's Locust mix through the gateway at rising user
# counts (300 is the reference's published setting; the higher steps find
# the saturation throughput), then a sustained create run with the change
# stream's backlog at its end (issue 16). Figures go to docs/benchmarks.md.
#
#   scripts/bench-mix.sh [users ...]        # default: 300 1000 1500 2000
#
# One fresh `docstream dev` (open mode, default admission, gateway rate
# limit off, search result cache on as shipped) for the whole ladder, so
# the corpus is what the mix itself creates, as in the reference's run; a
# second fresh one for the create run. Each step: DURATION measured after
# WARMUP, `docstream bench -o json` kept, one results line with the load
# average. Traffic to loopback only, every step bounded in time.
#
# Environment: DS (a docstream binary; default: built into $WORK), WORK
# (default /tmp/bench-mix), PORT (first of the ports used, default 29000),
# DURATION / WARMUP (default 60s / 10s), CREATE_USERS (default 32), KEEP.
set -euo pipefail

cd "$(dirname "$0")/.."
WORK=${WORK:-/tmp/bench-mix}
PORT=${PORT:-29000}
DURATION=${DURATION:-60s}
WARMUP=${WARMUP:-10s}
CREATE_USERS=${CREATE_USERS:-32}
USERS=("$@")
[ ${#USERS[@]} -gt 0 ] || USERS=(300 1000 1500 2000)
mkdir -p "$WORK"
if [ -z "${DS:-}" ]; then
	DS=$WORK/docstream
	go build -o "$DS" ./cmd/docstream
fi
RESULTS=$WORK/results.md
GW=127.0.0.1:$PORT
# shellcheck source=scripts/bench-lib.sh
. scripts/bench-lib.sh
dev_ports


DEV_PID=
DATA=
start_dev() { # start_dev <name>: a fresh docstream dev, ready
	DATA=$WORK/data-$1
	rm -rf "$DATA"
	"$DS" dev --data-dir "$DATA" --log-level warn --gateway-rate-limit 0 "${PORTS[@]}" >"$WORK/dev-$1.log" 2>&1 &
	DEV_PID=$!
	wait_http "$GW" && wait_http "127.0.0.1:$((PORT + 3))"
}
stop() { # stop: docstream dev stopped, its data directory removed (KEEP=1 keeps it)
	stop_dev
	[ -n "${KEEP:-}" ] || [ -z "$DATA" ] || rm -rf "$DATA"
}
trap stop EXIT

# bench <name> <args...>: one bounded run through the gateway.
bench() {
	local name=$1
	shift
	timeout 10m "$DS" bench "$@" --server "http://$GW" --warmup "$WARMUP" -T "$DURATION" -o json >"$WORK/$name.json" 2>"$WORK/$name.log" || {
		note "| $name | failed: $(tail -1 "$WORK/$name.log") | $(load) |"
		return 0
	}
	note "| $name | $(jq -r '"\(.ok_per_s | floor) 2xx/s, p50 \(.ok_latency_ms.p50) ms, p99 \(.ok_latency_ms.p99) ms, every answer p99 \(.latency_ms.p99) ms, errors \(.errors)" + (if .lag then ", backlog at the end: CDC \(.lag.cdc_slot_lag_bytes.end) B, indexer \(.lag.indexer_lag_bytes.end) B / \(.lag.indexer_pending.end) msgs (largest \(.lag.indexer_pending.max)), caught up \(.lag.caught_up_s // "no") s" else "" end)' "$WORK/$name.json") | $(load) |"
}

note ""
note "## bench-mix $(date -u +%FT%TZ) on $(nproc) cores, $(git rev-parse --short HEAD)"
note "| run | figure | load average (1, 5, 15 min) at its end |"
note "|---|---|---|"
start_dev mix
for U in "${USERS[@]}"; do
	bench "reference-mix-$U" reference-mix -c "$U"
done
stop

start_dev create
# The backlog is read from GET /ops each second (not in the mix's steps:
# those reads cost the system CPU that shows in the latency tail).
bench "create-$CREATE_USERS" create -c "$CREATE_USERS" --ops-url "http://$GW"
stop
