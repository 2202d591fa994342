#!/bin/bash
# Live restore figures (release build): a worker with 100 running tasks has
# its shoald killed (SIGKILL) and started again; how long until the node is
# ready again, and whether the same 100 containers run on. Run from the
# repo root as root after `cargo build --release`.
set -e
S=./target/release/shoal
W=$(mktemp -d); trap 'rm -rf "$W"' EXIT
scripts/busybox-image.sh "$W/busy.tar" shoal-test/busy:1 >/dev/null
$S lab down --name bench-lr >/dev/null 2>&1 || true
$S lab up --name bench-lr --managers 1 --workers 1 >/dev/null
sock() { echo "unix:///run/shoal/lab/bench-lr/$1/shoald.sock"; }
for n in node-1 node-2; do $S -H "$(sock $n)" image load -q -i "$W/busy.tar" >/dev/null; done
H="-H $(sock node-1)"
$S $H service create -d --name lr --replicas 100 --constraint node.role==worker shoal-test/busy:1 sleep 100000 >/dev/null
running() { curl -s --unix-socket /run/shoal/lab/bench-lr/node-1/shoald.sock 'http://x/v1.44/tasks' | python3 -c 'import json,sys; print(sorted((t["ID"], t["Status"]["ContainerStatus"]["PID"]) for t in json.load(sys.stdin) if t["Status"]["State"]=="running"))'; }
until [ "$(running | python3 -c 'import sys,ast; print(len(ast.literal_eval(sys.stdin.read())))')" = 100 ]; do sleep 0.1; done
before=$(running)
$S lab kill --name bench-lr node-2 >/dev/null
t0=$(date +%s.%N)
$S lab start --name bench-lr node-2 >/dev/null
ready() { curl -s --unix-socket /run/shoal/lab/bench-lr/node-1/shoald.sock 'http://x/v1.44/nodes' | python3 -c 'import json,sys; print(any(n["Description"]["Hostname"]=="node-2" and n["Status"]["State"]=="ready" for n in json.load(sys.stdin)))'; }
until curl -s --unix-socket /run/shoal/lab/bench-lr/node-2/shoald.sock http://x/_ping >/dev/null 2>&1; do sleep 0.02; done
t1=$(date +%s.%N)
echo "shoald started again (lab start included), API answering after $(echo "$t1 - $t0" | bc) s"
listed() { curl -s --unix-socket /run/shoal/lab/bench-lr/node-2/shoald.sock 'http://x/v1.44/containers/json' | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))'; }
until [ "$(listed)" = 100 ]; do sleep 0.02; done
t2=$(date +%s.%N)
echo "its 100 containers listed again (docker ps on the node) after $(echo "$t2 - $t0" | bc) s"
# An observation window, not a wait for something: the agent has reported
# by then (heartbeats every 5 s), and nothing may have changed.
sleep 6
pid=$($S lab ls --name bench-lr | awk '$1=="node-2"{print $5}')
echo "restarted shoald: RSS $(awk '/VmRSS/{print $2" kB"}' /proc/$pid/status), threads $(awk '/Threads/{print $2}' /proc/$pid/status)"
after=$(running)
total=$(curl -s --unix-socket /run/shoal/lab/bench-lr/node-1/shoald.sock 'http://x/v1.44/tasks' | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')
[ "$before" = "$after" ] && echo "the same 100 tasks and PIDs run on ($total tasks in all)" || echo "CHANGED: $total tasks"
$S lab down --name bench-lr >/dev/null
