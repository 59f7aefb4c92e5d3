#!/usr/bin/env bash
# The main job on the embedded `files` driver, end to end:
#   two topics → events with metadata and data → `diaspora-ctl forward` → consume and print.
# Runs in a temporary directory that is removed afterwards (KEEP=1 keeps it).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ctl="$here/../bin/diaspora-ctl"
work=$(mktemp -d "${TMPDIR:-/tmp}/diaspora-demo.XXXXXX")
if [ "${KEEP:-0}" = 1 ]; then echo "working directory: $work"; else trap 'rm -rf "$work"' EXIT; fi
cd "$work"
export NO_COLOR=1

echo "== 1. create a source topic (2 partitions) and an archive topic on the files driver"
"$ctl" topic create --driver files --driver.root_path ./data --name detector-events --topic.num_partitions 2 --logging warn
"$ctl" topic create --driver files --driver.root_path ./data --name archive --topic.num_partitions 2 --logging warn
"$ctl" topic list --driver files --driver.root_path ./data

echo "== 2. produce 1000 events: JSON metadata + raw data (a small waveform per event)"
node -e '
  for (let i = 0; i < 1000; i++) {
    const samples = Buffer.alloc(64);
    for (let k = 0; k < 16; k++) samples.writeFloatLE(Math.sin((i + k) / 8), 4 * k);
    const metadata = { run: 42, event: i, detector: i % 2 ? "north" : "south", energy_gev: +(1 + (i % 97) / 10).toFixed(2) };
    console.log(JSON.stringify({ metadata, data: samples.toString("base64") }));
  }' | "$ctl" produce --driver files --driver.root_path ./data --name detector-events --format envelope

echo "== 3. forward detector-events -> archive (data included, provenance headers, positions persisted)"
cp "$here/files-to-files.yaml" forward.yaml
"$ctl" forward --config forward.yaml --stop-at-end --logging warn
echo "   archive now holds: $("$ctl" topic describe --driver files --driver.root_path ./data --name archive)"

echo "== 4. a second run forwards only what is new (no duplicates): produce 5 more, forward again"
for i in 1000 1001 1002 1003 1004; do echo "{\"run\":42,\"event\":$i,\"late\":true}"; done \
  | "$ctl" produce --driver files --driver.root_path ./data --name detector-events --format json --logging warn
"$ctl" forward --config forward.yaml --stop-at-end --logging warn

echo "== 5. consume the archive: first 3 and last 3 events (metadata, data size, base64 data)"
"$ctl" consume --driver files --driver.root_path ./data --name archive --from-beginning > archive.jsonl
head -n 3 archive.jsonl
echo "..."
tail -n 3 archive.jsonl
total=$(wc -l < archive.jsonl)
distinct=$(node -e 'const l=require("fs").readFileSync("archive.jsonl","utf8").trim().split("\n").map(JSON.parse); console.log(new Set(l.map(e=>e.metadata.event)).size)')
echo "== archive: $total events, $distinct distinct (expected 1005 and 1005)"
[ "$total" = 1005 ] && [ "$distinct" = 1005 ]
