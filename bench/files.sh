#!/usr/bin/env bash
# Files-driver benchmark of diaspora-ctl (see bench/README.md): in one run, on this machine, with 1 partition,
# N events (default 100,000) and batches of 128, REPS repetitions (default 3) of each scenario, median reported:
#   (a) producer, 128-byte metadata, no data
#   (b) producer, 64-byte metadata + 4 KiB data; beside it dd writing the same number of bytes in the same directory
#       (bs=4160: one write per event; bs=532480: one write per batch of 128 events)
#   (c) consumer of (b), all data
#   (d) consumer of (b) with data interest 0.5 and selectivity 0.25 (contiguous, like the reference) and strided
#   (e) consumer of (a) (metadata only)
#   (f) forward files -> files of N_FWD (default 500,000) events of (a)'s shape, end to end, with peak memory
#   and, as the machine's floor for (a) and (c), bench/floor.mjs: the same bytes with no API (see that file)
# Producers run with --max-num-batches 64 (the reference ignores MaxNumBatches); every bench command first
# runs a warm-up of 200,000 events in 4 rounds that is not measured (JIT); the "cold" rows use --warmup 0.
# for each producer/consumer pool size in THREADS (default "1 0": 1 = the reference default -p 1; 0 = inline pool).
# MB = 2^20 bytes everywhere (the reference benchmarks' unit), dd included. `sync` runs before every repetition
# (outside the timed part) so that no run pays for the write-back of the previous one.
#
# Usage: bench/files.sh            (env: N, REPS, THREADS, BENCH_DIR, KEEP=1 to keep the data)
# Needs a build: npx tsc -p tsconfig.json
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(dirname "$HERE")
CTL=(node "$ROOT/bin/diaspora-ctl")
N=${N:-100000}
REPS=${REPS:-3}
THREADS=${THREADS:-"1 0"}
BATCH=128
DIR=$(mktemp -d "${BENCH_DIR:-${TMPDIR:-/tmp}}/diaspora-bench.XXXXXX")
if [ "${KEEP:-0}" != 1 ]; then trap 'rm -rf "$DIR"' EXIT; fi
DRV=(-d files --driver.root_path "$DIR/data")

if [ ! -f "$ROOT/dist/src/cli/bench-produce.js" ]; then
  echo "no build found: run 'npx tsc -p tsconfig.json' in $ROOT first" >&2
  exit 1
fi

median() { sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
# field <name>: the first word after "<name>: " on the line starting with it
field() { awk -v k="$1: " 'index($0, k) == 1 { split(substr($0, length(k) + 1), w, " "); print w[1] }'; }

# run_bench <label> <topic> <command...>: runs the command REPS times with --topic <topic> (a "%r" in <topic> is
# replaced by the repetition number), prints "| label | median events/s | median MB/s | each run's events/s |".
# Consumer runs (command contains "consume") must report exactly N events.
declare -A MED_EVS MED_MBS
run_bench() {
  local label=$1 topic=$2
  shift 2
  local evs=() mbs=() out got
  for r in $(seq 1 "$REPS"); do
    sync # start every run with no dirty pages left by the previous one (not timed)
    out=$("$@" --topic "${topic//%r/$r}" 2>"$DIR/stderr") || {
      echo "FAILED: $*" >&2
      cat "$DIR/stderr" >&2
      exit 1
    }
    got=$(echo "$out" | field 'Total events')
    if [ "$got" != "$N" ]; then echo "$label: $got events, expected $N" >&2; exit 1; fi
    evs+=("$(echo "$out" | field Throughput)")
    mbs+=("$(echo "$out" | field Bandwidth)")
  done
  MED_EVS[$label]=$(printf '%s\n' "${evs[@]}" | median)
  MED_MBS[$label]=$(printf '%s\n' "${mbs[@]}" | median)
  printf '| %-44s | %10.0f | %8.1f | %s|\n' "$label" "${MED_EVS[$label]}" "${MED_MBS[$label]}" "$(printf '%.0f ' "${evs[@]}")"
}

pct() { awk -v x="$1" -v t="$2" 'BEGIN { printf "%.0f%%", 100 * x / t }'; }

LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
echo "# diaspora-ctl bench, files driver: $(nproc) cores, $(uname -sr), node $(node --version)"
echo "# $N events, batch $BATCH, 1 partition, $REPS repetitions (median), data in $DIR"
echo
echo "| scenario                                     |   events/s |     MB/s | runs (events/s) |"
echo "|----------------------------------------------|------------|----------|-----------------|"
for P in $THREADS; do
  run_bench "(a) produce -m 128 -p $P" "a-p$P-%r" "${CTL[@]}" bench produce "${DRV[@]}" -n "$N" -b "$BATCH" -m 128 -s 0 -p "$P" --max-num-batches 64
  run_bench "(a) cold (--warmup 0) -p $P" "ac-p$P-%r" "${CTL[@]}" bench produce "${DRV[@]}" -n "$N" -b "$BATCH" -m 128 -s 0 -p "$P" --max-num-batches 64 --warmup 0
  run_bench "(b) produce -m 64 -s 4096 -p $P" "b-p$P-%r" "${CTL[@]}" bench produce "${DRV[@]}" -n "$N" -b "$BATCH" -m 64 -s 4096 -p "$P" --max-num-batches 64
  # the consumers read the first topic written by (b), REPS times each
  run_bench "(c) consume of (b) -p $P" "b-p$P-1" "${CTL[@]}" bench consume "${DRV[@]}" -n "$N" -p "$P"
  run_bench "(d) consume of (b) -i 0.5 -s 0.25 -p $P" "b-p$P-1" "${CTL[@]}" bench consume "${DRV[@]}" -n "$N" -p "$P" -i 0.5 -s 0.25
  run_bench "(d) same, --selection strided -p $P" "b-p$P-1" "${CTL[@]}" bench consume "${DRV[@]}" -n "$N" -p "$P" -i 0.5 -s 0.25 --selection strided
  run_bench "(e) consume of (a) -p $P" "a-p$P-1" "${CTL[@]}" bench consume "${DRV[@]}" -n "$N" -p "$P"
  run_bench "(e) cold (--warmup 0) -p $P" "a-p$P-1" "${CTL[@]}" bench consume "${DRV[@]}" -n "$N" -p "$P" --warmup 0
done

# the floor: what a program with no API at all gets for (a) and (c) in the same minutes (bench/floor.mjs)
run_floor() { # run_floor <key> <label> <floor.mjs arguments...>
  local key=$1 label=$2
  shift 2
  local evs=() out
  for r in $(seq 1 "$REPS"); do
    sync
    out=$(N=$N node "$HERE/floor.mjs" "$@") || { echo "FAILED: floor.mjs $*" >&2; exit 1; }
    evs+=("$(echo "$out" | field Throughput)")
  done
  MED_EVS[$key]=$(printf '%s\n' "${evs[@]}" | median)
  printf '| %-44s | %10.0f | %8s | %s|\n' "$label" "${MED_EVS[$key]}" "-" "$(printf '%.0f ' "${evs[@]}")"
}
mkdir -p "$DIR/floor"
run_floor floor_a "(a) floor: no API (bench/floor.mjs)" produce "$DIR/floor"
run_floor floor_c "(c) floor: no API (bench/floor.mjs)" consume "$DIR/data/b-p${THREADS%% *}-1/partitions/00000000"

# (f) forward files -> files: N_FWD events of 128-byte metadata, `diaspora-ctl forward --stop-at-end` with the
# default policy (provenance headers on); throughput from the daemon's "Forwarded ... events/s" line (worker run
# time, start-up excluded), peak resident memory from the daemon's debug line.
N_FWD=${N_FWD:-500000}
"${CTL[@]}" bench produce "${DRV[@]}" -t fwd-src -n "$N_FWD" -b "$BATCH" -m 128 -s 0 -p 0 --max-num-batches 64 > /dev/null 2>&1
fw_evs=() fw_rss=()
for r in $(seq 1 "$REPS"); do
  "${CTL[@]}" topic create --driver files --driver.root_path "$DIR/data" --name "fwd-dst-$r" --logging error
  printf 'drivers:\n  local: { type: files, options: { root_path: "%s" } }\nforward:\n  - { from: local/fwd-src, to: local/fwd-dst-%s }\n' "$DIR/data" "$r" > "$DIR/fwd-$r.yaml"
  sync
  log=$("${CTL[@]}" forward --config "$DIR/fwd-$r.yaml" --stop-at-end --logging debug 2>&1)
  echo "$log" | grep -q "Forwarded $N_FWD event(s)" || { echo "forward run $r did not forward $N_FWD events:" >&2; echo "$log" >&2; exit 1; }
  fw_evs+=("$(echo "$log" | sed -n 's/.*Forwarded [0-9]* event(s) .* (\([0-9]*\) events\/s).*/\1/p')")
  fw_rss+=("$(echo "$log" | sed -n 's/.*Peak resident memory: \([0-9]*\) MiB.*/\1/p')")
done
MED_EVS[fwd]=$(printf '%s\n' "${fw_evs[@]}" | median)
printf '| %-44s | %10.0f | %8s | %s| peak RSS (MiB): %s\n' "(f) forward files->files, $N_FWD events" "${MED_EVS[fwd]}" "-" "$(printf '%s ' "${fw_evs[@]}")" "$(printf '%s ' "${fw_rss[@]}")"

# dd: the same bytes as (b) (64 + 4096 per event), fresh file each time, page cache (no sync), like the producer;
# once with one write per event (bs=4160) and once with one write per batch of 128 events (bs=532480)
BYTES=$((N * 4160))
dd_bench() {
  local bs=$1 count=$2 ds=() secs
  for r in $(seq 1 "$REPS"); do
    rm -f "$DIR/dd.out"
    sync
    secs=$(dd if=/dev/zero of="$DIR/dd.out" bs="$bs" count="$count" conv=notrunc 2>&1 | awk '/copied/ { for (i = 1; i <= NF; i++) if ($i == "s," || $i == "s") print $(i - 1) }')
    ds+=("$(awk -v b="$((bs * count))" -v s="$secs" 'BEGIN { printf "%.1f", b / 1048576 / s }')")
  done
  rm -f "$DIR/dd.out"
  DD=$(printf '%s\n' "${ds[@]}" | median)
  printf '| %-44s | %10s | %8.1f | %s|\n' "dd bs=$bs count=$count" "-" "$DD" "$(printf '%s MB/s ' "${ds[@]}")"
}
dd_bench $((BATCH * 4160)) $((N / BATCH))
dd_bench 4160 "$N"
echo
echo "Load average after the run: $(cut -d' ' -f1-3 /proc/loadavg) (before: $LOAD_BEFORE)"
echo
echo "Targets (best pool size):"
best() { local m=0 v; for P in $THREADS; do v=${MED_EVS["$1 -p $P"]:-0}; [ "$2" = mb ] && v=${MED_MBS["$1 -p $P"]:-0}; m=$(awk -v a="$m" -v b="$v" 'BEGIN { print (b > a) ? b : a }'); done; echo "$m"; }
A=$(best "(a) produce -m 128" ev)
B=$(best "(b) produce -m 64 -s 4096" mb)
C=$(best "(c) consume of (b)" ev)
printf '  (a) producer  %12.0f events/s  target 1,400,000 events/s  (%s; floor with no API: %.0f, ours %s of it)\n' "$A" "$(pct "$A" 1400000)" "${MED_EVS[floor_a]}" "$(pct "$A" "${MED_EVS[floor_a]}")"
printf '  (b) producer  %12.1f MB/s      target 1,100 MB/s           (%s; dd bs=4160: %s MB/s)\n' "$B" "$(pct "$B" 1100)" "$DD"
printf '  (c) consumer  %12.0f events/s  target 750,000 events/s    (%s; floor with no API: %.0f, ours %s of it)\n' "$C" "$(pct "$C" 750000)" "${MED_EVS[floor_c]}" "$(pct "$C" "${MED_EVS[floor_c]}")"
E=$(best "(e) consume of (a)" ev)
printf '  (e) consumer  %12.0f events/s  (metadata only)            (%s of 750,000)\n' "$E" "$(pct "$E" 750000)"
printf '  (f) forward   %12.0f events/s  target 500,000 events/s    (%s)\n' "${MED_EVS[fwd]}" "$(pct "${MED_EVS[fwd]}" 500000)"
