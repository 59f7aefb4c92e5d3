#!/usr/bin/env bash
# A real Apache Kafka broker (KRaft, broker+controller, loopback only) for the integration tests.
# See test/kafka-broker/README.md and specs/dependencies.md §5.
#
#   scripts/kafka.sh start|stop|status|restart [--mode plain|secure|multi] [--kill]
#
# stdout carries only results (the bootstrap address is always the last line of `start`);
# progress and errors go to stderr. Exit codes: 0 ok, 1 failed / not running, 2 usage or missing prerequisite
# (java, mvn, node, openssl), so a test harness can tell "cannot run here" from "broken".
set -euo pipefail

usage() {
  cat <<'EOF'
usage: scripts/kafka.sh start|stop|status|restart [--mode plain|secure|multi] [--kill]

  start   fetch the broker jars if missing, start the broker(s), wait until ready, print the bootstrap
          address(es); the last stdout line is always 127.0.0.1:PORT. If already running, print them again.
  stop    SIGTERM the recorded broker pid(s) (SIGKILL after 20 s) and delete the data directory.
  status  print "running" and the address(es) (exit 0) or "not running" (exit 1).
  restart stop the broker (SIGTERM; with --kill, SIGKILL: a crash) and start it again on the same data and
          ports, wait until ready, print the address(es) like start (plain and secure modes; for fault tests).

modes:
  plain   one broker, PLAINTEXT listener                         (default)
  secure  one broker, PLAINTEXT + SASL_SSL + SASL_PLAINTEXT (SCRAM-SHA-256/512, user alice/alice-secret;
          PLAIN, user bob/bob-secret) + SSL with required client certificates; writes endpoints.json
  multi   three independent single-node clusters; writes bootstraps (one address per line)

environment:
  KAFKA_DATA_DIR        data directory (default <checkout>/.kafka/<mode>)
  KAFKA_START_TIMEOUT   seconds to wait for readiness (default 90)
  KAFKA_ADVERTISED_PORT plain mode, start only: advertise PLAINTEXT://127.0.0.1:PORT instead of the port the
                        broker listens on (a fault test's proxy on PORT then sees every client connection, as
                        clients connect to the advertised address after bootstrapping). The broker still listens
                        on a free port of its own: start prints it first as LISTENING=127.0.0.1:REAL, then
                        127.0.0.1:PORT as the last line (the bootstrap address); status and restart print the same.
  KAFKA_HEAP_OPTS       heap flags (default "-Xms256m -Xmx1g"; multi: "-Xms128m -Xmx512m" per broker)
  KAFKA_JVM_OPTS        extra JVM flags appended to the defaults
  JAVA_HOME             Java >= 17 to use (default: java on PATH)
EOF
}

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$SCRIPT_DIR/.." && pwd)
POM="$ROOT/test/kafka-broker/pom.xml"
TARGET="$ROOT/test/kafka-broker/target"
LIBS_DIR="$TARGET/kafka-libs"
MARKER=.kafka-harness
SCRAM_USER=alice
SCRAM_PASSWORD=alice-secret
PLAIN_USER=bob
PLAIN_PASSWORD=bob-secret
STORE_PASSWORD=diaspora-test-store
START_TIMEOUT=${KAFKA_START_TIMEOUT:-90}
STOP_TIMEOUT=20
MULTI_COUNT=3

log() { printf 'kafka.sh: %s\n' "$*" >&2; }
die() {
  local code=$1
  shift
  printf 'kafka.sh: error: %s\n' "$*" >&2
  exit "$code"
}

# ---------------------------------------------------------------------------------------------------------------
# arguments

cmd=
mode=plain
restart_kill=0
while [ $# -gt 0 ]; do
  case $1 in
    --mode) [ $# -ge 2 ] || die 2 "--mode needs a value"; mode=$2; shift 2 ;;
    --mode=*) mode=${1#--mode=}; shift ;;
    -h | --help | help) usage; exit 0 ;;
    start | stop | status | restart) [ -z "$cmd" ] || die 2 "more than one command"; cmd=$1; shift ;;
    --kill) restart_kill=1; shift ;;
    *) usage >&2; die 2 "unknown argument: $1" ;;
  esac
done
[ -n "$cmd" ] || { usage >&2; die 2 "missing command (start, stop, status or restart)"; }
case $mode in
  plain | secure | multi) ;;
  *) die 2 "unknown mode: $mode (plain, secure or multi)" ;;
