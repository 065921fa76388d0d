#!/usr/bin/env bash
# Install, then dissect the classic examples into ./out (no download, no input file needed).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
python3 -m rnn_dissect nn --out out/nn
echo "open out/nn/walkthrough.html and out/nn/graph.svg"
