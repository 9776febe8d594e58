#!/usr/bin/env bash
# shellcheck disable=SC2317 # start_*/ready_* are called indirectly ("start_$svc")
# Installs, starts and stops the real backing servers for local development and
# CI: Redis, Consul, Kafka (KRaft) and Cassandra, each on 127.0.0.1, each with
# its config, data, log and pid file under one data directory.
#
#   docker/local/infra.sh up     [--data-dir DIR] [--only redis,consul,kafka,cassandra]
#   docker/local/infra.sh down   [--data-dir DIR] [--only ...]
#   docker/local/infra.sh status [--data-dir DIR] [--only ...]
#   docker/local/infra.sh env                  # BEEHIVE_* / BEEHIVE_TEST_* exports
#   docker/local/infra.sh kill   [--data-dir DIR] --only SVC  # SIGKILL (a crash); `up` restarts
#   docker/local/infra.sh pause  [--data-dir DIR] --only SVC  # SIGSTOP (a hang)
#   docker/local/infra.sh resume [--data-dir DIR] --only SVC  # SIGCONT
#   docker/local/infra.sh kafka-cli TOOL ARGS  # Kafka CLI from the same jars
#                                              # (topics, console-producer,
#                                              #  console-consumer, consumer-groups,
#                                              #  or a fully qualified class)
#
# DIR defaults to .data/infra under the repository root. `up` is idempotent: a
# server that is already running (by its saved pid) and ready is left alone.
# BEEHIVE_INFRA_PORT_OFFSET (default 0) is added to every port, so a second
# set of servers (the chaos suite's, which it kills) can run beside the first.
# See docker/local/README.md for ports, timings and overrides.
set -euo pipefail
shopt -s inherit_errexit

HERE=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd -- "$HERE/../.." && pwd)

# Start order: Cassandra is the slowest, so it is launched first.
ALL_SERVICES=(cassandra redis consul kafka)

CACHE_DIR=${BEEHIVE_CACHE_DIR:-${XDG_CACHE_HOME:-${HOME:-$ROOT/.data}/.cache}/beehive}
CONSUL_VERSION=1.14.11
CONSUL_BIN=${BEEHIVE_CONSUL_BIN:-$ROOT/bin/consul}
CASSANDRA_HEAP=${BEEHIVE_CASSANDRA_HEAP:-1G}
KAFKA_HEAP=${BEEHIVE_KAFKA_HEAP:-512m}
MVN_DEPENDENCY_PLUGIN=org.apache.maven.plugins:maven-dependency-plugin:3.8.1

PORT_OFFSET=${BEEHIVE_INFRA_PORT_OFFSET:-0}
[[ $PORT_OFFSET =~ ^[0-9]+$ ]] || { echo "infra.sh: BEEHIVE_INFRA_PORT_OFFSET must be a number" >&2; exit 2; }
REDIS_PORT=$((6379 + PORT_OFFSET))
CONSUL_HTTP_PORT=$((8500 + PORT_OFFSET))
CONSUL_GRPC_PORT=$((8502 + PORT_OFFSET))
CONSUL_GRPC_TLS_PORT=$((8503 + PORT_OFFSET))
CONSUL_SERVER_PORT=$((8300 + PORT_OFFSET))
CONSUL_SERF_LAN_PORT=$((8301 + PORT_OFFSET))
CONSUL_SERF_WAN_PORT=$((8302 + PORT_OFFSET))
CONSUL_DNS_PORT=$((8600 + PORT_OFFSET))
KAFKA_PORT=$((9092 + PORT_OFFSET))
KAFKA_CONTROLLER_PORT=$((9093 + PORT_OFFSET))
CASSANDRA_PORT=$((9042 + PORT_OFFSET))
CASSANDRA_STORAGE_PORT=$((7000 + PORT_OFFSET))
CASSANDRA_SSL_STORAGE_PORT=$((7001 + PORT_OFFSET))

