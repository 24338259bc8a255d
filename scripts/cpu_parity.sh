#!/usr/bin/env bash
# One sitting of the CPU parity measurement: ONNX Runtime on the 41 layers and on whole
# networks, then sepconv's report on the fast CPU path, ROUNDS times interleaved (default 2),
# logs under OUT (default target/parity). Needs a copy of ../shared with its peers venv:
#   mkdir -p ~/scratch && cp -r ../shared ~/scratch/ && cd ~/scratch/shared/peers &&
#   python3 -m venv .venv && .venv/bin/pip install -r ort/requirements.txt
# and the ONNX networks: .venv/bin/python <repo>/scripts/peer_networks.py models
# Usage, from the repository root: PEERS=~/scratch/shared/peers bash scripts/cpu_parity.sh [ROUNDS]
# THREADS=1 runs both sides on one thread (RAYON_NUM_THREADS, ONNX Runtime's intra-op
# threads): on a shared, loaded machine its medians move far less than two threads'.
set -euo pipefail
PEERS="${PEERS:-$HOME/scratch/shared/peers}"
ROUNDS="${1:-2}"
THREADS="${THREADS:-2}"
OUT="${OUT:-target/parity}"
PY="$PEERS/.venv/bin/python"
cargo build --release -q --example report
for r in $(seq 1 "$ROUNDS"); do
  mkdir -p "$OUT/run$r"
  peer="$OUT/run$r/ort.txt"
  "$PY" "$PEERS/ort/bench.py" --engine ort --threads "$THREADS" --layers "$PEERS/../bench/layers.json" > "$peer" 2>&1
  for m in mobilenet_v1 mobilenet_v2 effnet_lite0; do
    if [ -f "$PEERS/models/$m.onnx" ]; then
      "$PY" "$PEERS/models/bench_model.py" "$PEERS/models/$m.onnx" --name "$m" --threads "$THREADS" >> "$peer"
    fi
  done
  RAYON_NUM_THREADS="$THREADS" target/release/examples/report --no-gpu --no-check --peer "$peer" --out "$OUT/run$r" \
    2>/dev/null > "$OUT/run$r/report.txt"
  grep -E "^total|^mobilenet|^cpu ÷" "$OUT/run$r/report.txt"
  grep -E "RESULT.ort.(mobilenet|effnet)" "$peer" || true
done
