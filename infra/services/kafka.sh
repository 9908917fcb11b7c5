#!/usr/bin/env bash
# Resolves the real Apache Kafka 4.x broker from Maven Central into .cache/,
# formats KRaft storage and runs one combined broker+controller on 127.0.0.1.
# Skipped entirely when DEALLEDGER_KAFKA_BOOTSTRAP points at an existing broker.
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

KAFKA_PORT="${DEALLEDGER_KAFKA_PORT:-9092}"
CONTROLLER_PORT="${DEALLEDGER_KAFKA_CONTROLLER_PORT:-9093}"
KAFKA_HEAP="${DEALLEDGER_KAFKA_HEAP:-512m}"
LIBS="$CACHE/kafka/libs"
DATA="$RUN_DIR/kafka-data"
CONF="$RUN_DIR/kafka.properties"
PIDFILE="$RUN_DIR/kafka.pid"
KAFKA_LOG="$LOG_DIR/kafka.log"
POM="$ROOT/infra/kafka/pom.xml"

resolve() {
  # The pom's hash marks which broker version the cached jars belong to.
  local stamp; stamp="$(sha256sum "$POM" | cut -c1-16)"
  if [ -f "$LIBS/.resolved-$stamp" ]; then return; fi
  command -v mvn >/dev/null || die "Maven (mvn) is needed to resolve Apache Kafka from Maven Central"
  log "resolving Apache Kafka and its dependencies from Maven Central into $LIBS"
  rm -rf "$LIBS"
  mvn -q -B -f "$POM" -Dmaven.repo.local="$CACHE/m2" dependency:copy-dependencies \
    -DoutputDirectory="$LIBS" -DincludeScope=runtime >>"$LOG_DIR/maven.log" 2>&1 \
    || die "Maven could not resolve Kafka (see $LOG_DIR/maven.log)"
  touch "$LIBS/.resolved-$stamp"
}

running_pid() {
  [ -f "$PIDFILE" ] || return 1
  local pid; pid="$(cat "$PIDFILE")"
  kill -0 "$pid" 2>/dev/null || return 1
  echo "$pid"
}

write_config() {
  cat >"$CONF" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$CONTROLLER_PORT
listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT,CONTROLLER://127.0.0.1:$CONTROLLER_PORT
advertised.listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$DATA
num.partitions=1
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=false
log.retention.hours=168
PROPS
  cat >"$RUN_DIR/kafka-log4j2.yaml" <<YAML
Configuration:
  Appenders:
    File:
      name: file
      fileName: "$KAFKA_LOG"
      PatternLayout:
        pattern: "[%d] %p %m (%c)%n"
  Loggers:
    Root:
      level: INFO
      AppenderRef:
        - ref: file
YAML
}

JAVA_OPTS=(-Xms128m -Xmx"$KAFKA_HEAP" -XX:+UseG1GC -Djava.awt.headless=true
  -Dlog4j2.configurationFile="$RUN_DIR/kafka-log4j2.yaml" -cp "$LIBS/*")
java_cmd() { java "${JAVA_OPTS[@]}" "$@"; }

# Succeeds when the broker is ready, or when it has died (so the wait ends at
# once and the caller reports the death instead of waiting out the timeout).
ready_or_dead() {
  running_pid >/dev/null || return 0
  ready
}

ready() {
  # A real metadata round-trip, not just an open port.
  # Before `make install` there is no client to ask; an open port must do then.
  if [ ! -x "$ROOT/.venv/bin/python" ]; then port_open 127.0.0.1 "$KAFKA_PORT"; return; fi
  "$ROOT/.venv/bin/python" - "$KAFKA_PORT" <<'PY' 2>/dev/null
import sys
from kafka import KafkaAdminClient
admin = KafkaAdminClient(bootstrap_servers=f"127.0.0.1:{sys.argv[1]}", request_timeout_ms=3000)
admin.list_topics()
admin.close()
PY
}

up() {
  if [ -n "${DEALLEDGER_KAFKA_BOOTSTRAP:-}" ]; then
    log "DEALLEDGER_KAFKA_BOOTSTRAP is set; using that Kafka, starting nothing"
    return
  fi
  if pid="$(running_pid)"; then
    log "Kafka already running (pid $pid) on 127.0.0.1:$KAFKA_PORT"
    wait_for "Kafka" 90 ready || die "Kafka (pid $pid) is not answering metadata requests (see $KAFKA_LOG)"
    return
  fi
  if port_open 127.0.0.1 "$KAFKA_PORT"; then
    die "port $KAFKA_PORT is taken by a process this script did not start; stop it, or set DEALLEDGER_KAFKA_BOOTSTRAP to use it"
  fi
  command -v java >/dev/null || die "Java 17+ is needed to run the Kafka broker"
  resolve
  write_config
  if [ ! -f "$DATA/meta.properties" ]; then
    log "formatting KRaft storage in $DATA"
    local cluster_id; cluster_id="$(java_cmd kafka.tools.StorageTool random-uuid 2>>"$KAFKA_LOG")"
    java_cmd kafka.tools.StorageTool format -t "$cluster_id" -c "$CONF" >>"$KAFKA_LOG" 2>&1 \
      || die "formatting Kafka storage failed (see $KAFKA_LOG)"
  fi
  log "starting Kafka on 127.0.0.1:$KAFKA_PORT (heap $KAFKA_HEAP)"
  nohup setsid java "${JAVA_OPTS[@]}" kafka.Kafka "$CONF" >>"$LOG_DIR/kafka.stdout" 2>&1 </dev/null &
  echo $! >"$PIDFILE"
  if ! wait_for "Kafka" 120 ready_or_dead || ! running_pid >/dev/null; then
    tail -n 30 "$KAFKA_LOG" "$LOG_DIR/kafka.stdout" >&2 || true
    die "Kafka did not answer a metadata request within 120s (logs: $KAFKA_LOG)"
  fi
  log "Kafka: 127.0.0.1:$KAFKA_PORT"
}

down() {
  if [ -n "${DEALLEDGER_KAFKA_BOOTSTRAP:-}" ]; then
    log "DEALLEDGER_KAFKA_BOOTSTRAP is set; not stopping an external Kafka"
    return
  fi
  local pid
  if ! pid="$(running_pid)"; then rm -f "$PIDFILE"; return; fi
  log "stopping Kafka (pid $pid)"
  kill -TERM "$pid"
  local i
  for i in $(seq 1 60); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.5
  done
  if kill -0 "$pid" 2>/dev/null; then
    log "Kafka did not stop within 30s; killing it"
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$PIDFILE"
}

status() {
  if pid="$(running_pid)"; then log "Kafka: up (pid $pid) on 127.0.0.1:$KAFKA_PORT"; else log "Kafka: down"; fi
}

"${1:-up}"
