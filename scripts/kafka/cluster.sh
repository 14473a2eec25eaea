# shellcheck shell=bash
# The three-broker local Kafka, as MSK runs it: KRaft, three nodes, replication factor 3,
# min.insync.replicas 2, unclean leader election off. Sourced by scripts/stack for
# `--brokers 3`; it runs beside the single test broker (its own ports, data, logs and pid
# files) and nothing here touches that broker.
#
# PLAINTEXT only (no SASL listeners, no authorizer): it is there to be broken by the chaos
# run (scripts/chaos.ts --brokers 3), not to check access. Each node is broker and
# controller at once (MSK hides its controllers on separate hosts), so killing a node also
# takes away one of the three KRaft voters; two keep the quorum.
#
# Environment:
#   KAFKA_CLUSTER_PORT (19092)   node n's PLAINTEXT listener is this + n - 1 (19092-19094)
#   KAFKA_CLUSTER_CONTROLLER_PORT (+100)
#                                node n's controller listener is this + n - 1 (19192-19194)
#   KAFKA_CLUSTER_HEAP (384m)    heap of each node

CLUSTER_NODES=3
KAFKA_CLUSTER_PORT=${KAFKA_CLUSTER_PORT:-19092}
KAFKA_CLUSTER_CONTROLLER_PORT=${KAFKA_CLUSTER_CONTROLLER_PORT:-$((KAFKA_CLUSTER_PORT + 100))}
KAFKA_CLUSTER_HEAP=${KAFKA_CLUSTER_HEAP:-384m}
CLUSTER_DATA="$FANDA_CACHE/kafka-data/cluster-$KAFKA_CLUSTER_PORT"
CLUSTER_NAME="kafka-cluster-$KAFKA_CLUSTER_PORT"

cluster_port() { echo $((KAFKA_CLUSTER_PORT + $1 - 1)); }
cluster_controller_port() { echo $((KAFKA_CLUSTER_CONTROLLER_PORT + $1 - 1)); }
cluster_pid() { echo "$RUN/$CLUSTER_NAME-node$1.pid"; }
cluster_log() { echo "$LOGS/$CLUSTER_NAME-node$1.log"; }
cluster_props() { echo "$RUN/$CLUSTER_NAME-node$1.properties"; }
cluster_log4j() { echo "$RUN/$CLUSTER_NAME-log4j.properties"; }

# The bootstrap list, comma-separated (what KAFKA_BROKERS takes).
cluster_brokers() {
  local n list=""
  for n in $(seq 1 $CLUSTER_NODES); do list="$list${list:+,}127.0.0.1:$(cluster_port "$n")"; done
  echo "$list"
}

cluster_write_config() {
  local n voters=""
  mkdir -p "$RUN" "$LOGS"
  for n in $(seq 1 $CLUSTER_NODES); do voters="$voters${voters:+,}$n@127.0.0.1:$(cluster_controller_port "$n")"; done
  for n in $(seq 1 $CLUSTER_NODES); do
    mkdir -p "$CLUSTER_DATA/node$n"
    cat >"$(cluster_props "$n")" <<PROPS
process.roles=broker,controller
node.id=$n
controller.quorum.voters=$voters
listeners=PLAINTEXT://127.0.0.1:$(cluster_port "$n"),CONTROLLER://127.0.0.1:$(cluster_controller_port "$n")
advertised.listeners=PLAINTEXT://127.0.0.1:$(cluster_port "$n")
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
log.dirs=$CLUSTER_DATA/node$n
# MSK's defaults for a cluster over three AZs: every partition on three brokers, a write
# acknowledged (acks=all) once two have it, no unclean leader election.
default.replication.factor=3
min.insync.replicas=2
unclean.leader.election.enable=false
offsets.topic.replication.factor=3
offsets.topic.num.partitions=6
transaction.state.log.replication.factor=3
transaction.state.log.min.isr=2
transaction.state.log.num.partitions=1
num.partitions=1
auto.create.topics.enable=false
group.initial.rebalance.delay.ms=0
log.retention.hours=24
log.segment.bytes=67108864
PROPS
  done
  cat >"$(cluster_log4j)" <<PROPS
log4j.rootLogger=INFO, stdout
log4j.appender.stdout=org.apache.log4j.ConsoleAppender
log4j.appender.stdout.layout=org.apache.log4j.PatternLayout
log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.kafka=INFO
log4j.logger.org.apache.kafka=INFO
log4j.logger.state.change.logger=WARN
log4j.logger.kafka.request.logger=WARN
PROPS
}

cluster_java() {
  java -Xms128m "-Xmx$KAFKA_CLUSTER_HEAP" -XX:+UseG1GC -Djava.awt.headless=true \
    "-Dlog4j.configuration=file:$(cluster_log4j)" -cp "$LIBS/*" "$@"
}