esac
# KAFKA_ADVERTISED_PORT: read by `start --mode plain` only (restart and status reuse what start configured)
adv_port=
if [ "$cmd" = start ] && [ -n "${KAFKA_ADVERTISED_PORT:-}" ]; then
  [ "$mode" = plain ] || die 2 "KAFKA_ADVERTISED_PORT is honoured in plain mode only (mode: $mode)"
  [[ $KAFKA_ADVERTISED_PORT =~ ^[0-9]{1,5}$ ]] && [ "$((10#$KAFKA_ADVERTISED_PORT))" -ge 1 ] && [ "$((10#$KAFKA_ADVERTISED_PORT))" -le 65535 ] ||
    die 2 "KAFKA_ADVERTISED_PORT must be a port number (1-65535), not '$KAFKA_ADVERTISED_PORT'"
  adv_port=$((10#$KAFKA_ADVERTISED_PORT))
fi

DATA_DIR=$(realpath -m "${KAFKA_DATA_DIR:-$ROOT/.kafka/$mode}")
case $DATA_DIR in
  / | "$ROOT" | "$HOME" | "$ROOT/.kafka") die 2 "KAFKA_DATA_DIR must be a dedicated directory, not $DATA_DIR" ;;
esac
JAVA=java
[ -n "${JAVA_HOME:-}" ] && [ -x "$JAVA_HOME/bin/java" ] && JAVA="$JAVA_HOME/bin/java"

# ---------------------------------------------------------------------------------------------------------------
# node helper: free ports, cluster ids, the readiness probe (ApiVersions + Metadata over the Kafka protocol),
# JSON output. Node is a prerequisite of the project anyway.

NODE_HELPER=$(
  cat <<'JS'
'use strict';
const net = require('node:net');
const fs = require('node:fs');
const crypto = require('node:crypto');
const [cmd, ...args] = process.argv.slice(1);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function freePorts(n) {
  const servers = [];
  try {
    for (let i = 0; i < n; i++) {
      const s = net.createServer();
      await new Promise((res, rej) => { s.once('error', rej); s.listen({ host: '127.0.0.1', port: 0, exclusive: true }, res); });
      servers.push(s);
    }
    return servers.map((s) => s.address().port);
  } finally {
    await Promise.all(servers.map((s) => new Promise((r) => s.close(() => r()))));
  }
}

function clusterId() { // what kafka.tools.StorageTool random-uuid prints: 16 random bytes, base64url, no padding
  for (;;) {
    const id = crypto.randomBytes(16).toString('base64url');
    if (!id.startsWith('-') && id !== 'AAAAAAAAAAAAAAAAAAAAAA' && id !== 'AAAAAAAAAAAAAAAAAAAAAQ') return id;
  }
}

const i16 = (v) => { const b = Buffer.alloc(2); b.writeInt16BE(v); return b; };
const i32 = (v) => { const b = Buffer.alloc(4); b.writeInt32BE(v); return b; };
class Reader {
  constructor(b) { this.b = b; this.o = 0; }
  i16() { const v = this.b.readInt16BE(this.o); this.o += 2; return v; }
  i32() { const v = this.b.readInt32BE(this.o); this.o += 4; return v; }
  uv() { let v = 0, s = 0, x; do { x = this.b[this.o++]; v += (x & 0x7f) * 2 ** s; s += 7; } while (x & 0x80); return v; }
  bytes(n) { const v = this.b.toString('utf8', this.o, this.o + n); this.o += n; return v; }
  str() { const n = this.i16(); return n < 0 ? null : this.bytes(n); }
  cstr() { const n = this.uv() - 1; return n < 0 ? null : this.bytes(n); }
  tags() { for (let n = this.uv(); n > 0; n--) { this.uv(); this.o += this.uv(); } }
}

async function probeOnce(host, port) {
  const sock = net.connect({ host, port });
  sock.setNoDelay(true);
  let buf = Buffer.alloc(0), corr = 0, waiter = null, failure = null;
  const fail = (e) => { failure = failure || e; if (waiter) { waiter.reject(failure); waiter = null; } };
  sock.on('error', fail);
  sock.on('close', () => fail(new Error('connection closed by broker')));
  sock.on('data', (d) => {
    buf = Buffer.concat([buf, d]);
    if (waiter && buf.length >= 4 && buf.length >= 4 + buf.readInt32BE(0)) {
      const frame = buf.subarray(4, 4 + buf.readInt32BE(0));
      buf = buf.subarray(4 + frame.length);
      const w = waiter; waiter = null; w.resolve(new Reader(frame));
    }
  });
  const request = (apiKey, version, flexible, body) => new Promise((resolve, reject) => {
    if (failure) return reject(failure);
    waiter = { resolve, reject };
    const client = Buffer.from('kafka.sh-probe');
    const parts = [i16(apiKey), i16(version), i32(++corr), i16(client.length), client];
    if (flexible) parts.push(Buffer.from([0]));
    parts.push(body);
    const payload = Buffer.concat(parts);
    sock.write(Buffer.concat([i32(payload.length), payload]));
  });
  const timer = setTimeout(() => sock.destroy(new Error('no answer within 3 s')), 3000);
  try {
    await new Promise((res, rej) => { sock.once('connect', res); sock.once('error', rej); });
    let r = await request(18, 0, false, Buffer.alloc(0)); // ApiVersions v0
    r.i32();
    const err = r.i16();
    if (err) throw new Error(`ApiVersions error code ${err}`);
    let range = null;
    for (let n = r.i32(); n > 0; n--) { const k = r.i16(), lo = r.i16(), hi = r.i16(); if (k === 3) range = [lo, hi]; }
    if (!range) throw new Error('broker does not offer Metadata');
    const v = Math.min(12, range[1]);
    if (v < Math.max(4, range[0])) throw new Error(`no common Metadata version (broker ${range[0]}-${range[1]})`);
    const flexible = v >= 9;
    const body = flexible
      ? Buffer.from(v <= 10 ? [0, 0, 0, 0, 0] : [0, 0, 0, 0]) // null topics (= all), flags, no tagged fields
      : Buffer.concat([i32(-1), Buffer.from(v >= 8 ? [0, 0, 0] : [0])]);
    r = await request(3, v, flexible, body); // Metadata
    r.i32();
    if (flexible) r.tags();
    r.i32(); // throttle_time_ms
    const brokers = [];
    for (let n = flexible ? r.uv() - 1 : r.i32(); n > 0; n--) {
      const id = r.i32(), h = flexible ? r.cstr() : r.str(), p = r.i32();
      if (flexible) { r.cstr(); r.tags(); } else r.str();
      brokers.push(`${id}@${h}:${p}`);
    }
    const cluster = flexible ? r.cstr() : r.str();
    const controller = r.i32();
    return { version: v, brokers, cluster, controller };
  } finally {
    clearTimeout(timer);
    sock.removeAllListeners('close');
    sock.on('error', () => {});
    sock.destroy();
  }
}

function tcpCheck(host, port) {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host, port });
    const t = setTimeout(() => s.destroy(new Error('connect timeout')), 2000);
    s.once('connect', () => { clearTimeout(t); s.destroy(); resolve(); });
    s.once('error', (e) => { clearTimeout(t); reject(e); });
  });
}

