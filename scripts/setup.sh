#!/usr/bin/env bash
# Installs everything pix2pix-ts needs on a fresh Debian machine of this kind, as root:
# oneDNN and a C++ toolchain for the native backend, the npm packages from the lockfile, and the addon.
# `--bench` also installs the PyTorch reference and scikit-image, the benchmarks' anchors.
# Where the native backend cannot be built, training still works: `auto` falls back to WASM.
set -euo pipefail
cd "$(dirname "$0")/.."

# chromium: the browser tests of `serve` drive Debian's own (never a downloaded browser); its
# SwiftShader Vulkan driver is also the software GPU that the WebGPU tests run on, through the Vulkan
# loader libvulkan1 that Dawn (the optional npm package `webgpu`) opens.
# redis-server: the tests of `compare --queue` and `pix2pix worker` start their own on a loopback port
# (nothing else needs Redis: a local `compare` runs without it).
packages=(libdnnl-dev g++ make python3 chromium libvulkan1 redis-server)
# --bench: the PyTorch speed reference and scikit-image's classical denoisers (bench --quality).
[[ " $* " == *" --bench "* ]] && packages+=(python3-torch libopenblas0-openmp python3-skimage)
missing=()
for p in "${packages[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if ((${#missing[@]})); then
  if [[ $(id -u) == 0 ]]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    echo "setup: not root, cannot apt-get install ${missing[*]}; the native backend may be unavailable" >&2
  fi
fi

npm ci --no-audit --no-fund --loglevel=error
# CI must test the native backend, so there a failed addon build fails setup.
if [[ -n ${CI:-} ]]; then npm run --silent build:native -- --strict; else npm run --silent build:native; fi
