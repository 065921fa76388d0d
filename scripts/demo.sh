#!/usr/bin/env bash
# Install, then write the tour — the post "Dissecting the RNN" as one page, every figure
# computed on this machine — into ./out/tour (no download, no input file needed): the 3:1:1
# network, min-char-rnn's "hello" through an RNN and an LSTM (the explorer embedded), the four
# questions, and a small LSTM trained on the Python standard library's source for the rest of
# the budget with what its neurons learned. MINUTES (default 3) is the whole tour's budget.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
python3 -m rnn_dissect tour --out out/tour --minutes "${MINUTES:-3}"
