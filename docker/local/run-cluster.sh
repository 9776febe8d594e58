#!/usr/bin/env bash
# Runs Beehive distributed on this machine, in the foreground until Ctrl-C:
# the real servers (started by infra.sh if they are not up), `beehive
# migrate`, then every service as its own process registered in Consul,
# with two gateways: gateway 1 HTTP/WebSocket on :8080, gateway 2 on :8081.
# Consul's UI is on http://127.0.0.1:8500. A process that exits is reported
# and started again after a short backoff (1 s, doubling to 30 s while it
# keeps dying within a minute); the others go on. SIGINT or SIGTERM stops
# every process this script started (each deregisters from Consul on the
# way out).
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
# The servers' addresses (BEEHIVE_KAFKA_BROKERS, ..._CASSANDRA_HOSTS,
# ..._REDIS_ADDR, ..._CONSUL_ADDR), as infra.sh runs them.
eval "$(bash "$HERE/infra.sh" env)"
BEEHIVE_LOG_LEVEL=${BEEHIVE_LOG_LEVEL:-info}
set +a

"$BIN" migrate || die "beehive migrate failed"

# pid -> the arguments of start that launched it; per process (by its
# HTTP port): when it last started and its current backoff.
declare -A procs=() started=() backoff=()
stop() {
  local rc=$?
  trap - INT TERM EXIT
  echo
  echo "run-cluster: stopping ${#procs[@]} processes"
  for p in "${!procs[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${!procs[@]}"; do wait "$p" 2>/dev/null || true; done
  echo "run-cluster: stopped (servers keep running: make infra-down stops them)"
  exit "$rc"
}
trap stop INT TERM EXIT

# service http grpc [extra env...]
start() {
  local svc=$1 http=$2 grpc=$3
  shift 3
  env "$@" "$BIN" serve "$svc" --http-addr "127.0.0.1:$http" --grpc-addr "127.0.0.1:$grpc" \
    >>"$DATA/logs/$svc-$http.log" 2>&1 &
  procs[$!]="$svc $http $grpc $*"
  started[$http]=$SECONDS
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
# Supervise: report a process that exits and start it again after a
# backoff; the rest keep serving.
while :; do
  pid=""
  rc=0
  wait -n -p pid "${!procs[@]}" || rc=$?
  [[ -n $pid && -n ${procs[$pid]:-} ]] || continue
  read -r -a args <<<"${procs[$pid]}"
  unset "procs[$pid]"
  http=${args[1]}
  if ((SECONDS - ${started[$http]} > 60)); then backoff[$http]=1; fi
  pause=${backoff[$http]:-1}
  backoff[$http]=$((pause * 2 > 30 ? 30 : pause * 2))
  echo "run-cluster: ${args[0]} on :$http (pid $pid) exited with status $rc; restarting in ${pause}s (log $DATA/logs/${args[0]}-$http.log)" >&2
  tail -n 5 "$DATA/logs/${args[0]}-$http.log" | sed 's/^/    /' >&2 || true
  sleep "$pause"
  start "${args[@]}"
done
