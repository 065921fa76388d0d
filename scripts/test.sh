#!/usr/bin/env bash
# The whole test suite on a fresh machine: install everything, lint, type-check, test.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh --test
python3 -m ruff check rnn_dissect tests bench
python3 -m mypy rnn_dissect
set +e
python3 -m pytest "$@"
rc=$?
set -e
# pytest exits 5 when it collected no tests: that is a failure of the suite, not a pass.
if [[ $rc -eq 5 ]]; then echo "no tests collected" >&2; exit 1; fi
exit $rc
