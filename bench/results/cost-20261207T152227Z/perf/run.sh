#!/usr/bin/env bash
# perf profile of the memory hub for one cost cell: $1 = label, rest = generator args
set -u
label=$1; shift
W=REPO
P=OUT
ulimit -n 20000
setsid $W/target/release/ssehub serve --listen 127.0.0.1:27300 --memory >$P/$label.hub.log 2>&1 &
HUB=$!
sleep 1.5
perf record -e cpu-clock -g -p $HUB -o $P/$label.data >$P/$label.perf.log 2>&1 &
PERF=$!
sleep 0.5
$W/target/release/ssehub-bench fanout "$@" --sub-url 'http://127.0.0.1:27300/events/{topic}' --pub-url http://127.0.0.1:27300/publish --hub-pid $HUB --src-base 127.$((RANDOM % 50 + 150)).0.2 --json $P/$label.json 2>$P/$label.gen.log >/dev/null
kill -INT $PERF; wait $PERF
kill $HUB; wait $HUB 2>/dev/null
perf report -i $P/$label.data --no-children --sort dso,symbol --stdio 2>/dev/null | grep -v '^#' | grep '%' | head -40 >$P/$label.top.txt
perf report -i $P/$label.data --no-children --sort dso --stdio 2>/dev/null | grep -v '^#' | grep '%' | head -8 >$P/$label.dso.txt
tail -4 $P/$label.gen.log
