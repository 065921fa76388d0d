#!/usr/bin/env bash
# Write every command's outputs for fixed seeds into DIR, to compare two versions byte for byte:
#
#   PYTHONPATH=$PWD bash bench/outputs_fingerprint.sh /tmp/after
#   diff -r /tmp/before /tmp/after      # only run/metrics.jsonl and run/trainer.safetensors differ
#
# The files are those /work/golden_make.sh writes (the reference made before the restructure of
# issue 12), plus each command's terminal output in DIR/stdout/ (train's is left out: it prints
# timings). metrics.jsonl and trainer.safetensors hold wall-clock times and differ run to run.
set -euo pipefail
out=$1; rm -rf "$out"; mkdir -p "$out/stdout"
r="python3 -m rnn_dissect"
s=$out/stdout
$r nn --out $out/nn >$s/nn.txt
$r nn --x -0.5,1.2,-2.0 --out $out/nn-off >$s/nn-off.txt
$r nn --sizes 3:4:1 --out $out/nn341 >$s/nn341.txt
$r nn --sizes 3:4:2 --seed 4 --json >$s/nn342.json
$r rnn --out $out/rnn >$s/rnn.txt
$r rnn --cell lstm --layers 2 --text "hello world" --out $out/lstm >$s/lstm.txt
$r rnn --cell gru --truncate 3 --text "hello world" --out $out/gru >$s/gru.txt
$r rnn --text "hello world" --hidden 8 --clip 0.5 --optimizer adagrad --json --out $out/rnn-json >$s/rnn-json.json 2>$s/rnn-json.err
$r flow --out $out/flow >$s/flow.txt
$r train --out $out/run --steps 30 --hidden 32 --layers 1 --seq-len 16 --batch 4 --snapshot-every 10 --sample-every 10 >/dev/null 2>&1
$r sample $out/run --prime "def " --length 100 > $out/sample.txt
$r dissect $out/run --text "def f(x):" --out $out/trained >$s/trained.txt
$r neurons $out/run --out $out/neurons --max-chars 20000 >$s/neurons.txt 2>$s/neurons.err
$r neurons $out/run --out $out/neurons-l0 --max-chars 3000 --layer 0 --unit 0:c:3 --regex paren='\(' >$s/neurons-l0.txt 2>$s/neurons-l0.err
# user errors: one line each, exit 2
for cmd in "rnn --text h" "rnn --optimizer adam" "nn --x 1,a" "flow --hidden 0" \
           "neurons $out/run --out $out/n-bad --unit 9:h:0" "dissect $out/run --text hello --lr -1"; do
  set +e; $r $cmd >/dev/null 2>>$s/errors.txt; echo "exit $?" >>$s/errors.txt; set -e
done
sed -i "s#$out#OUT#g" $s/*  # the terminal names the output directory: make it the same in both
