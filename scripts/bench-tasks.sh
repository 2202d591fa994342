#!/bin/bash
# Task start figures in a 4-node lab (release build). Run from the repo root as root.
set -e
S=./target/release/shoal
W=$(mktemp -d); trap 'rm -rf "$W"' EXIT
scripts/busybox-image.sh "$W/busy.tar" shoal-test/busy:1
$S lab down --name bench >/dev/null 2>&1 || true
$S lab up --name bench --managers 1 --workers 3 >/dev/null
H="-H unix:///run/shoal/lab/bench/node-1/shoald.sock"
for n in 1 2 3 4; do $S -H unix:///run/shoal/lab/bench/node-$n/shoald.sock image load -q -i $W/busy.tar; done
running() { $S $H service ps -q -f desired-state=running web 2>/dev/null | wc -l; }
count_running() { curl -s --unix-socket /run/shoal/lab/bench/node-1/shoald.sock 'http://x/v1.44/tasks' | python3 -c 'import json,sys; print(sum(1 for t in json.load(sys.stdin) if t["Status"]["State"]=="running" and t["DesiredState"]=="running"))'; }
wait_n() { while [ "$(count_running)" -lt "$1" ]; do sleep 0.05; done; }
t0=$(date +%s.%N); $S $H service create -d --name web --replicas 50 --stop-grace-period 0s shoal-test/busy:1 sleep 100000 >/dev/null; wait_n 50; t1=$(date +%s.%N)
echo "create 50 -> 50 running: $(echo "$t1 - $t0" | bc) s"
t0=$(date +%s.%N); $S $H service scale -d web=100 >/dev/null; wait_n 100; t1=$(date +%s.%N)
echo "scale 50 -> 100 running: $(echo "$t1 - $t0" | bc) s"
count_new() { curl -s --unix-socket /run/shoal/lab/bench/node-1/shoald.sock 'http://x/v1.44/tasks' | python3 -c 'import json,sys; print(sum(1 for t in json.load(sys.stdin) if t["Status"]["State"]=="running" and t["DesiredState"]=="running" and "V=2" in (t["Spec"]["ContainerSpec"].get("Env") or [])))'; }
update_state() { curl -s --unix-socket /run/shoal/lab/bench/node-1/shoald.sock 'http://x/v1.44/services/web' | python3 -c 'import json,sys; print((json.load(sys.stdin).get("UpdateStatus") or {}).get("State",""))'; }
t0=$(date +%s.%N); $S $H service update -d --update-parallelism 10 --env-add V=2 web >/dev/null
while [ "$(count_new)" -lt 100 ]; do sleep 0.05; done; t1=$(date +%s.%N)
while [ "$(update_state)" != completed ]; do sleep 0.05; done; t2=$(date +%s.%N)
echo "rolling update of 100 tasks, parallelism 10: all 100 new tasks running after $(echo "$t1 - $t0" | bc) s, UpdateStatus completed (after the 5 s monitor) at $(echo "$t2 - $t0" | bc) s"
pid=$($S lab ls --name bench | awk '$1=="node-2"{print $5}')
echo "node-2 shoald RSS (its share, about a quarter, of the 100 containers running): $(awk '/VmRSS/{print $2" kB"}' /proc/$pid/status)"
pss() { for p in "$@"; do awk '/^Pss:/{print $2}' /proc/$p/smaps_rollup 2>/dev/null; done | awk '{s+=$1} END{print s+0}'; }
shims=$(pgrep -x shoal-shim || true)
n=$(echo "$shims" | grep -c . || true)
echo "container shims: $n processes, PSS $(pss $shims) kB in all ($(( $(pss $shims) / (n>0?n:1) )) kB each)"
t0=$(date +%s.%N); $S $H service rm web >/dev/null; while [ "$(curl -s --unix-socket /run/shoal/lab/bench/node-1/shoald.sock 'http://x/v1.44/tasks' | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')" != 0 ]; do sleep 0.05; done; t1=$(date +%s.%N)
echo "service rm of 100 tasks until all gone: $(echo "$t1 - $t0" | bc) s"
echo "containers left: $(pgrep -c -f '^sleep 100000' || true)"
$S lab down --name bench >/dev/null

# Memory: 100 tasks on one worker (1 manager + 1 worker; the tasks are kept
# off the manager). runc exits once a container runs; each container has a
# shoal-shim (counted on the line above).
$S lab up --name bench --managers 1 --workers 1 >/dev/null
for n in 1 2; do $S -H unix:///run/shoal/lab/bench/node-$n/shoald.sock image load -q -i $W/busy.tar; done
$S $H service create -d --name mem --replicas 100 --constraint node.role==worker --stop-grace-period 0s shoal-test/busy:1 sleep 100000 >/dev/null
wait_n 100
pid=$($S lab ls --name bench | awk '$1=="node-2"{print $5}')
echo "worker with 100 running tasks: shoald RSS $(awk '/VmRSS/{print $2" kB"}' /proc/$pid/status), PSS $(awk '/^Pss:/{print $2" kB"}' /proc/$pid/smaps_rollup), threads $(awk '/Threads/{print $2}' /proc/$pid/status); its children: $(ps --ppid $pid -o comm= | grep -c '^sleep$') containers and $(ps --ppid $pid -o comm= | grep -vc '^sleep$' || true) other processes"
$S lab down --name bench >/dev/null
