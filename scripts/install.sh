#!/usr/bin/env bash
# Install rnn-dissect and what it needs on a fresh Debian machine (run as root).
#   bash scripts/install.sh          # the package with oneMKL (fast training) + Graphviz
#   bash scripts/install.sh --test   # also the test tools, torch (CPU, pinned) and Chromium
set -euo pipefail
cd "$(dirname "$0")/.."

apt_pkgs=()
command -v dot >/dev/null 2>&1 || apt_pkgs+=(graphviz)
if [[ "${1:-}" == "--test" ]]; then
  [[ -x /usr/bin/chromium ]] || apt_pkgs+=(chromium)
fi
if ((${#apt_pkgs[@]})); then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${apt_pkgs[@]}" >/dev/null
fi

extra="[mkl]"
[[ "${1:-}" == "--test" ]] && extra="[test]"  # test includes mkl
python3 -m pip install -q -e ".${extra}"
