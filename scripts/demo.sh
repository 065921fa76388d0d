#!/usr/bin/env bash
# Install, then run the tour on built-in data into ./out (no download, no input file needed):
# dissect the 3:1:1 net and min-char-rnn's "hello" RNN, train a char model on the Python
# standard library's source for a few minutes, sample from it, and find what its neurons track.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
rnn=(python3 -m rnn_dissect)
"${rnn[@]}" nn --out out/nn
"${rnn[@]}" rnn --out out/rnn
"${rnn[@]}" train --out out/run --minutes "${MINUTES:-5}" --force
"${rnn[@]}" sample out/run --prime "def " --length 300
"${rnn[@]}" neurons out/run --out out/neurons
echo "open out/nn/walkthrough.html, out/rnn/walkthrough.html and out/neurons/ in a browser"
