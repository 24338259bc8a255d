#!/usr/bin/env bash
# Builds the demo's and benchmark's wasm module into www/pkg: the crate for wasm32 (target dir
# web/target), then wasm-bindgen's JavaScript glue. Needs the wasm32 target and wasm-bindgen-cli
# at the version web/Cargo.lock pins (.ci/run installs both).
set -euo pipefail
cd "$(dirname "$0")"
cargo build --release --lib --target wasm32-unknown-unknown
wasm-bindgen --target web --no-typescript --out-dir www/pkg \
  target/wasm32-unknown-unknown/release/sepconv_web.wasm
echo "built www/pkg; serve web/ (node serve.mjs) and open http://localhost:8000/www/"
