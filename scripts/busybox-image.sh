#!/bin/bash
# Builds a one-layer image from the host's busybox-static as a `docker save`
# archive, for `shoal image load` (no registry, nothing pulled from outside).
# Usage: scripts/busybox-image.sh OUT.tar [REPO:TAG [CMD-JSON]]
#   (default shoal-test/busy:1 and ["sh"]; e.g. '["sh","-c","exit 1"]')
# The image has sh, the usual applets, httpd serving /www, and a page there.
set -euo pipefail
out=$(realpath -m "$1"); tag=${2:-shoal-test/busy:1}; cmd=${3:-[\"sh\"]}
[ -x /bin/busybox ] || { echo "install busybox-static: the image is built from /bin/busybox" >&2; exit 1; }
w=$(mktemp -d); trap 'rm -rf "$w"' EXIT
mkdir -p "$w/rootfs/bin" "$w/rootfs/etc" "$w/rootfs/tmp" "$w/rootfs/www" "$w/img/layer1"
cp /bin/busybox "$w/rootfs/bin/"
for l in sh echo sleep cat ls ip ping wget httpd dd head hostname sed; do ln -sf busybox "$w/rootfs/bin/$l"; done
echo "hello from shoal" > "$w/rootfs/www/index.html"
tar -C "$w/rootfs" -cf "$w/img/layer1/layer.tar" .
diff=$(sha256sum "$w/img/layer1/layer.tar" | cut -d' ' -f1)
printf '{"architecture":"amd64","os":"linux","config":{"Cmd":%s,"Env":["PATH=/bin"]},"rootfs":{"type":"layers","diff_ids":["sha256:%s"]}}' "$cmd" "$diff" > "$w/img/c.json"
cfg=$(sha256sum "$w/img/c.json" | cut -d' ' -f1); mv "$w/img/c.json" "$w/img/$cfg.json"
printf '[{"Config":"%s.json","RepoTags":["%s"],"Layers":["layer1/layer.tar"]}]' "$cfg" "$tag" > "$w/img/manifest.json"
tar -C "$w/img" -cf "$out" .
