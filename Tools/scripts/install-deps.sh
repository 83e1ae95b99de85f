#!/usr/bin/env bash
# Installs the Debian packages Downpour builds and tests against, when any is missing.
# As root it runs apt-get itself; otherwise it prints the exact command to run and fails.
set -euo pipefail

# protobuf-compiler and python3-protobuf (Google's C++ runtime under Python) are the references the
# codec's conformance and differential tests compare against. python3-venv holds the schema validator
# of the Kubernetes manifests (deploy/test/validate-manifests.sh).
packages=(libuv1-dev libssl-dev libopenblas-dev zlib1g-dev pkg-config protobuf-compiler python3-protobuf python3-venv)
missing=()
for package in "${packages[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q 'install ok installed'; then
        missing+=("$package")
    fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -eq 0 ]; then
    echo "Installing ${missing[*]} ..." >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
    echo "Downpour needs these Debian packages: ${missing[*]}" >&2
    echo "Run:  sudo apt-get update && sudo apt-get install -y ${missing[*]}" >&2
    exit 1
fi