# Seconds to wait for readiness after launching, and for exit after SIGTERM.
declare -A READY_TIMEOUT=([redis]=30 [consul]=90 [kafka]=180 [cassandra]=300)
declare -A STOP_TIMEOUT=([redis]=20 [consul]=20 [kafka]=60 [cassandra]=60)
# What /proc/PID/cmdline must contain for a saved pid to still be our server.
declare -A CMD_MATCH=([redis]=redis-server [consul]=consul [kafka]=kafka.Kafka [cassandra]=CassandraDaemon)
declare -A PORTS=(
  [redis]="$REDIS_PORT"
  [consul]="$CONSUL_HTTP_PORT $CONSUL_GRPC_PORT $CONSUL_SERVER_PORT $CONSUL_SERF_LAN_PORT"
  [kafka]="$KAFKA_PORT $KAFKA_CONTROLLER_PORT"
  [cassandra]="$CASSANDRA_PORT $CASSANDRA_STORAGE_PORT"
)
declare -A ADDR=(
  [redis]="127.0.0.1:$REDIS_PORT"
  [consul]="127.0.0.1:$CONSUL_HTTP_PORT"
  [kafka]="127.0.0.1:$KAFKA_PORT"
  [cassandra]="127.0.0.1:$CASSANDRA_PORT"
)
declare -A ENV_NAME=(
  [redis]=BEEHIVE_REDIS_ADDR
  [consul]=BEEHIVE_CONSUL_ADDR
  [kafka]=BEEHIVE_KAFKA_BROKERS
  [cassandra]=BEEHIVE_CASSANDRA_HOSTS
)
# What integration tests read (docs/CONVENTIONS.md); they default to the same ports.
declare -A TEST_ENV_NAME=(
  [redis]=BEEHIVE_TEST_REDIS
  [consul]=BEEHIVE_TEST_CONSUL
  [kafka]=BEEHIVE_TEST_KAFKA
  [cassandra]=BEEHIVE_TEST_CASSANDRA
)

# ---------------------------------------------------------------- helpers

say() { printf '%s\n' "$*"; }
die() { printf 'infra.sh: %s\n' "$*" >&2; exit 2; }

usage() {
  # The comment block at the top of this file, from its third line.
  awk 'NR > 2 && /^#/ { sub(/^# ?/, ""); print; next } NR > 2 { exit }' "${BASH_SOURCE[0]}"
  exit "${1:-2}"
}

# A command's output with each line prefixed by the service name.
prefix() {
  local line
  while IFS= read -r line; do printf '%-10s %s\n' "[$1]" "$line"; done
}

svc_dir() { printf '%s/%s' "$DATA_DIR" "$1"; }
pid_file() { printf '%s/%s/%s.pid' "$DATA_DIR" "$1" "$1"; }
log_file() { printf '%s/%s/%s.log' "$DATA_DIR" "$1" "$1"; }

