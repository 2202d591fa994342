#!/bin/bash
# The README's first command: a local lab of 3 managers and 2 workers (one
# network namespace and one shoald per host), an overlay network, a
# 3-replica web service on it from a busybox image built here, and a client
# service that reaches the web tier by name, balanced over its replicas on
# both workers through the service's VIP. Run as root from the repository
# root after `cargo build --release`. Tear down with
# `./target/release/shoal lab down`.
set -euo pipefail
S=./target/release/shoal
W=$(mktemp -d); trap 'rm -rf "$W"' EXIT
scripts/busybox-image.sh "$W/web.tar" shoal-demo/web:1
$S lab up --managers 3 --workers 2
sock() { echo "unix:///run/shoal/lab/lab/$1/shoald.sock"; }
for n in 1 2 3 4 5; do $S -H "$(sock node-$n)" image load -q -i "$W/web.tar" >/dev/null; done
M="-H $(sock node-1)"
$S $M network create -d overlay demo-net
$S $M network ls
# Each replica serves its own hostname on port 80.
$S $M service create --name web --network demo-net --replicas 3 --constraint node.role==worker --update-parallelism 1 \
  shoal-demo/web:1 sh -c 'mkdir -p /www && hostname > /www/index.html && exec httpd -f -p 80 -h /www'
# The client asks for http://web/ by name once a second: the task resolver
# at 127.0.0.11 answers with web's VIP, which spreads the connections.
$S $M service create -d --name client --network demo-net --constraint node.role==worker \
  shoal-demo/web:1 sh -c 'while :; do echo "GET http://web/ answered by $(wget -qO- http://web/)"; sleep 1; done'
$S $M service ls
$S $M service ps web
echo
deadline=$((SECONDS + 60))
while [ "$($S $M service logs --raw client 2>/dev/null | grep -o 'answered by [a-z0-9]*' | sort -u | wc -l)" -lt 3 ]; do
  [ $SECONDS -lt $deadline ] || { echo "the client did not hear from every replica" >&2; $S $M service logs client >&2; exit 1; }
  sleep 0.5
done
$S $M service logs client | tail -n 8
echo
echo "web's replicas (container hostnames) and where they run:"
$S $M service ps web --format '{{.Name}} on {{.Node}}: {{.ID}}'
