#!/usr/bin/env bash
# Installs what building and testing dualmem needs on Debian 12: the Debian
# packages below (when missing) and the npm packages from package-lock.json.
# Safe to run again: it only installs what is absent or out of date.
# With --bench it also installs what `npm run bench` needs to make its
# ViT-B/32-shaped test model (Debian's torch and onnx for Python); the tests
# never need them.
set -euo pipefail
cd "$(dirname "$0")/../.."

debian_packages=(
  cmake g++ clang libclang-rt-14-dev googletest libgtest-dev
  emscripten binaryen
  zlib1g-dev libpng-dev
  chromium fonts-noto-cjk
  python3-numpy python3-pil
)
if [[ "${1:-}" == "--bench" ]]; then
  debian_packages+=(python3-torch python3-onnx)
fi

missing=()
for package in "${debian_packages[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$package" 2>/dev/null || true)
  if [[ "$status" != "install ok installed" ]]; then
    missing+=("$package")
  fi
done

if ((${#missing[@]} > 0)); then
  echo "setup: installing Debian packages: ${missing[*]}"
  if [[ $(id -u) -ne 0 ]]; then
    echo "setup: not root; run: sudo apt-get install ${missing[*]}" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# npm ci only when the lock file changed since the last install.
lock_hash=$(sha256sum package-lock.json | cut -d' ' -f1)
stamp=node_modules/.dualmem-lock-sha256
if [[ ! -f "$stamp" || "$(cat "$stamp")" != "$lock_hash" ]]; then
  echo "setup: installing npm packages from package-lock.json"
  npm ci --no-audit --no-fund
  echo "$lock_hash" >"$stamp"
fi
