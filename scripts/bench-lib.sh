# bench-lib.sh: what the bench-*.sh scripts share (sourced, not run).
# Each script sets RESULTS (its results file) and starts docstream dev in
# the background with its pid in DEV_PID.

# load: the load average (1, 5, 15 min).
load() { uptime | sed 's/.*load average: //'; }

# note <line>: a results line, printed and kept in $RESULTS.
note() { echo "$*" | tee -a "$RESULTS"; }

# wait_http <host:port>: its /health/ready answers 200, at most 5 minutes,
# while docstream dev ($DEV_PID) runs.
wait_http() {
	for _ in $(seq 1500); do
		curl -fs -o /dev/null "http://$1/health/ready" && return 0
		kill -0 "$DEV_PID" 2>/dev/null || { echo "docstream dev exited" >&2; return 1; }
		sleep 0.2
	done
	echo "$1 not ready after 5 minutes" >&2
	return 1
}

# stop_dev: docstream dev stopped gracefully (SIGINT: it drains and
# flushes), killed if it still runs after a minute.
stop_dev() {
	[ -n "${DEV_PID:-}" ] || return 0
	kill -INT "$DEV_PID" 2>/dev/null || true
	for _ in $(seq 300); do kill -0 "$DEV_PID" 2>/dev/null || break; sleep 0.2; done
	kill -KILL "$DEV_PID" 2>/dev/null || true
	wait "$DEV_PID" 2>/dev/null || true
	DEV_PID=
}

# dev_ports: PORTS, the listen flags of every docstream dev target on ports
# from $PORT on (gateway $PORT, search +3, document +5, …), the same layout
# in every script.
dev_ports() {
	PORTS=(--gateway-addr "127.0.0.1:$PORT" --gateway-admin-addr "127.0.0.1:$((PORT + 1))"
		--signature-addr "127.0.0.1:$((PORT + 2))" --search-addr "127.0.0.1:$((PORT + 3))" --realtime-addr "127.0.0.1:$((PORT + 4))"
		--document-addr "127.0.0.1:$((PORT + 5))" --document-grpc-addr "127.0.0.1:$((PORT + 51))" --signature-document-grpc "127.0.0.1:$((PORT + 51))"
		--indexer-addr "127.0.0.1:$((PORT + 6))" --extractor-addr "127.0.0.1:$((PORT + 7))" --webhooks-addr "127.0.0.1:$((PORT + 8))"
		--cdc-addr "127.0.0.1:$((PORT + 83))" --bus-listen "127.0.0.1:$((PORT + 250))")
}
