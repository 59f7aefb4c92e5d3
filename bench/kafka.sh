#!/usr/bin/env bash
# Kafka-driver benchmark of diaspora-ctl against kcat (librdkafka), on the same broker in the same run
# (see bench/README.md, section "Kafka"). For each record size S in SIZES (default "128 4096"), REPS repetitions
# (default 3), median reported, interleaved within each repetition:
#   (1) diaspora-ctl bench produce -d kafka: N events to a fresh 1-partition topic o<S>_<time>_r<r>, every Kafka
#       record value exactly S bytes (kafka-octopus.md §5: 16-byte header + 8-byte metadata length + metadata
#       JSON + data):
#         S = 128  -> -m 104 -s 0     (metadata {"p":"<96 chars>"} = 104 bytes; 16 + 8 + 104 = 128)
#         S = 4096 -> -m 64  -s 4008  (16 + 8 + 64 + 4008 = 4096)
#         other S  -> -m S-24 -s 0 if S <= 152, else -m 64 -s S-88
#   (2) kcat -P: the same N messages of exactly S bytes (a file of N lines of S bytes, -l, newline delimiter) to a
#       fresh 1-partition topic k<S>_<time>_r<r>, wall time of the kcat process (date +%s.%N)
#   (3) diaspora-ctl bench consume -d kafka of o<S>_<time>_r<r>, and kcat -C -c N -e -q -o beginning of the same
#       topic to /dev/null (wall time of the process; -c N: it exits at the N-th message like ours, without
#       waiting for the end-of-partition notice, which costs one fetch.wait.max.ms = 500 ms)
# Odd repetitions run ours first, even ones kcat first; `sync` (not timed) runs before every producer.
# Then (4) files -> kafka forwarding: N events of -m 104 -s 0 (128-byte Kafka values) in a files topic,
#   diaspora-ctl forward --stop-at-end to a fresh kafka topic, parsing "Forwarded N event(s) ... (X events/s)".
# Producer settings on both sides: acks=all, idempotence on, linger.ms=5, batch.num.messages=10000 (kcat: -X ...;
# ours: the driver's kafka properties, where acks=all and idempotence are the defaults; and `bench produce -b 10000`,
# because our producer's batch size also caps a record batch, as batch.num.messages does kcat's; both also cap a
# record batch at batch.size = 1,000,000 bytes by default). Every topic's end offset is checked to be N (kcat -Q), and in the first repetition every record value is
# checked to be S bytes. kcat is also timed producing / consuming ONE message (its process start-up + connection
# cost, which our benchmarks' clocks do not include) and a second ratio is given against kcat minus that cost.
# CPU time per event (user + system, all threads) is given for both: ours from the timed part (bench's "CPU time"
# line), kcat's for its whole process (bash `times` of a subshell); it varies much less than throughput on a shared VM.
# MB = 2^20 bytes, counted on record values (S bytes per event, for both). Our own "Bandwidth" line counts only
# metadata + data (S − 24 bytes per event) and is not used.
#
# Usage: bench/kafka.sh
#   env: N (100000), REPS (3), SIZES ("128 4096"), BENCH_DIR (/tmp), KEEP=1 (keep the temporary directory),
#        DIASPORA_KAFKA_BOOTSTRAP=host:port (use that broker instead of starting one; topics are left behind),
#        OURS_PRODUCE_FLAGS ("-b 10000 -p 0 -f N"), OURS_CONSUME_FLAGS (""), KCAT (kcat)
# Needs: a build (npx tsc -p tsconfig.json), kcat (apt-get install -y kcat), and for the broker what
# scripts/kafka.sh needs (Java 17+, Maven once).
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(dirname "$HERE")
CTL=(node "$ROOT/bin/diaspora-ctl")
N=${N:-100000}
REPS=${REPS:-3}
SIZES=${SIZES:-"128 4096"}
KCAT=${KCAT:-kcat}
read -r -a OURS_PRODUCE <<<"${OURS_PRODUCE_FLAGS:--b 10000 -p 0 -f $N}"
read -r -a OURS_CONSUME <<<"${OURS_CONSUME_FLAGS:-}"
KCAT_X=(-X linger.ms=5 -X batch.num.messages=10000 -X acks=all -X enable.idempotence=true)
TOPIC_OPTS=(--topic.num_partitions 1 --topic.replication_factor 1)