function alive(pid) {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0];
    return state !== 'Z' && state !== 'X';
  } catch { return false; }
}

const hostPort = (a) => { const i = a.lastIndexOf(':'); return [a.slice(0, i), Number(a.slice(i + 1))]; };

// probe TIMEOUT_S NAME|PID|BOOTSTRAP[|OTHER_ADDR...] ... : one line per target on stdout: "ok NAME SECONDS" or
// "fail NAME REASON"; exit 0 when all are ready.
async function probe(timeoutS, targets) {
  const t0 = Date.now();
  const deadline = t0 + timeoutS * 1000;
  const results = await Promise.all(targets.map(async (spec) => {
    const [name, pid, bootstrap, ...others] = spec.split('|');
    let last = 'not started';
    while (Date.now() < deadline) {
      if (!alive(pid)) return `fail ${name} broker process ${pid} exited`;
      try {
        const m = await probeOnce(...hostPort(bootstrap));
        if (m.brokers.length > 0 && m.controller >= 0) {
          for (const o of others) await tcpCheck(...hostPort(o));
          return `ok ${name} ${((Date.now() - t0) / 1000).toFixed(1)} metadata_v${m.version} cluster=${m.cluster} brokers=${m.brokers.join(',')}`;
        }
        last = 'metadata lists no live broker yet';
      } catch (e) { last = e.message || String(e); }
      await sleep(250);
    }
    return `fail ${name} not ready after ${timeoutS}s (last: ${last})`;
  }));
  for (const r of results) console.log(r);
  process.exit(results.every((r) => r.startsWith('ok ')) ? 0 : 1);
}

// json FILE KEY=VALUE... (KEY:json=RAW for non-strings)
function json(file, pairs) {
  const o = {};
  for (const p of pairs) {
    const i = p.indexOf('=');
    const k = p.slice(0, i), v = p.slice(i + 1);
    if (k.endsWith(':json')) o[k.slice(0, -5)] = JSON.parse(v); else o[k] = v;
  }
  fs.writeFileSync(file, JSON.stringify(o, null, 2) + '\n');
}

(async () => {
  switch (cmd) {
    case 'ports': console.log((await freePorts(Number(args[0]))).join(' ')); break;
    case 'cluster-id': console.log(clusterId()); break;
    case 'probe': await probe(Number(args[0]), args.slice(1)); break;
    case 'json': json(args[0], args.slice(1)); break;
    default: console.error(`unknown helper command ${cmd}`); process.exit(2);
  }
})().catch((e) => { console.error(e && e.stack || e); process.exit(1); });
JS
)
helper() { node -e "$NODE_HELPER" "$@"; }

# ---------------------------------------------------------------------------------------------------------------
# prerequisites and jars

need() { command -v "$1" >/dev/null 2>&1 || die 2 "$1 not found ($2)"; }

