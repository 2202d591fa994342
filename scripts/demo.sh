#!/bin/bash
# The README's first command: a local lab of 3 managers and 2 workers (one
# network namespace and one shoald per host), a 3-replica web service from
# a busybox image built here, and a page fetched from every replica over
# its node's gateway bridge. Run as root from the repository root after
# `cargo build --release`. Tear down with `./target/release/shoal lab down`.
set -euo pipefail
S=./target/release/shoal
W=$(mktemp -d); trap 'rm -rf "$W"' EXIT
scripts/busybox-image.sh "$W/web.tar" shoal-demo/web:1
$S lab up --managers 3 --workers 2
sock() { echo "unix:///run/shoal/lab/lab/$1/shoald.sock"; }
for n in 1 2 3 4 5; do $S -H "$(sock node-$n)" image load -q -i "$W/web.tar" >/dev/null; done
M="-H $(sock node-1)"
# Each replica prints its address, then serves /www on port 80.
$S $M service create --name web --replicas 3 --constraint node.role==worker --update-parallelism 1 \
  shoal-demo/web:1 sh -c 'echo "serving on $(ip -4 -o addr show eth0 | sed "s/.* inet \([0-9.]*\).*/\1/")"; exec httpd -f -p 80 -h /www'
$S $M service ls
$S $M service ps web
echo
deadline=$((SECONDS + 30))
while [ "$($S $M service logs --raw web 2>/dev/null | grep -c '^serving on')" -lt 3 ]; do
  [ $SECONDS -lt $deadline ] || { echo "the replicas did not report their addresses" >&2; exit 1; }
  sleep 0.2
done
$S $M service logs web | grep 'serving on' | while read -r ctx _ _ _ ip; do
  node=${ctx#*@}
  echo "$ctx -> GET http://$ip/ from $node: $($S lab exec "$node" -- busybox wget -qO- "http://$ip/")"
done
