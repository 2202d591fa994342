#!/usr/bin/env bash
# The README's test command: installs what the tests need on a fresh
# Debian-like machine (as root), checks style, then builds and runs every
# test, unit and multi-node. `.ci/run` calls this.
set -euo pipefail
cd "$(dirname "$0")/.."

export DEBIAN_FRONTEND=noninteractive
pkgs=(iproute2 iputils-ping procps openssl util-linux docker-registry busybox-static runc tini nftables curl)
# The e2e scenarios use the stock docker CLI as a client of shoald (never a
# Docker Engine). Debian's docker.io carries one; a machine that already has
# a docker CLI keeps it.
command -v docker >/dev/null 2>&1 || pkgs+=(docker.io)
# The SDK scenario (e2e/tests/sdk_docker_py.rs) installs docker-py from PyPI
# into a venv.
pkgs+=(python3 python3-venv)
missing=()
for p in "${pkgs[@]}"; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    apt-get update -qq
    # policy-rc.d keeps package scripts from starting daemons (dockerd).
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
    apt-get install -y -qq --no-install-recommends "${missing[@]}"
    rm -f /usr/sbin/policy-rc.d
fi

cargo fmt --all --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo build --workspace --locked
cargo test --workspace --locked -- --test-threads=2
