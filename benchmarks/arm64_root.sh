#!/usr/bin/env bash
# An arm64 Debian root with Python and the runtime's dependencies, where `make portability` runs its
# ARM64 families: debootstrap, finished and used through proot and qemu-aarch64-static. No binfmt
# handler is registered: nothing changes in the host's kernel.
# Needs Debian's debootstrap, proot and qemu-user-static. Usage: benchmarks/arm64_root.sh [ROOT]
set -euo pipefail
root=${1:-.portability/arm64-root}
python=${PYTHON:-.venv/bin/python}
# The same onnxruntime as here: its kernels are what is compared.
onnxruntime_version=$("$python" -c "import onnxruntime; print(onnxruntime.__version__)")
host_ca=${SSL_CERT_FILE:-/etc/ssl/certs/ca-certificates.crt}

# This machine's certificate authorities go in with it (a registry may be reached through a proxy
# that only they trust); its pip settings (local wheel folders, constraints) stay out.
in_root() {
  env DEBOOTSTRAP_DIR=/debootstrap PIP_CERT=/etc/host-ca.crt SSL_CERT_FILE=/etc/host-ca.crt \
    REQUESTS_CA_BUNDLE=/etc/host-ca.crt PIP_FIND_LINKS= PIP_CONSTRAINT= PIP_CONFIG_FILE=/dev/null \
    proot -0 -q qemu-aarch64-static -w / -r "$root" \
    -b /etc/resolv.conf -b /etc/hosts -b "$host_ca:/etc/host-ca.crt" "$@"
}

ready="$root/opt/cgan-venv/ready"  # written last: the root has everything
if [ -e "$ready" ]; then
  echo "$root is ready"
  exit 0
fi
if [ ! -x "$root/usr/bin/apt-get" ] || [ -d "$root/debootstrap" ]; then
  if [ ! -d "$root/debootstrap" ]; then
    mkdir -p "$root"
    debootstrap --arch=arm64 --foreign --variant=minbase bookworm "$root" http://deb.debian.org/debian
  fi
  in_root /debootstrap/debootstrap --second-stage
fi
if [ ! -x "$root/usr/bin/python3" ]; then
  in_root /bin/sh -c "apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
    python3 python3-venv ca-certificates"
fi
[ -x "$root/opt/cgan-venv/bin/pip" ] || in_root /usr/bin/python3 -m venv /opt/cgan-venv
in_root /opt/cgan-venv/bin/pip install --no-cache-dir "onnxruntime==$onnxruntime_version" numpy pillow click tqdm
touch "$ready"
echo "$root is ready"
