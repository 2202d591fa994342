#!/bin/bash
# The README's first command: a local lab of 3 managers and 2 workers (one
# network namespace and one shoald per host), the web-tier stack from
# deploy-examples/ deployed with `shoal stack deploy` (a web service on two
# overlay networks with a cache behind it and a worker that calls it by
# name), its web service published on port 8080 through the routing mesh.
# Then a page is fetched from port 8080 of every node, those without a web
# task included: each answer names the task that served it and the client
# address that task saw (the caller's own, not a mesh address). Images are
# built here from busybox-static. Run as root from the repository root
# after `cargo build --release`. Tear down with `./target/release/shoal lab down`.
set -euo pipefail
S=./target/release/shoal
W=$(mktemp -d); trap 'rm -rf "$W"' EXIT
for img in web cache worker; do scripts/busybox-image.sh "$W/$img.tar" "shoal-demo/$img:1"; done
$S lab up --managers 3 --workers 2
sock() { echo "unix:///run/shoal/lab/lab/$1/shoald.sock"; }
addr() { echo "192.168.77.$((10 + $1))"; }
for n in 1 2 3 4 5; do
  for img in web cache worker; do $S -H "$(sock node-$n)" image load -q -i "$W/$img.tar" >/dev/null; done
done
M="-H $(sock node-1)"
echo
echo "\$ shoal stack deploy -c deploy-examples/web-tier/docker-compose.yml app"
$S $M stack deploy -c deploy-examples/web-tier/docker-compose.yml app
$S $M stack services app
$S $M service ps app_web --filter desired-state=running
echo
# The worker calls the web tier by name (DNS at 127.0.0.11, the VIP).
deadline=$((SECONDS + 60))
until $S $M service logs --raw app_worker 2>/dev/null | grep -q 'fetched: hello from shoal'; do
  [ $SECONDS -lt $deadline ] || { echo "the worker did not reach the web tier" >&2; exit 1; }
  sleep 0.5
done
echo "app_worker, calling http://web/ by name: $($S $M service logs --raw app_worker 2>/dev/null | grep fetched | tail -n 1)"
echo
with_task=$($S $M service ps app_web --filter desired-state=running --format '{{.Node}}' | sort -u | tr '\n' ' ')
echo "GET http://<node>:8080/cgi-bin/whoami on every node (web tasks run on: $with_task):"
for n in 1 2 3 4 5; do
  # The client is another node of the lab, so the address the task saw is a lab address.
  from=node-1; [ $n -eq 1 ] && from=node-2
  deadline=$((SECONDS + 30))
  until answer=$($S lab exec "$from" -- curl -s -m 3 "http://$(addr $n):8080/cgi-bin/whoami"); do
    [ $SECONDS -lt $deadline ] || { echo "node-$n did not answer on 8080" >&2; exit 1; }
    sleep 0.5
  done
  case " $with_task " in *" node-$n "*) here="a web task runs here";; *) here="no web task here";; esac
  echo "  from $from to node-$n ($(addr $n), $here): task $(echo "$answer" | sed 's/\[::ffff://; s/\]//')"
done