ensure_libs() {
  local stamp="$TARGET/kafka-libs.pom.sha256" want
  want=$(sha256sum "$POM" | cut -d' ' -f1)
  libs_ok() { [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && compgen -G "$LIBS_DIR/kafka_2.13-*.jar" >/dev/null; }
  libs_ok && return 0
  need mvn "install Maven 3.8+: apt-get install -y maven"
  mkdir -p "$TARGET"
  exec 8>"$TARGET/.fetch.lock"
  flock -w 900 8 || die 1 "timed out waiting for another jar fetch"
  if ! libs_ok; then
    log "fetching the Kafka broker jars with Maven into $LIBS_DIR (once)"
    rm -rf "$LIBS_DIR" "$stamp"
    mvn -B -q -f "$POM" dependency:copy-dependencies >&2 || die 1 "mvn dependency:copy-dependencies failed"
    compgen -G "$LIBS_DIR/kafka_2.13-*.jar" >/dev/null || die 1 "mvn ran but $LIBS_DIR has no kafka_2.13 jar"
    echo "$want" >"$stamp"
  fi
  exec 8>&-
}

check_java() {
  need "$JAVA" "install Java 17+: apt-get install -y openjdk-17-jre-headless"
  local v
  v=$("$JAVA" -XshowSettings:properties -version 2>&1 | sed -n 's/^ *java.specification.version = //p')
  case $v in 1.* | 9 | 1[0-6] | '') die 2 "Kafka 4.x needs Java >= 17 (found ${v:-unknown}: $JAVA)" ;; esac
}

# ---------------------------------------------------------------------------------------------------------------
# processes

read_pid() { cat "$1/broker.pid" 2>/dev/null || true; }

# our broker: alive (not a zombie) and running kafka.Kafka on this directory's server.properties
pid_alive() {
  local pid=$1 dir=$2 state
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  state=$(sed 's/.*) //' "/proc/$pid/stat" 2>/dev/null | cut -d' ' -f1) || return 1
  case $state in '' | Z | X) return 1 ;; esac
  tr '\0' '\n' <"/proc/$pid/cmdline" 2>/dev/null | grep -qxF "$dir/server.properties" || return 1
  tr '\0' '\n' <"/proc/$pid/cmdline" 2>/dev/null | grep -qxF kafka.Kafka
}

cluster_running() { pid_alive "$(read_pid "$1")" "$1"; }

# SIGTERM the recorded pids (only ours), wait up to STOP_TIMEOUT seconds, then SIGKILL
kill_clusters() {
  local dir pid left deadline
  local -a dirs=()
  for dir in "$@"; do
    pid=$(read_pid "$dir")
    if pid_alive "$pid" "$dir"; then
      log "stopping broker pid $pid ($dir)"
      kill -TERM "$pid" 2>/dev/null || true
      dirs+=("$dir")
    fi
  done
  [ ${#dirs[@]} -gt 0 ] || return 0
  deadline=$(($(date +%s%N) + STOP_TIMEOUT * 1000000000))
  while [ "$(date +%s%N)" -lt "$deadline" ]; do
    left=0
    for dir in "${dirs[@]}"; do cluster_running "$dir" && left=1; done
    [ $left = 0 ] && return 0
    sleep 0.1
  done
  for dir in "${dirs[@]}"; do
    pid=$(read_pid "$dir")
    if pid_alive "$pid" "$dir"; then
      log "broker pid $pid did not stop within ${STOP_TIMEOUT}s: SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
    fi
  done
  deadline=$(($(date +%s%N) + 5000000000))
  while [ "$(date +%s%N)" -lt "$deadline" ]; do
    left=0
    for dir in "${dirs[@]}"; do cluster_running "$dir" && left=1; done
    [ $left = 0 ] && return 0
    sleep 0.1
  done
  die 1 "broker process(es) still alive after SIGKILL"
}

# delete a data directory, but only one this script created (marker) or an empty one
safe_wipe() {
  local d=$1
  [ -e "$d" ] || return 0
  if [ -f "$d/$MARKER" ] || [ -z "$(ls -A "$d" 2>/dev/null)" ]; then
    rm -rf "$d"
  else
    die 2 "$d exists and was not created by kafka.sh; refusing to delete it"
  fi
}

cluster_dirs() { # the cluster directories of the harness in DATA_DIR, from its marker
  case $(cat "$DATA_DIR/$MARKER" 2>/dev/null || true) in
    multi) for ((i = 1; i <= MULTI_COUNT; i++)); do echo "$DATA_DIR/c$i"; done ;;
    plain | secure) echo "$DATA_DIR" ;;
  esac
}

lock_data_dir() {
  mkdir -p "$(dirname "$DATA_DIR")"
  exec 9>"$DATA_DIR.lock"
  flock -w 600 9 || die 1 "timed out waiting for another kafka.sh on $DATA_DIR"
}

# ---------------------------------------------------------------------------------------------------------------
# configuration