if [ ! -f "$ROOT/dist/src/cli/bench-produce.js" ]; then
  echo "no build found: run 'npx tsc -p tsconfig.json' in $ROOT first" >&2
  exit 1
fi
command -v "$KCAT" >/dev/null || { echo "kcat not found: apt-get install -y kcat" >&2; exit 1; }

DIR=$(mktemp -d "${BENCH_DIR:-${TMPDIR:-/tmp}}/diaspora-kafka-bench.XXXXXX")
STARTED_BROKER=0
cleanup() {
  local rc=$?
  if [ "$STARTED_BROKER" = 1 ]; then
    KAFKA_DATA_DIR="$DIR/broker" "$ROOT/scripts/kafka.sh" stop --mode plain >/dev/null 2>&1 || echo "warning: could not stop the broker in $DIR/broker" >&2
  fi
  if [ "${KEEP:-0}" != 1 ]; then rm -rf "$DIR"; else echo "kept $DIR" >&2; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if [ -n "${DIASPORA_KAFKA_BOOTSTRAP:-}" ]; then
  BS=$DIASPORA_KAFKA_BOOTSTRAP
else
  echo "starting a plain broker in $DIR/broker" >&2
  STARTED_BROKER=1
  BS=$(KAFKA_DATA_DIR="$DIR/broker" "$ROOT/scripts/kafka.sh" start --mode plain | tail -n 1)
fi
RUN=$(date +%s) # topic name suffix: fresh topics even on a shared broker
CFG=$DIR/cfg.json
cat >"$CFG" <<EOF
{"kafka": {"bootstrap.servers": "$BS", "acks": "all", "enable.idempotence": "true", "linger.ms": "5", "batch.num.messages": "10000"}}
EOF

median() { sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
field() { awk -v k="$1: " 'index($0, k) == 1 { split(substr($0, length(k) + 1), w, " "); print w[1] }'; }
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.6f\n", b - a }'; }
fmt0() { awk -v x="$1" 'BEGIN { s = sprintf("%.0f", x); n = length(s); o = ""; for (i = 1; i <= n; i++) { o = o substr(s, i, 1); if ((n - i) % 3 == 0 && i < n) o = o "," } print o }'; }
fmt1() { awk -v x="$1" 'BEGIN { printf "%.1f\n", x }'; }
fmt2() { awk -v x="$1" 'BEGIN { printf "%.2f\n", x }'; }
mbs() { awk -v e="$1" -v s="$2" 'BEGIN { printf "%.2f\n", e * s / 1048576 }'; } # events/s, bytes/event -> MB/s
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f\n", a / b }'; }
die() { echo "kafka.sh: $*" >&2; exit 1; }
# children_cpu <file>: user + system seconds from the children line of bash's `times` (second line: "XmY.YYYs XmZ.ZZZs")
children_cpu() { sed -n 2p "$1" | awk '{ s = 0; for (i = 1; i <= 2; i++) { split($i, a, "m"); sub("s", "", a[2]); s += a[1] * 60 + a[2] } printf "%.6f\n", s }'; }
us_per_event() { awk -v c="$1" -v n="$N" 'BEGIN { printf "%.2f\n", c / n * 1e6 }'; } # cpu seconds -> µs/event

# metadata / data sizes so that the record value is exactly S bytes (16 + 8 + m + s = S)
split_size() {
  local s=$1
  [ "$s" -ge 32 ] || die "record size $s too small (at least 32: 24 bytes of header + 8 of metadata)"
  if [ "$s" -le 152 ]; then echo "$((s - 24)) 0"; else echo "64 $((s - 88))"; fi
}

# end offset of partition 0 (= number of records: fresh topics, no transactions)
end_offset() { "$KCAT" -Q -b "$BS" -t "$1:0:-1" | awk '{ print $NF }'; }
check_count() { # topic expected
  local got
  got=$(end_offset "$1")
  [ "$got" = "$2" ] || die "topic $1 holds $got records, expected $2"
}
check_sizes() { # topic size: every record value exactly size bytes
  local got
  got=$("$KCAT" -C -b "$BS" -t "$1" -e -q -o beginning -f '%S\n' | sort | uniq -c | awk '{ printf "%s×%s ", $1, $2 }')
  [ "$got" = "$N×$2 " ] || die "topic $1: record value sizes $got, expected $N×$2"
}
kafka_topic() { # name: a plain 1-partition Kafka topic (no info topic), for kcat
  "${CTL[@]}" topic create --driver kafka --driver-config "$CFG" --name "$1" "${TOPIC_OPTS[@]}" \
    --topic.disable_info_topic true >/dev/null 2>"$DIR/stderr" || { cat "$DIR/stderr" >&2; die "could not create topic $1"; }
}
# payload file: N lines of S random alphanumeric bytes, newline-delimited (kcat strips the delimiter)
make_payload() { # size count file
  node -e '
    const fs = require("node:fs");
    const [S, n, file] = [Number(process.argv[1]), Number(process.argv[2]), process.argv[3]];
    const abc = Buffer.from("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789");
    const pool = Buffer.alloc(1 << 20);
    let x = 0x5eed1234;
    for (let i = 0; i < pool.length; i++) { x ^= x << 13; x ^= x >>> 17; x ^= x << 5; pool[i] = abc[(x >>> 0) % abc.length]; }
    const fd = fs.openSync(file, "w");
    const chunk = Buffer.allocUnsafe(1024 * (S + 1));
    for (let i = 0; i < n; ) {
      let k = 0;
      for (; k < 1024 && i < n; k++, i++) {
        const off = (i * 4099) % (pool.length - S);
        pool.copy(chunk, k * (S + 1), off, off + S);
        chunk[k * (S + 1) + S] = 10;
      }
      fs.writeSync(fd, chunk, 0, k * (S + 1));
    }
    fs.closeSync(fd);
  ' "$1" "$2" "$3"
}

echo "broker $BS, N=$N, REPS=$REPS, sizes: $SIZES; ours: bench produce ${OURS_PRODUCE[*]}, bench consume ${OURS_CONSUME[*]:-(defaults)}; kcat: ${KCAT_X[*]}" >&2
KCAT_VERSION=$("$KCAT" -V 2>&1 | sed -n 's/^Version \([^ ]*\) .*librdkafka \([^ ]*\) .*/kcat \1, librdkafka \2/p' | head -n 1)

# kcat start-up: produce one message to a fresh topic / consume a one-message topic, REPS times
one=$DIR/one.txt
printf 'x\n' >"$one"
# (not timed first: the first idempotent producer of a fresh broker waits for its transaction coordinator to load)
kafka_topic "st_${RUN}_0"
"$KCAT" -P -b "$BS" -t "st_${RUN}_0" "${KCAT_X[@]}" -l "$one" 2>/dev/null
st_p=() st_c=()
for r in $(seq 1 "$REPS"); do
  t=st_${RUN}_$r
  kafka_topic "$t"
  a=$(now); "$KCAT" -P -b "$BS" -t "$t" "${KCAT_X[@]}" -l "$one"; b=$(now)
  st_p+=("$(elapsed "$a" "$b")")
  a=$(now); "$KCAT" -C -b "$BS" -t "$t" -c 1 -e -q -o beginning >/dev/null; b=$(now)
  st_c+=("$(elapsed "$a" "$b")")
done
START_P=$(printf '%s\n' "${st_p[@]}" | median)
START_C=$(printf '%s\n' "${st_c[@]}" | median)

ROWS=()
row() { # label ours_evs size kcat_evs kcat_secs kcat_startup_s runs_text ours_cpu_us kcat_cpu_us
  local label=$1 oe=$2 s=$3 ke=$4 ksec=$5 kst=$6 runs=$7 ocpu=$8 kcpu=$9 kex
  kex=$(awk -v n="$N" -v t="$ksec" -v st="$kst" 'BEGIN { d = t - st; if (d <= 0) print 0; else printf "%.2f\n", n / d }')
  ROWS+=("| $label | $(fmt0 "$oe") | $(fmt1 "$(mbs "$oe" "$s")") | $(fmt0 "$ke") | $(fmt1 "$(mbs "$ke" "$s")") | $(ratio "$oe" "$ke") | $(awk -v a="$oe" -v b="$kex" 'BEGIN { if (b > 0) printf "%.2f\n", a / b; else print "–" }') | $(fmt2 "$ocpu") / $(fmt2 "$kcpu") | $runs |")
}

# one repetition's steps, for size S (M, D, payload) and topics ot (ours) / kt (kcat); each producer starts after a
# `sync` (not timed), so that neither pays for the write-back of the other's records
ours_produce() { # (1)
  local out
  sync
  out=$("${CTL[@]}" bench produce -d kafka -c "$CFG" -t "$ot" -n "$N" -m "$M" -s "$D" "${OURS_PRODUCE[@]}" "${TOPIC_OPTS[@]}" 2>"$DIR/stderr") ||
    { cat "$DIR/stderr" >&2; die "bench produce failed (S=$S, rep $r)"; }
  [ "$(echo "$out" | field 'Total events')" = "$N" ] || die "bench produce: not $N events"
  op+=("$(echo "$out" | field Throughput)")
  opc+=("$(echo "$out" | field 'CPU time')")
  check_count "$ot" "$N"
}
kcat_produce() { # (2)
  local a b t
  sync
  a=$(now)
  # (in a subshell whose `times` gives kcat's CPU time: user + system, all its threads)
  ("$KCAT" -P -b "$BS" -t "$kt" "${KCAT_X[@]}" -l "$payload" 2>"$DIR/kcat.err" && times >"$DIR/kcat.times") || { cat "$DIR/kcat.err" >&2; die "kcat -P failed"; }
  b=$(now)
  kpc+=("$(us_per_event "$(children_cpu "$DIR/kcat.times")")")
  [ ! -s "$DIR/kcat.err" ] || { head -n 5 "$DIR/kcat.err" >&2; die "kcat -P reported errors"; }
  t=$(elapsed "$a" "$b")
  kpt+=("$t")
  kp+=("$(awk -v n="$N" -v t="$t" 'BEGIN { printf "%.2f\n", n / t }')")
  check_count "$kt" "$N"
}
ours_consume() { # (3), of the topic written by ours
  local out
  out=$("${CTL[@]}" bench consume -d kafka -c "$CFG" -t "$ot" -n "$N" "${OURS_CONSUME[@]}" 2>"$DIR/stderr") ||
    { cat "$DIR/stderr" >&2; die "bench consume failed (S=$S, rep $r)"; }
  [ "$(echo "$out" | field 'Total events')" = "$N" ] || die "bench consume: not $N events"
  oc+=("$(echo "$out" | field Throughput)")
  occ+=("$(echo "$out" | field 'CPU time')")
}
kcat_consume() { # (3), of the same topic
  local a b t
  a=$(now)
  ("$KCAT" -C -b "$BS" -t "$ot" -c "$N" -e -q -o beginning >/dev/null 2>"$DIR/kcat.err" && times >"$DIR/kcat.times") || { cat "$DIR/kcat.err" >&2; die "kcat -C failed"; }
  b=$(now)
  kcc+=("$(us_per_event "$(children_cpu "$DIR/kcat.times")")")
  t=$(elapsed "$a" "$b")
  kct+=("$t")
  kc+=("$(awk -v n="$N" -v t="$t" 'BEGIN { printf "%.2f\n", n / t }')")
}

for S in $SIZES; do
  read -r M D <<<"$(split_size "$S")"
  [ -n "$D" ] || exit 1
  payload=$DIR/payload-$S.txt
  make_payload "$S" "$N" "$payload"
  [ "$(stat -c %s "$payload")" = "$((N * (S + 1)))" ] || die "payload file $payload has the wrong size"
  op=() kp=() kpt=() oc=() kc=() kct=() opc=() kpc=() occ=() kcc=()
  for r in $(seq 1 "$REPS"); do
    ot=o${S}_${RUN}_r$r
    kt=k${S}_${RUN}_r$r
    kafka_topic "$kt"
    # producers, then consumers; odd repetitions run ours first, even ones kcat first
    if [ $((r % 2)) = 1 ]; then ours_produce; kcat_produce; else kcat_produce; ours_produce; fi
    if [ "$r" = 1 ]; then
      check_sizes "$ot" "$S"
      check_sizes "$kt" "$S"
    fi
    if [ $((r % 2)) = 1 ]; then ours_consume; kcat_consume; else kcat_consume; ours_consume; fi
    echo "S=$S rep $r: produce ours ${op[-1]} kcat ${kp[-1]} events/s; consume ours ${oc[-1]} kcat ${kc[-1]} events/s" >&2
  done
  rm -f "$payload"
  runs() { local o=() k=() x; for x in "${!1}"; do o+=("$(fmt0 "$x")"); done; for x in "${!2}"; do k+=("$(fmt0 "$x")"); done; echo "${o[*]} / ${k[*]}"; }
  med() { printf '%s\n' "${!1}" | median; }
  row "produce $N × $S B (ours -m $M -s $D)" "$(med 'op[@]')" "$S" "$(med 'kp[@]')" "$(med 'kpt[@]')" "$START_P" "$(runs 'op[@]' 'kp[@]')" "$(med 'opc[@]')" "$(med 'kpc[@]')"
  row "consume $N × $S B" "$(med 'oc[@]')" "$S" "$(med 'kc[@]')" "$(med 'kct[@]')" "$START_C" "$(runs 'oc[@]' 'kc[@]')" "$(med 'occ[@]')" "$(med 'kcc[@]')"
done

# (4) files -> kafka forward of N 128-byte events
FILES=$DIR/files
"${CTL[@]}" bench produce -d files --driver.root_path "$FILES" -t fsrc -n "$N" -m 104 -s 0 -b 128 --warmup 0 >/dev/null 2>"$DIR/stderr" ||
  { cat "$DIR/stderr" >&2; die "could not fill the files topic"; }
fw=()
for r in $(seq 1 "$REPS"); do
  sync
  ft=f128_${RUN}_r$r
  "${CTL[@]}" topic create --driver kafka --driver-config "$CFG" --name "$ft" "${TOPIC_OPTS[@]}" >/dev/null 2>"$DIR/stderr" ||
    { cat "$DIR/stderr" >&2; die "could not create topic $ft"; }
  cat >"$DIR/fw-$r.yaml" <<EOF
state_dir: $DIR/fw-state-$r
drivers:
  local:
    type: files
    options: { root_path: "$FILES" }
  remote:
    type: kafka
    options:
      kafka:
        bootstrap.servers: "$BS"
        acks: "all"
        linger.ms: "5"
        batch.num.messages: "10000"
forward:
  - from: local/fsrc
    to: remote/$ft
    start: earliest
EOF
  "${CTL[@]}" forward --config "$DIR/fw-$r.yaml" --stop-at-end --logging debug >"$DIR/fw-$r.log" 2>&1 ||
    { tail -n 30 "$DIR/fw-$r.log" >&2; die "forward failed (rep $r)"; }
  line=$(grep -o 'Forwarded [0-9]* event(s) .*events/s)' "$DIR/fw-$r.log" | tail -n 1)
  [ -n "$line" ] || { tail -n 30 "$DIR/fw-$r.log" >&2; die "no 'Forwarded' line (rep $r)"; }
  [ "$(echo "$line" | awk '{ print $2 }')" = "$N" ] || die "forward rep $r: $line (expected $N)"
  check_count "$ft" "$N"
  fw+=("$(echo "$line" | sed 's/.*(\([0-9]*\) events\/s)/\1/')")
  echo "forward rep $r: $line" >&2
done
FW=$(printf '%s\n' "${fw[@]}" | median)

echo
echo "$(date -u '+%Y-%m-%d %H:%M UTC'), N=$N, REPS=$REPS (median), 1 partition, broker $BS; node $(node --version); $(nproc) cores, load average at the end $(cut -d' ' -f1-3 /proc/loadavg)"
echo "ours: bench produce -d kafka ${OURS_PRODUCE[*]}; bench consume -d kafka ${OURS_CONSUME[*]:-(defaults)}"
echo "$KCAT_VERSION: -P ${KCAT_X[*]} -l <file>; -C -c $N -e -q -o beginning > /dev/null; start-up (1 message): produce $(awk -v x="$START_P" 'BEGIN { printf "%.0f", x * 1000 }') ms, consume $(awk -v x="$START_C" 'BEGIN { printf "%.0f", x * 1000 }') ms"
echo
echo "| scenario | ours events/s | ours MB/s | kcat msgs/s | kcat MB/s | ours/kcat | ours/kcat (kcat minus start-up) | CPU µs/event (ours / kcat) | runs events/s (ours / kcat) |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---|"
printf '%s\n' "${ROWS[@]}"
echo
echo "forward files -> kafka, $N × 128 B: $(fmt0 "$FW") events/s, $(fmt1 "$(mbs "$FW" 128)") MB/s (runs: $(for x in "${fw[@]}"; do printf '%s ' "$(fmt0 "$x")"; done | sed 's/ $//'))"
