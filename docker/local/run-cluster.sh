#!/usr/bin/env bash
# Runs Beehive distributed on this machine, in the foreground until Ctrl-C:
# the real servers (started by infra.sh if they are not up), `beehive
# migrate`, then every service as its own process registered in Consul,
# with two gateways: gateway 1 HTTP/WebSocket on :8080, gateway 2 on :8081.
# Consul's UI is on http://127.0.0.1:8500. SIGINT or SIGTERM stops every
# process this script started (each deregisters from Consul on the way out).
#
#   docker/local/run-cluster.sh [--data-dir DIR]
set -euo pipefail

HERE=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd -- "$HERE/../.." && pwd)
DATA=${BEEHIVE_CLUSTER_DATA:-$ROOT/.data/cluster}
if [[ ${1:-} == --data-dir ]]; then DATA=$2; fi
mkdir -p "$DATA/logs"

die() { echo "run-cluster: $*" >&2; exit 1; }

bash "$HERE/infra.sh" up || die "the servers did not start (see above)"

echo "run-cluster: building beehive"
(cd "$ROOT" && go build -o "$ROOT/bin/beehive" ./cmd/beehive) || die "build failed"
BIN=$ROOT/bin/beehive

# One signing key and one internal credential for the whole cluster, made
# on first run and kept in the data dir.
if [[ ! -f $DATA/secrets.env ]]; then
  key=$(head -c 32 /dev/urandom | base64)
  token=$(head -c 24 /dev/urandom | base64 | tr -d '/+=')
  umask 077
  printf 'BEEHIVE_AUTH_SIGNING_KEYS=k1=%s\nBEEHIVE_AUTH_ACTIVE_KID=k1\nBEEHIVE_SERVICE_TOKEN=%s\n' "$key" "$token" > "$DATA/secrets.env"
fi
set -a
# shellcheck disable=SC1091
source "$DATA/secrets.env"
BEEHIVE_MODE=distributed
BEEHIVE_KAFKA_BROKERS=127.0.0.1:9092
BEEHIVE_CASSANDRA_HOSTS=127.0.0.1:9042
BEEHIVE_REDIS_ADDR=127.0.0.1:6379
BEEHIVE_CONSUL_ADDR=127.0.0.1:8500
BEEHIVE_LOG_LEVEL=${BEEHIVE_LOG_LEVEL:-info}
set +a

"$BIN" migrate || die "beehive migrate failed"

pids=()
stop() {
  local rc=$?
  trap - INT TERM EXIT
  echo
  echo "run-cluster: stopping ${#pids[@]} processes"
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  echo "run-cluster: stopped (servers keep running: make infra-down stops them)"
  exit "$rc"
}
trap stop INT TERM EXIT

# service http grpc [extra env...]
start() {
  local svc=$1 http=$2 grpc=$3
  shift 3
  env "$@" "$BIN" serve "$svc" --http-addr "127.0.0.1:$http" --grpc-addr "127.0.0.1:$grpc" \
    >"$DATA/logs/$svc-$http.log" 2>&1 &
  pids+=($!)
  echo "run-cluster: $svc  http 127.0.0.1:$http  grpc 127.0.0.1:$grpc  (log $DATA/logs/$svc-$http.log)"
}

start auth     7001 7101
start user     7002 7102
start group    7003 7103
start message  7004 7104
start query    7005 7105
start presence 7006 7106
start pusher   7007 7107
start gateway  8080 7108 BEEHIVE_GATEWAY_ID=gw-1
start gateway  8081 7109 BEEHIVE_GATEWAY_ID=gw-2

for port in 8080 8081 7001 7002 7003 7004 7005 7006 7007; do
  for _ in $(seq 1 300); do
    curl -sf "http://127.0.0.1:$port/ready" >/dev/null 2>&1 && break
    sleep 0.2
  done
  curl -sf "http://127.0.0.1:$port/ready" >/dev/null 2>&1 || {
    echo "run-cluster: the process on :$port is not ready:" >&2
    curl -s "http://127.0.0.1:$port/ready" >&2 || true
    tail -n 30 "$DATA"/logs/*-"$port".log >&2 || true
    exit 1
  }
done
echo "run-cluster: ready — gateway 1 http://127.0.0.1:8080, gateway 2 http://127.0.0.1:8081, Consul UI http://127.0.0.1:8500/ui"
wait -n "${pids[@]}" || true
echo "run-cluster: a process exited; stopping the rest (see $DATA/logs)" >&2
exit 1