write_common_properties() { # file dir node_port controller_port
  cat >"$1" <<EOF
# generated by scripts/kafka.sh
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$4
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
log.dirs=$2/data
num.partitions=1
default.replication.factor=1
min.insync.replicas=1
auto.create.topics.enable=false
offsets.topic.replication.factor=1
offsets.topic.num.partitions=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
num.network.threads=2
num.io.threads=2
background.threads=2
num.recovery.threads.per.data.dir=1
log.segment.bytes=16777216
EOF
}

make_tls() { # dir: CA, broker keystore, client certificate (PEM + PKCS12)
  local t=$1
  need openssl "apt-get install -y openssl"
  mkdir -p "$t"
  cat >"$t/openssl.cnf" <<'EOF'
[req]
distinguished_name = dn
prompt = no
[dn]
CN = unused
[ca]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
[server]
basicConstraints = CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1,DNS:localhost
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[client]
basicConstraints = CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
EOF
  (
    cd "$t"
    set -e
    openssl req -config openssl.cnf -x509 -newkey rsa:2048 -nodes -sha256 -days 30 -extensions ca \
      -subj "/CN=diaspora-stream test CA" -keyout ca.key -out ca.pem
    openssl req -config openssl.cnf -new -newkey rsa:2048 -nodes -subj "/CN=localhost" -keyout server.key -out server.csr
    openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -CAserial ca.srl -days 30 -sha256 \
      -extfile openssl.cnf -extensions server -out server.pem
    openssl req -config openssl.cnf -new -newkey rsa:2048 -nodes -subj "/CN=diaspora-client" -keyout client.key -out client.csr
    openssl x509 -req -in client.csr -CA ca.pem -CAkey ca.key -CAserial ca.srl -days 30 -sha256 \
      -extfile openssl.cnf -extensions client -out client.pem
    openssl pkcs12 -export -in server.pem -inkey server.key -certfile ca.pem -name broker \
      -passout "pass:$STORE_PASSWORD" -out broker.p12
    openssl pkcs12 -export -in client.pem -inkey client.key -certfile ca.pem -name client \
      -passout "pass:$STORE_PASSWORD" -out client.p12
    rm -f server.csr client.csr
    chmod 600 ./*.key ./*.p12
  ) >"$t/openssl.log" 2>&1 || { cat "$t/openssl.log" >&2; die 1 "certificate generation failed"; }
}

# Launch the broker JVM of dir (already formatted, server.properties written) in the background; records broker.pid.
exec_broker() { # dir heap
  local dir=$1 heap=$2
  local -a jvm=() heap_a=() extra=()
  read -r -a heap_a <<<"$heap"
  read -r -a extra <<<"${KAFKA_JVM_OPTS:-}"
  jvm=("${heap_a[@]}" -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35
    -XX:+ExplicitGCInvokesConcurrent -XX:MaxDirectMemorySize=256m -XX:ActiveProcessorCount=2
    -XX:TieredStopAtLevel=1 -Djava.awt.headless=true -Djava.net.preferIPv4Stack=true
    -Dorg.slf4j.simpleLogger.defaultLogLevel=info -Dorg.slf4j.simpleLogger.showDateTime=true
    "-Dorg.slf4j.simpleLogger.dateTimeFormat=yyyy-MM-dd'T'HH:mm:ss.SSS" -Dorg.slf4j.simpleLogger.showThreadName=false
    "${extra[@]}")
  (
    # do not leak our descriptors (the flock on fd 9, a caller's pipes) into the long-running broker
    for fd in /proc/$BASHPID/fd/*; do
      fd=${fd##*/}
      if [[ $fd =~ ^[0-9]+$ ]] && [ "$fd" -gt 2 ]; then eval "exec $fd>&-" 2>/dev/null || true; fi
    done
    trap '' HUP
    exec "$JAVA" "${jvm[@]}" -cp "$LIBS_DIR/*" kafka.Kafka "$dir/server.properties"
  ) </dev/null >>"$dir/broker.log" 2>&1 &
  echo $! >"$dir/broker.pid"
}