# Formats every node's storage with one cluster id (kept in $CLUSTER_DATA/cluster.id).
cluster_format() {
  local n id
  if [ -f "$CLUSTER_DATA/cluster.id" ]; then
    id=$(cat "$CLUSTER_DATA/cluster.id")
  else
    id=$(cluster_java kafka.tools.StorageTool random-uuid 2>/dev/null | tail -n 1)
    [ -n "$id" ] || die "kafka.tools.StorageTool random-uuid printed nothing"
    mkdir -p "$CLUSTER_DATA" && echo "$id" >"$CLUSTER_DATA/cluster.id"
  fi
  for n in $(seq 1 $CLUSTER_NODES); do
    [ -f "$CLUSTER_DATA/node$n/meta.properties" ] && continue
    log "formatting KRaft storage of node $n in $CLUSTER_DATA/node$n (cluster id $id)"
    cluster_java kafka.tools.StorageTool format -t "$id" -c "$(cluster_props "$n")" --ignore-formatted \
      >>"$(cluster_log "$n")" 2>&1 || die "formatting node $n failed; see $(cluster_log "$n")"
  done
}

cluster_start_node() {
  local n=$1 port
  port=$(cluster_port "$n")
  if pid_alive "$(cluster_pid "$n")"; then return 0; fi
  port_open 127.0.0.1 "$port" && die "127.0.0.1:$port is taken by a process this script did not start; set KAFKA_CLUSTER_PORT"
  log "starting node $n of the 3-broker cluster on 127.0.0.1:$port; log: $(cluster_log "$n")"
  nohup bash -c 'exec "$@"' _ java -Xms128m "-Xmx$KAFKA_CLUSTER_HEAP" -XX:+UseG1GC -Djava.awt.headless=true \
    "-Dlog4j.configuration=file:$(cluster_log4j)" -cp "$LIBS/*" kafka.Kafka "$(cluster_props "$n")" \
    >>"$(cluster_log "$n")" 2>&1 </dev/null &
  echo $! >"$(cluster_pid "$n")"
}

# Starts the nodes that are not running (all, or the one given), then waits until all three
# brokers answer, the topics exist with replication factor 3 and min.insync.replicas 2, and
# every partition's replicas are all in sync again.
cluster_up() {
  local only=${1:-} n
  need_java
  fetch_kafka
  cluster_write_config
  cluster_format
  for n in $(seq 1 $CLUSTER_NODES); do
    if [ -z "$only" ] || [ "$only" = "$n" ]; then cluster_start_node "$n"; fi
  done
  if ! KAFKA_BROKERS=$(cluster_brokers) bun "$FANDA_ROOT/scripts/kafka/cluster.ts" \
    --wait "$KAFKA_READY_TIMEOUT" --brokers "$CLUSTER_NODES"; then
    for n in $(seq 1 $CLUSTER_NODES); do
      pid_alive "$(cluster_pid "$n")" && continue
      log "node $n exited; last lines of $(cluster_log "$n"):"
      tail -n 20 "$(cluster_log "$n")" >&2
    done
    die "the 3-broker cluster did not become ready within ${KAFKA_READY_TIMEOUT}s"
  fi
  log "3-broker cluster is up: KAFKA_BROKERS=$(cluster_brokers)"
}

# Stops the nodes together, as a cluster is shut down: one at a time, the last one cannot
# finish its controlled shutdown without a quorum and waits out its timeout. Returns once every
# node has exited and its port is closed, so `up` can follow at once.
cluster_down() {
  local n pid pids=""
  for n in $(seq 1 $CLUSTER_NODES); do
    pid_alive "$(cluster_pid "$n")" || { rm -f "$(cluster_pid "$n")"; continue; }
    pid=$(cat "$(cluster_pid "$n")")
    log "stopping cluster node $n (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    pids="$pids $pid"
  done
  for _ in $(seq 1 150); do
    local alive=""
    for pid in $pids; do kill -0 "$pid" 2>/dev/null && alive="$alive $pid"; done
    [ -z "$alive" ] && break
    sleep 0.2
  done
  for pid in $pids; do
    kill -0 "$pid" 2>/dev/null || continue
    log "cluster node pid $pid did not stop within 30s; killing it"
    kill -KILL "$pid" 2>/dev/null || true
  done
  for pid in $pids; do
    while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
  done
  for n in $(seq 1 $CLUSTER_NODES); do
    rm -f "$(cluster_pid "$n")"
    for _ in $(seq 1 50); do port_open 127.0.0.1 "$(cluster_port "$n")" || break; sleep 0.2; done
  done
}

cluster_status() {
  local n up
  for n in $(seq 1 $CLUSTER_NODES); do
    up=false
    port_open 127.0.0.1 "$(cluster_port "$n")" && up=true
    status_line "node$n" "$(cluster_pid "$n")" "127.0.0.1:$(cluster_port "$n") (log $(cluster_log "$n"))" $up
  done
}
