#!/bin/bash
# Builds a one-layer image from the host's busybox-static as a `docker save`
# archive, for `shoal image load` (no registry, nothing pulled from outside).
# Usage: scripts/busybox-image.sh OUT.tar [REPO:TAG]   (default shoal-test/busy:1)
# The image has sh, the usual applets, httpd serving /www, and a page there.
set -euo pipefail
out=$(realpath -m "$1"); tag=${2:-shoal-test/busy:1}
[ -x /bin/busybox ] || { echo "install busybox-static: the image is built from /bin/busybox" >&2; exit 1; }
w=$(mktemp -d); trap 'rm -rf "$w"' EXIT
mkdir -p "$w/rootfs/bin" "$w/rootfs/etc" "$w/rootfs/tmp" "$w/rootfs/www" "$w/img/layer1"
cp /bin/busybox "$w/rootfs/bin/"
for l in sh echo sleep cat ls ip ping wget httpd dd head hostname sed; do ln -sf busybox "$w/rootfs/bin/$l"; done
echo "hello from shoal" > "$w/rootfs/www/index.html"
tar -C "$w/rootfs" -cf "$w/img/layer1/layer.tar" .
diff=$(sha256sum "$w/img/layer1/layer.tar" | cut -d' ' -f1)
printf '{"architecture":"amd64","os":"linux","config":{"Cmd":["sh"],"Env":["PATH=/bin"]},"rootfs":{"type":"layers","diff_ids":["sha256:%s"]}}' "$diff" > "$w/img/c.json"
cfg=$(sha256sum "$w/img/c.json" | cut -d' ' -f1); mv "$w/img/c.json" "$w/img/$cfg.json"
printf '[{"Config":"%s.json","RepoTags":["%s"],"Layers":["layer1/layer.tar"]}]' "$cfg" "$tag" > "$w/img/manifest.json"
tar -C "$w/img" -cf "$out" .