# Prints the saved pid of service $1 if that process is alive and still is
# the server (guards against pid reuse); fails otherwise.
svc_pid() {
  local f pid cmd
  f=$(pid_file "$1")
  [[ -s $f ]] || return 1
  pid=$(tr -dc '0-9' <"$f")
  [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null || return 1
  cmd=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || return 1
  [[ $cmd == *"${CMD_MATCH[$1]}"* ]] || return 1
  printf '%s' "$pid"
}

port_open() { timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null; }

# "pid NNN (command)" of whoever listens on TCP port $1, if ss can tell.
port_owner() {
  local pid
  command -v ss >/dev/null || return 0
  pid=$(ss -Hltnp "sport = :$1" 2>/dev/null | grep -o 'pid=[0-9]*' | head -1 | cut -d= -f2 || true)
  [[ -n $pid ]] || return 0
  printf 'pid %s (%s)' "$pid" "$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | cut -c1-120)"
}

tail_log() {
  local f=$1 n=${2:-40}
  if [[ -s $f ]]; then
    say "---- last $n lines of $f ----"
    tail -n "$n" "$f"
    say "---- end of $f ----"
  else
    say "(log $f is empty or missing)"
  fi
}

# Moves the previous run's log aside so readiness lines come from this run.
rotate_log() { [[ -f $1 ]] && mv -f "$1" "$1.1"; return 0; }

as_root() {
  if [[ $(id -u) == 0 ]]; then "$@"
  elif command -v sudo >/dev/null; then sudo "$@"
  else die "need root (or sudo) to run: $*"; fi
}

# apt-get install, non-interactive, serialised between parallel services.
apt_install() {
  mkdir -p "$CACHE_DIR"
  (
    flock 8
    say "installing OS packages: $* (apt-get)"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get -q update
    as_root env DEBIAN_FRONTEND=noninteractive apt-get -q install -y \
      -o DPkg::Lock::Timeout=300 "$@"
  ) 8>"$CACHE_DIR/.apt.lock"
}

need_java() {
  if ! command -v java >/dev/null || ! command -v mvn >/dev/null; then
    command -v apt-get >/dev/null || die "java and mvn are needed (Java 17 + Maven)"
    (
      flock 7
      command -v java >/dev/null && command -v mvn >/dev/null && exit 0
      apt_install openjdk-17-jdk-headless maven
    ) 7>"$CACHE_DIR/.java.lock"
  fi
}

# Copies the runtime jars of docker/local/$1/pom.xml into a cache directory
# keyed by the pom's hash (reused across data dirs and runs; Maven's own
# ~/.m2 cache is reused too) and prints that directory.
ensure_libs() {
  local name=$1 pom="$HERE/$1/pom.xml" sum dir tmp
  sum=$(sha256sum "$pom" | cut -c1-12)
  dir="$CACHE_DIR/$name-lib-$sum"
  if [[ ! -f $dir/.complete ]]; then
    mkdir -p "$CACHE_DIR"
    need_java >&2
    (
      flock 9
      [[ -f $dir/.complete ]] && exit 0
      say "resolving $name jars from Maven Central into $dir" >&2
      tmp=$(mktemp -d "$CACHE_DIR/.$name-lib.XXXXXX")
      # Output goes to a log (Maven 3.8 -q still prints colour resets).
      if ! mvn -q -B -Dstyle.color=never -f "$pom" "$MVN_DEPENDENCY_PLUGIN:copy-dependencies" \
          -DoutputDirectory="$tmp" -DincludeScope=runtime >"$tmp.mvn.log" 2>&1; then
        rm -rf "$tmp"
        say "mvn copy-dependencies failed for $pom" >&2
        tail_log "$tmp.mvn.log" 60 >&2
        exit 1
      fi
      rm -f "$tmp.mvn.log"
      touch "$tmp/.complete"
      rm -rf "$dir"
      mv "$tmp" "$dir"
    ) 9>"$CACHE_DIR/.mvn.lock" || return 1
  fi
  printf '%s' "$dir"
}

# Launches "$@" detached (own session, stdin closed, output to $log) and
# records its pid in $pidfile. The wrapper writes its own pid and then execs,
# so the pid is the server's. Lock fds are closed so servers do not hold them.
launch() {
  local pidfile=$1 log=$2; shift 2
  rm -f "$pidfile"
  # shellcheck disable=SC2016 # $$ and $@ expand in the child bash
  setsid bash -c 'echo $$ >"$0"; exec "$@"' "$pidfile" "$@" \
    </dev/null >>"$log" 2>&1 7>&- 8>&- 9>&- &
  local i
  for i in $(seq 1 50); do [[ -s $pidfile ]] && return 0; sleep 0.1; done
  say "could not record the pid of: $*"
  return 1
}

# ---------------------------------------------------------------- readiness

ready_redis() {
  [[ $(timeout 3 redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null) == PONG ]]
}

ready_consul() {
  local leader
  leader=$(curl -fsS --max-time 3 "http://127.0.0.1:$CONSUL_HTTP_PORT/v1/status/leader" 2>/dev/null) || return 1
  [[ -n $leader && $leader != '""' ]]
}

ready_kafka() {
  grep -q 'Kafka Server started' "$(log_file kafka)" 2>/dev/null && port_open "$KAFKA_PORT"
}

ready_cassandra() {
  grep -q 'Starting listening for CQL clients' "$(log_file cassandra)" 2>/dev/null &&
    port_open "$CASSANDRA_PORT"
}

# ---------------------------------------------------------------- redis

start_redis() {
  local d; d=$(svc_dir redis)
  if ! command -v redis-server >/dev/null || ! command -v redis-cli >/dev/null; then
    apt_install redis-server
    # Where the package's own service got started, it would hold our port.
    as_root service redis-server stop >/dev/null 2>&1 || true
  fi
  mkdir -p "$d/data"
  cat >"$d/redis.conf" <<EOF
# Written by docker/local/infra.sh; rewritten on every start.
bind 127.0.0.1
port $REDIS_PORT
protected-mode yes
daemonize yes
supervised no
pidfile "$d/redis.pid"
logfile "$d/redis.log"
loglevel notice
dir "$d/data"
dbfilename dump.rdb
save 3600 1 300 100 60 10000
stop-writes-on-bgsave-error no
appendonly yes
appendfsync everysec
EOF
  rm -f "$d/redis.pid"
  redis-server "$d/redis.conf" </dev/null >>"$d/redis.log" 2>&1 7>&- 8>&- 9>&-
  # daemonize: the pidfile appears once the child is up.
  local i
  for i in $(seq 1 50); do [[ -s $d/redis.pid ]] && return 0; sleep 0.1; done
  say "redis-server did not write $d/redis.pid"
  return 1
}

# ---------------------------------------------------------------- consul

consul_is_built() { # $1: path of a consul binary
  local v
  [[ -x $1 ]] || return 1
  v=$("$1" version 2>/dev/null || true)
  [[ $v == "Consul v$CONSUL_VERSION"* ]]
}

# Makes $CONSUL_BIN a consul v$CONSUL_VERSION. The build (from the Go module
# proxy, pinned by docker/local/consul-build/go.{mod,sum}) is kept in the
# cache dir keyed by those files, so a fresh clone on the same machine (CI)
# only copies it.
ensure_consul() {
  consul_is_built "$CONSUL_BIN" && return 0
  local gobin key cached
  key=$(cat "$HERE/consul-build/go.mod" "$HERE/consul-build/go.sum" | sha256sum | cut -c1-12)
  cached="$CACHE_DIR/consul-v$CONSUL_VERSION-$key"
  mkdir -p "$CACHE_DIR" "$(dirname "$CONSUL_BIN")"
  (
    flock 9
    if ! consul_is_built "$cached"; then
      gobin=$(command -v go || true)
      if [[ -z $gobin && -x /usr/local/go/bin/go ]]; then gobin=/usr/local/go/bin/go; fi
      if [[ -z $gobin ]]; then say "go is needed to build consul"; exit 1; fi
      buildlog="$CACHE_DIR/consul-build.log"
      say "building consul v$CONSUL_VERSION from the Go module proxy (~3-4 min the first time; log $buildlog)"
      t0=$SECONDS tmp="$cached.tmp.$$"
      # GOWORK=off: docker/local/consul-build is its own module, outside any go.work.
      # -mod=readonly: go.mod/go.sum there are complete; never rewrite them.
      if ! (cd "$HERE/consul-build" &&
        GOWORK=off GOFLAGS="-buildvcs=false -mod=readonly" CGO_ENABLED=0 \
          "$gobin" build -trimpath -ldflags="-s -w" -o "$tmp" github.com/hashicorp/consul) \
          >"$buildlog" 2>&1; then
        rm -f "$tmp"
        say "consul build failed"
        tail_log "$buildlog" 60
        exit 1
      fi
      mv -f "$tmp" "$cached"
      say "consul built in $((SECONDS - t0))s"
    fi
    cp -f "$cached" "$CONSUL_BIN.tmp.$$"
    mv -f "$CONSUL_BIN.tmp.$$" "$CONSUL_BIN"
    say "installed $CONSUL_BIN (from $cached)"
  ) 9>"$CACHE_DIR/.consul.lock" || return 1
}

start_consul() {
  local d; d=$(svc_dir consul)
  ensure_consul
  mkdir -p "$d"
  rotate_log "$(log_file consul)"
  # Dev mode: one in-memory server; state is not kept across restarts.
  launch "$(pid_file consul)" "$(log_file consul)" \
    "$CONSUL_BIN" agent -dev -node beehive-local \
    -bind 127.0.0.1 -client 127.0.0.1 -ui \
    -http-port "$CONSUL_HTTP_PORT" -grpc-port "$CONSUL_GRPC_PORT" \
    -grpc-tls-port "$CONSUL_GRPC_TLS_PORT" -server-port "$CONSUL_SERVER_PORT" \
    -serf-lan-port "$CONSUL_SERF_LAN_PORT" -serf-wan-port "$CONSUL_SERF_WAN_PORT" \
    -dns-port "$CONSUL_DNS_PORT"
}

# ---------------------------------------------------------------- kafka

kafka_java() { # runs a Kafka tool class quietly with the cached jars
  local lib=$1; shift
  java -Dlog4j2.configurationFile="$HERE/kafka/tools-log4j2.properties" -cp "$lib/*" "$@"
}

start_kafka() {
  local d lib cid
  d=$(svc_dir kafka)
  lib=$(ensure_libs kafka)
  mkdir -p "$d/conf" "$d/data"
  sed -e "s#@DATA@#$d/data#g" -e "s#@PORT@#$KAFKA_PORT#g" \
    -e "s#@CONTROLLER_PORT@#$KAFKA_CONTROLLER_PORT#g" \
    "$HERE/kafka/server.properties.in" >"$d/conf/server.properties"
  if [[ ! -f $d/data/meta.properties ]]; then
    if [[ ! -s $d/cluster.id ]]; then
      kafka_java "$lib" kafka.tools.StorageTool random-uuid >"$d/cluster.id"
    fi
    cid=$(<"$d/cluster.id")
    say "formatting KRaft storage $d/data (cluster id $cid)"
    kafka_java "$lib" kafka.tools.StorageTool format -t "$cid" \
      -c "$d/conf/server.properties" --ignore-formatted
  fi
  rotate_log "$(log_file kafka)"
  launch "$(pid_file kafka)" "$(log_file kafka)" \
    java "-Xms$KAFKA_HEAP" "-Xmx$KAFKA_HEAP" -server -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
    -XX:InitiatingHeapOccupancyPercent=35 -XX:+ExplicitGCInvokesConcurrent \
    -XX:MaxInlineLevel=15 -Djava.awt.headless=true \
    -Dkafka.logs.dir="$d" -Dlog4j2.configurationFile="$HERE/kafka/log4j2.properties" \
    -cp "$lib/*" kafka.Kafka "$d/conf/server.properties"
}

# ---------------------------------------------------------------- cassandra

start_cassandra() {
  local d lib jamm
  local -a jamms
  d=$(svc_dir cassandra)
  lib=$(ensure_libs cassandra)
  jamms=("$lib"/jamm-*.jar)
  jamm=${jamms[0]}
  if [[ ! -f $jamm ]]; then say "no jamm jar in $lib"; return 1; fi
  mkdir -p "$d/conf" "$d/data"
  sed -e "s#@DATA@#$d/data#g" -e "s#@NATIVE_PORT@#$CASSANDRA_PORT#g" \
    -e "s#@STORAGE_PORT@#$CASSANDRA_STORAGE_PORT#g" -e "s#@SSL_STORAGE_PORT@#$CASSANDRA_SSL_STORAGE_PORT#g" \
    "$HERE/cassandra/cassandra.yaml.in" >"$d/conf/cassandra.yaml"
  local -a jpms
  mapfile -t jpms < <(grep '^-' "$HERE/cassandra/jvm17.args" | tr ' ' '\n')
  rotate_log "$(log_file cassandra)"
  # skip_wait_for_gossip_to_settle=0 and ring_delay_ms: nothing to wait for on
  # one node (with initial_token in the yaml this saves ~30 s on first start).
  launch "$(pid_file cassandra)" "$(log_file cassandra)" \
    java "-Xms$CASSANDRA_HEAP" "-Xmx$CASSANDRA_HEAP" -XX:+UseG1GC -XX:+ParallelRefProcEnabled \
    -XX:MaxTenuringThreshold=1 -XX:MaxGCPauseMillis=300 -XX:+ExitOnOutOfMemoryError \
    -Xss256k -Djava.net.preferIPv4Stack=true \
    -javaagent:"$jamm" "${jpms[@]}" \
    -Dcassandra-foreground=yes \
    -Dcassandra.config="file://$d/conf/cassandra.yaml" \
    -Dcassandra.storagedir="$d/data" -Dcassandra.logdir="$d" \
    -Dlogback.configurationFile="$HERE/cassandra/logback.xml" \
    -Dcassandra.skip_wait_for_gossip_to_settle=0 \
    -Dcassandra.ring_delay_ms=1000 \
    -cp "$lib/*" org.apache.cassandra.service.CassandraDaemon
}

# ---------------------------------------------------------------- up/down

# Waits until service $1 is ready; reports death or timeout with its log.
wait_ready() {
  local svc=$1 t0=$SECONDS deadline=$((SECONDS + READY_TIMEOUT[$1]))
  while :; do
    if "ready_$svc"; then
      say "ready after $((SECONDS - t0))s on ${ADDR[$svc]} (pid $(svc_pid "$svc" || echo '?'))"
      return 0
    fi
    if ! svc_pid "$svc" >/dev/null; then
      say "FAILED: the server process exited before becoming ready"
      tail_log "$(log_file "$svc")"
      return 1
    fi
    if ((SECONDS >= deadline)); then
      say "FAILED: not ready within ${READY_TIMEOUT[$svc]}s (still running as pid $(svc_pid "$svc"))"
      tail_log "$(log_file "$svc")"
      return 1
    fi
    sleep 0.5
  done
}

up_one() {
  local svc=$1 pid port owner
  mkdir -p "$(svc_dir "$svc")"
  if pid=$(svc_pid "$svc"); then
    if "ready_$svc"; then
      say "already running (pid $pid) and ready on ${ADDR[$svc]}"
      return 0
    fi
    say "running (pid $pid) but not ready yet; waiting"
  else
    rm -f "$(pid_file "$svc")"
    for port in ${PORTS[$svc]}; do
      if port_open "$port"; then
        owner=$(port_owner "$port")
        say "FAILED: port $port is already in use by ${owner:-another process}, which is not the $svc started from $DATA_DIR."
        say "        Stop it first (e.g. infra.sh down --data-dir <the dir it was started with>)."
        return 1
      fi
    done
    "start_$svc"
  fi
  wait_ready "$svc"
}

down_one() {
  local svc=$1 pid i
  if ! pid=$(svc_pid "$svc"); then
    say "not running"
    rm -f "$(pid_file "$svc")"
    return 0
  fi
  say "stopping pid $pid (SIGTERM)"
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < STOP_TIMEOUT[$svc] * 10; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    say "still running after ${STOP_TIMEOUT[$svc]}s: SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  fi
  rm -f "$(pid_file "$svc")"
  say "stopped after $((i / 10))s"
}

cmd_up() {
  local t0=$SECONDS svc i rc
  local -a pids=() failed=()
  mkdir -p "$DATA_DIR" "$CACHE_DIR"
  exec 9>"$DATA_DIR/.infra.lock"
  flock -w 1800 9 || die "another infra.sh holds $DATA_DIR/.infra.lock"
  say "infra up: ${SERVICES[*]} (data dir $DATA_DIR)"
  for svc in "${SERVICES[@]}"; do
    (up_one "$svc" 2>&1 | prefix "$svc") &
    pids+=("$!")
  done
  for i in "${!SERVICES[@]}"; do
    if wait "${pids[$i]}"; then :; else failed+=("${SERVICES[$i]}"); fi
  done
  exec 9>&-
  if ((${#failed[@]})); then
    say "infra up FAILED for: ${failed[*]} (after $((SECONDS - t0))s); logs: $DATA_DIR/<service>/<service>.log"
    return 1
  fi
  say "infra up: all ready in $((SECONDS - t0))s"
  for svc in "${SERVICES[@]}"; do say "  ${ENV_NAME[$svc]}=${ADDR[$svc]}"; done
}

cmd_down() {
  local svc i
  local -a pids=() failed=()
  if [[ ! -d $DATA_DIR ]]; then say "infra down: $DATA_DIR does not exist; nothing to stop"; return 0; fi
  exec 9>"$DATA_DIR/.infra.lock"
  flock -w 600 9 || die "another infra.sh holds $DATA_DIR/.infra.lock"
  # Stop in parallel; Kafka and Cassandra each take a few seconds.
  for svc in "${SERVICES[@]}"; do
    (down_one "$svc" 2>&1 | prefix "$svc") &
    pids+=("$!")
  done
  for i in "${!SERVICES[@]}"; do
    if wait "${pids[$i]}"; then :; else failed+=("${SERVICES[$i]}"); fi
  done
  exec 9>&-
  ((${#failed[@]} == 0)) || { say "infra down FAILED for: ${failed[*]}"; return 1; }
  say "infra down: stopped"
}

# kill, pause, resume: faults for the chaos suite (make test-chaos). A
# killed server stays down until `up --only SVC` starts it again on its data.
signal_one() {
  local svc=$1 sig=$2 pid i
  pid=$(svc_pid "$svc") || { say "not running"; return 1; }
  kill "-$sig" "$pid"
  if [[ $sig == KILL ]]; then
    for ((i = 0; i < 100; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then say "pid $pid still alive 10s after SIGKILL"; return 1; fi
  fi
  say "SIG$sig sent to pid $pid"
}

cmd_signal() {
  local sig=$1 svc rc=0
  ((${#SERVICES[@]} < ${#ALL_SERVICES[@]})) || die "$CMD needs --only SVC (one or more services)"
  for svc in "${SERVICES[@]}"; do
    signal_one "$svc" "$sig" 2>&1 | prefix "$svc" || rc=1
  done
  return "$rc"
}

cmd_status() {
  local svc pid state rc=0
  for svc in "${SERVICES[@]}"; do
    if pid=$(svc_pid "$svc"); then
      if "ready_$svc"; then state=ready; else state=starting; rc=3; fi
    else
      pid=-; state=stopped; rc=3
    fi
    printf '%-10s %-9s pid %-8s %-16s %s=%s\n' "$svc" "$state" "$pid" "${ADDR[$svc]}" \
      "${ENV_NAME[$svc]}" "${ADDR[$svc]}"
  done
  say "data dir: $DATA_DIR"
  return "$rc"
}

cmd_env() {
  local svc
  for svc in "${SERVICES[@]}"; do
    say "export ${ENV_NAME[$svc]}=${ADDR[$svc]}"
    say "export ${TEST_ENV_NAME[$svc]}=${ADDR[$svc]}"
  done
}

cmd_kafka_cli() {
  [[ $# -ge 1 ]] || die "kafka-cli needs a tool: topics | console-producer | console-consumer | consumer-groups | <class>"
  local tool=$1 class lib; shift
  case $tool in
    topics) class=org.apache.kafka.tools.TopicCommand ;;
    console-producer) class=org.apache.kafka.tools.ConsoleProducer ;;
    console-consumer) class=org.apache.kafka.tools.consumer.ConsoleConsumer ;;
    consumer-groups) class=org.apache.kafka.tools.consumer.group.ConsumerGroupCommand ;;
    *) class=$tool ;;
  esac
  lib=$(ensure_libs kafka)
  kafka_java "$lib" "$class" "$@"
}

# ---------------------------------------------------------------- main

main() {
  local cmd=${1:-}
  [[ -n $cmd ]] || usage
  shift
  local data_dir=${BEEHIVE_INFRA_DATA_DIR:-$ROOT/.data/infra} only=""
  local -a rest=()
  if [[ $cmd == kafka-cli ]]; then rest=("$@"); set --; fi
  while [[ $# -gt 0 ]]; do
    case $1 in
      --data-dir) [[ $# -ge 2 ]] || die "--data-dir needs a value"; data_dir=$2; shift 2 ;;
      --data-dir=*) data_dir=${1#*=}; shift ;;
      --only) [[ $# -ge 2 ]] || die "--only needs a value"; only=$2; shift 2 ;;
      --only=*) only=${1#*=}; shift ;;
      -h | --help) usage 0 ;;
      *) die "unknown argument: $1 (see infra.sh --help)" ;;
    esac
  done
  [[ -n $data_dir ]] || die "--data-dir is empty"
  # Relative paths are taken from the caller's cwd.
  case $data_dir in /*) ;; *) data_dir="$PWD/$data_dir" ;; esac
  DATA_DIR=$data_dir
  CMD=$cmd

  SERVICES=()
  local svc s
  if [[ -z $only ]]; then
    SERVICES=("${ALL_SERVICES[@]}")
  else
    for s in ${only//,/ }; do
      [[ -n ${CMD_MATCH[$s]:-} ]] || die "unknown service in --only: $s (redis, consul, kafka, cassandra)"
    done
    for svc in "${ALL_SERVICES[@]}"; do
      for s in ${only//,/ }; do [[ $s == "$svc" ]] && SERVICES+=("$svc") && break; done
    done
  fi

  case $cmd in
    up) cmd_up ;;
    down) cmd_down ;;
    status) cmd_status ;;
    env) cmd_env ;;
    kafka-cli) cmd_kafka_cli "${rest[@]}" ;;
    kill) cmd_signal KILL ;;
    pause) cmd_signal STOP ;;
    resume) cmd_signal CONT ;;
    -h | --help | help) usage 0 ;;
    *) die "unknown command: $cmd (up, down, status, env, kafka-cli, kill, pause, resume)" ;;
  esac
}

# On one line with main: bash reads no more of this file once main returns,
# so editing the script while it runs is harmless.
main "$@"; exit