# Prepare, format and launch one cluster in dir (kind plain|secure); records broker.pid and the address files.
launch_cluster() { # dir kind heap [plain-port controller-port]
  local dir=$1 kind=$2 heap=$3 cid pid p_plain p_ctrl p_adv= p_sasl_ssl p_sasl_plain p_ssl
  local -a ports=("${@:4}") fmt=()
  safe_wipe "$dir"
  mkdir -p "$dir"
  echo "$kind" >"$dir/$MARKER"
  local props="$dir/server.properties"
  if [ "$kind" = secure ]; then
    read -r -a ports <<<"$(helper ports 5)"
    [ ${#ports[@]} = 5 ] || die 1 "could not pick free ports"
    p_plain=${ports[0]} p_ctrl=${ports[1]} p_sasl_ssl=${ports[2]} p_sasl_plain=${ports[3]} p_ssl=${ports[4]}
    make_tls "$dir/tls"
    write_common_properties "$props" "$dir" "$p_plain" "$p_ctrl"
    cat >>"$props" <<EOF
listeners=PLAINTEXT://127.0.0.1:$p_plain,CONTROLLER://127.0.0.1:$p_ctrl,SASL_SSL://127.0.0.1:$p_sasl_ssl,SASL_PLAINTEXT://127.0.0.1:$p_sasl_plain,SSL://127.0.0.1:$p_ssl
advertised.listeners=PLAINTEXT://127.0.0.1:$p_plain,SASL_SSL://127.0.0.1:$p_sasl_ssl,SASL_PLAINTEXT://127.0.0.1:$p_sasl_plain,SSL://127.0.0.1:$p_ssl
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT,SASL_SSL:SASL_SSL,SASL_PLAINTEXT:SASL_PLAINTEXT,SSL:SSL
sasl.enabled.mechanisms=SCRAM-SHA-256,SCRAM-SHA-512,PLAIN
listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.sasl_ssl.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required user_$PLAIN_USER="$PLAIN_PASSWORD";
listener.name.sasl_plaintext.scram-sha-256.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.sasl_plaintext.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.sasl_plaintext.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required user_$PLAIN_USER="$PLAIN_PASSWORD";
ssl.keystore.type=PKCS12
ssl.keystore.location=$dir/tls/broker.p12
ssl.keystore.password=$STORE_PASSWORD
ssl.key.password=$STORE_PASSWORD
ssl.truststore.type=PEM
ssl.truststore.location=$dir/tls/ca.pem
ssl.client.auth=none
listener.name.ssl.ssl.client.auth=required
EOF
    fmt=(-S "SCRAM-SHA-256=[name=$SCRAM_USER,password=$SCRAM_PASSWORD]"
      -S "SCRAM-SHA-512=[name=$SCRAM_USER,password=$SCRAM_PASSWORD]")
  else
    if [ ${#ports[@]} != 2 ]; then
      # with an advertised port (free when nobody listens on it yet): never listen on that one
      for _ in 1 2 3 4 5; do
        read -r -a ports <<<"$(helper ports 2)"
        [ -n "$adv_port" ] && { [ "${ports[0]:-}" = "$adv_port" ] || [ "${ports[1]:-}" = "$adv_port" ]; } || break
        ports=()
      done
    fi
    [ ${#ports[@]} = 2 ] || die 1 "could not pick free ports"
    p_plain=${ports[0]} p_ctrl=${ports[1]}
    # multi mode launches plain clusters too, but adv_port is only set for --mode plain
    p_adv=${adv_port:-$p_plain}
    write_common_properties "$props" "$dir" "$p_plain" "$p_ctrl"
    cat >>"$props" <<EOF
listeners=PLAINTEXT://127.0.0.1:$p_plain,CONTROLLER://127.0.0.1:$p_ctrl
advertised.listeners=PLAINTEXT://127.0.0.1:$p_adv
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
EOF
  fi

  cid=$(helper cluster-id)
  echo "$cid" >"$dir/cluster.id"
  "$JAVA" -Xmx256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Dorg.slf4j.simpleLogger.defaultLogLevel=warn \
    -cp "$LIBS_DIR/*" kafka.tools.StorageTool format -t "$cid" -c "$props" "${fmt[@]}" >"$dir/format.log" 2>&1 ||
    { cat "$dir/format.log" >&2; die 1 "kafka.tools.StorageTool format failed ($dir)"; }

  exec_broker "$dir" "$heap"
  pid=$(read_pid "$dir")
  # bootstrap: the address clients start from (the advertised one); listeners: where the broker listens
  echo "127.0.0.1:${p_adv:-$p_plain}" >"$dir/bootstrap"
  if [ "$kind" = secure ]; then
    printf 'PLAINTEXT=127.0.0.1:%s\nSASL_SSL=127.0.0.1:%s\nSASL_PLAINTEXT=127.0.0.1:%s\nSSL=127.0.0.1:%s\n' \
      "$p_plain" "$p_sasl_ssl" "$p_sasl_plain" "$p_ssl" >"$dir/listeners"
    helper json "$dir/endpoints.json" mode=secure "bootstrap=127.0.0.1:$p_plain" \
      "PLAINTEXT=127.0.0.1:$p_plain" "SASL_SSL=127.0.0.1:$p_sasl_ssl" \
      "SASL_PLAINTEXT=127.0.0.1:$p_sasl_plain" "SSL=127.0.0.1:$p_ssl" \
      "ca_pem=$dir/tls/ca.pem" "client_pem=$dir/tls/client.pem" "client_key=$dir/tls/client.key" \
      "client_p12=$dir/tls/client.p12" "p12_password=$STORE_PASSWORD" \
      "scram:json={\"username\":\"$SCRAM_USER\",\"password\":\"$SCRAM_PASSWORD\",\"mechanisms\":[\"SCRAM-SHA-256\",\"SCRAM-SHA-512\"]}" \
      "plain:json={\"username\":\"$PLAIN_USER\",\"password\":\"$PLAIN_PASSWORD\",\"mechanisms\":[\"PLAIN\"]}" \
      "cluster_id=$cid" "pid:json=$pid"
  else
    printf 'PLAINTEXT=127.0.0.1:%s\n' "$p_plain" >"$dir/listeners"
    local -a adv_json=()
    [ "$p_adv" = "$p_plain" ] || adv_json=("advertised=127.0.0.1:$p_adv")
    helper json "$dir/endpoints.json" mode=plain "bootstrap=127.0.0.1:$p_adv" "PLAINTEXT=127.0.0.1:$p_plain" \
      "${adv_json[@]}" "cluster_id=$cid" "pid:json=$pid"
  fi
  log "started $kind broker pid $pid in $dir (PLAINTEXT 127.0.0.1:$p_plain, controller 127.0.0.1:$p_ctrl${adv_port:+, advertised as 127.0.0.1:$adv_port})"
}

listening_plaintext() { # dir -> where the PLAINTEXT listener listens (= bootstrap, unless advertised elsewhere)
  sed -n 's/^PLAINTEXT=//p' "$1/listeners"
}

probe_target() { # dir -> NAME|PID|PLAINTEXT|OTHER... (the probe talks to the listeners, not to an advertised address)
  local dir=$1 spec addr plain
  plain=$(listening_plaintext "$dir")
  spec="$dir|$(read_pid "$dir")|$plain"
  while IFS='=' read -r _ addr; do
    [ "$addr" = "$plain" ] || spec+="|$addr"
  done <"$dir/listeners"
  echo "$spec"
}

print_result() { # mode-specific stdout; the last line is a bootstrap address
  local d
  case $mode in
    plain)
      # advertised elsewhere (KAFKA_ADVERTISED_PORT): first where the broker really listens
      [ "$(listening_plaintext "$DATA_DIR")" = "$(cat "$DATA_DIR/bootstrap")" ] || echo "LISTENING=$(listening_plaintext "$DATA_DIR")"
      cat "$DATA_DIR/bootstrap"
      ;;
    secure) cat "$DATA_DIR/listeners" "$DATA_DIR/bootstrap" ;;
    multi) cat "$DATA_DIR/bootstraps" ;;
  esac
}

# ---------------------------------------------------------------------------------------------------------------
# commands

do_start() {
  need node "Node.js 20+ is needed for the readiness probe"
  need flock "util-linux"
  check_java
  ensure_libs
  lock_data_dir
  local kind t0 ms heap d p out rc=0 all=1
  local -a dirs=() todo=() targets=() bg=() ports=()
  kind=$(cat "$DATA_DIR/$MARKER" 2>/dev/null || true)
  if [ -n "$kind" ] && [ "$kind" != "$mode" ]; then
    for d in $(cluster_dirs); do cluster_running "$d" && die 2 "$DATA_DIR holds a running '$kind' harness; run: scripts/kafka.sh stop --mode $kind"; done
  fi
  if [ "$mode" = multi ]; then
    for ((i = 1; i <= MULTI_COUNT; i++)); do dirs+=("$DATA_DIR/c$i"); done
    heap=${KAFKA_HEAP_OPTS:--Xms128m -Xmx512m}
  else
    dirs=("$DATA_DIR")
    heap=${KAFKA_HEAP_OPTS:--Xms256m -Xmx1g}
  fi
  for d in "${dirs[@]}"; do cluster_running "$d" || { todo+=("$d"); all=0; }; done
  if [ $all = 1 ] && [ -n "$adv_port" ] && [ "$(cat "$DATA_DIR/bootstrap")" != "127.0.0.1:$adv_port" ]; then
    die 1 "the broker running in $DATA_DIR advertises $(cat "$DATA_DIR/bootstrap"), not 127.0.0.1:$adv_port (stop it first)"
  fi
  t0=$(date +%s%N)
  if [ $all = 1 ]; then
    log "already running ($DATA_DIR); checking readiness"
  elif [ "$mode" = multi ]; then
    if [ ${#todo[@]} = ${#dirs[@]} ]; then safe_wipe "$DATA_DIR"; fi
    mkdir -p "$DATA_DIR"
    echo multi >"$DATA_DIR/$MARKER"
    # the clusters start at the same time: their ports are picked together, so no two pick the same free port
    read -r -a ports <<<"$(helper ports $((2 * ${#todo[@]})))"
    [ ${#ports[@]} = $((2 * ${#todo[@]})) ] || die 1 "could not pick free ports"
    for i in "${!todo[@]}"; do
      launch_cluster "${todo[$i]}" plain "$heap" "${ports[$((2 * i))]}" "${ports[$((2 * i + 1))]}" &
      bg+=($!)
    done
    for p in "${bg[@]}"; do wait "$p" || rc=1; done
    if [ $rc != 0 ]; then
      kill_clusters "${todo[@]}"
      die 1 "could not launch all clusters"
    fi
  else
    launch_cluster "$DATA_DIR" "$mode" "$heap"
  fi
  # every broker of the harness, also one found running (a start interrupted before readiness leaves one behind)
  for d in "${dirs[@]}"; do targets+=("$(probe_target "$d")"); done
  log "waiting for readiness (up to ${START_TIMEOUT}s)"
  out=$(helper probe "$START_TIMEOUT" "${targets[@]}") || rc=$?
  while read -r status name rest; do
    [ -n "${status:-}" ] || continue
    if [ "$status" = ok ]; then
      log "ready: $name after ${rest%% *}s (${rest#* })"
    else
      log "NOT READY: $name: $rest"
      log "last lines of $name/broker.log:"
      tail -n 60 "$name/broker.log" >&2 || true
    fi
  done <<<"$out"
  if [ "$rc" != 0 ]; then
    kill_clusters "${dirs[@]}"
    die 1 "broker did not become ready (data kept in $DATA_DIR for inspection; the next start wipes it)"
  fi
  if [ "$mode" = multi ]; then
    for d in "${dirs[@]}"; do cat "$d/bootstrap"; done >"$DATA_DIR/bootstraps"
    helper json "$DATA_DIR/endpoints.json" mode=multi \
      "bootstraps:json=[$(sed 's/.*/"&"/' "$DATA_DIR/bootstraps" | paste -sd,)]"
  fi
  ms=$((($(date +%s%N) - t0) / 1000000))
  log "$mode harness ready in $((ms / 1000)).$((ms % 1000 / 100))s"
  print_result
}

do_stop() {
  if [ ! -e "$DATA_DIR" ]; then
    log "not running (no $DATA_DIR)"
    return 0
  fi
  need flock "util-linux"
  lock_data_dir
  local -a dirs=()
  local d
  while IFS= read -r d; do dirs+=("$(dirname "$d")"); done < <(find "$DATA_DIR" -maxdepth 2 -name broker.pid)
  [ ${#dirs[@]} -gt 0 ] && kill_clusters "${dirs[@]}"
  safe_wipe "$DATA_DIR"
  log "stopped; removed $DATA_DIR"
}

# Stops the broker (SIGTERM, or SIGKILL with --kill: a crash) and starts it again on the same data and ports,
# for fault tests; waits for readiness and prints the addresses like start.
do_restart() {
  need node "Node.js 20+ is needed for the readiness probe"
  need flock "util-linux"
  [ "$mode" != multi ] || die 2 "restart supports the plain and secure modes"
  lock_data_dir
  local kind pid out rc=0 t0 ms
  kind=$(cat "$DATA_DIR/$MARKER" 2>/dev/null || true)
  [ "$kind" = "$mode" ] || die 1 "no $mode harness in $DATA_DIR (found: ${kind:-nothing})"
  pid=$(read_pid "$DATA_DIR")
  if pid_alive "$pid" "$DATA_DIR"; then
    if [ "$restart_kill" = 1 ]; then
      log "killing broker pid $pid (SIGKILL)"
      kill -KILL "$pid" 2>/dev/null || true
      while cluster_running "$DATA_DIR"; do sleep 0.05; done
    else
      kill_clusters "$DATA_DIR"
    fi
  fi
  t0=$(date +%s%N)
  exec_broker "$DATA_DIR" "${KAFKA_HEAP_OPTS:--Xms256m -Xmx1g}"
  log "restarted broker pid $(read_pid "$DATA_DIR") in $DATA_DIR"
  out=$(helper probe "$START_TIMEOUT" "$(probe_target "$DATA_DIR")") || rc=$?
  if [ "$rc" != 0 ]; then
    log "NOT READY after restart: $out"
    tail -n 60 "$DATA_DIR/broker.log" >&2 || true
    die 1 "broker did not become ready after the restart"
  fi
  ms=$((($(date +%s%N) - t0) / 1000000))
  log "ready again in $((ms / 1000)).$((ms % 1000 / 100))s"
  print_result
}

do_status() {
  local kind d n=0 up=0
  kind=$(cat "$DATA_DIR/$MARKER" 2>/dev/null || true)
  if [ -z "$kind" ]; then
    echo "not running"
    return 1
  fi
  for d in $(cluster_dirs); do
    n=$((n + 1))
    cluster_running "$d" && up=$((up + 1))
  done
  if [ $n -gt 0 ] && [ $up = $n ] && { [ "$kind" != multi ] || [ -f "$DATA_DIR/bootstraps" ]; }; then
    echo "running ($kind, $DATA_DIR)"
    mode=$kind
    print_result
    return 0
  fi
  echo "not running ($kind, $up of $n brokers alive, $DATA_DIR)"
  return 1
}

case $cmd in
  start) do_start ;;
  stop) do_stop ;;
  status) do_status ;;
  restart) do_restart ;;
esac
