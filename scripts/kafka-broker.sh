#!/usr/bin/env bash
# Railbook's development Kafka broker (Apache Kafka 4.x, KRaft single node, loopback).
#
#   scripts/kafka-broker.sh fetch            resolve the broker jars from Maven Central (pom.xml) into
#                                            .cache/kafka/libs; skipped when already there
#   scripts/kafka-broker.sh start [--port P] start in the background (default port 9092; 0 = any free
#                                            port), data and log in .cache/kafka/run; prints the bootstrap
#   scripts/kafka-broker.sh status           print the bootstrap of the running broker (exit 1 if none)
#   scripts/kafka-broker.sh stop             SIGTERM, then SIGKILL after 30 s
#
# Needs Maven (fetch) and a JDK 17+ (start). Tests start their own broker; this is for manual use:
#   B=$(scripts/kafka-broker.sh start) && railbook serve --kafka "$B"
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
LIBS="${RAILBOOK_KAFKA_LIBS:-$ROOT/.cache/kafka/libs}"
PY="${PYTHON:-$ROOT/.venv/bin/python}"
[ -x "$PY" ] || PY=python3

cmd="${1:-}"
[ $# -gt 0 ] && shift
case "$cmd" in
  fetch)
    # Plain Maven, so `make test` can fetch before Python is set up.
    if [ -f "$LIBS/.fetched" ] && compgen -G "$LIBS/kafka_2.13-*.jar" >/dev/null; then
      echo "$LIBS (cached)"; exit 0
    fi
    if ! command -v mvn >/dev/null && [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null; then
      # A fresh machine with only Python, make and a JDK: bring Debian's Maven (once).
      echo "kafka-broker: installing Debian's maven…" >&2
      (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq maven >/dev/null) || true
    fi
    command -v mvn >/dev/null || { echo "kafka-broker: 'mvn' not found; install Apache Maven (apt-get install maven)" >&2; exit 1; }
    mkdir -p "$LIBS"
    mvn -q -B -f "$ROOT/pom.xml" dependency:copy-dependencies -DincludeScope=runtime \
        -DoutputDirectory="$LIBS" \
      || { echo "kafka-broker: Maven could not resolve the Kafka jars; is https://repo.maven.apache.org reachable?" >&2; exit 1; }
    echo ok > "$LIBS/.fetched"
    echo "$LIBS"
    ;;
  start|stop|status)
    cd "$ROOT" && exec "$PY" -m ingest._kafka_broker "$cmd" "$@"
    ;;
  *)
    sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
    ;;
esac
