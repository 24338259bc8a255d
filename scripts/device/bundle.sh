#!/usr/bin/env bash
# Prepares a run of the GPU tests and the report on a lent GPU machine (the `device` tool of
# this workplace), which has no Rust toolchain and no network: builds the release test
# binaries and the examples here, strips them into .device/bundle.tar.xz with run.sh's
# helpers and the benchmark layer set, and downloads the Vulkan/EGL loader packages into .gl/.
# Both folders are git-excluded. Then, in one device call:
#   run(command="bash scripts/device/run.sh", carry=[".device", ".gl"], timeout_s=540)
set -euo pipefail
cd "$(dirname "$0")/../.."
for dir in /.device/ /.gl/; do
  grep -qxF "$dir" .git/info/exclude || echo "$dir" >>.git/info/exclude
done
layers=${LAYERS_JSON:-../shared/bench/layers.json}
stage=.device/stage
rm -rf .device && mkdir -p "$stage/tests"

cargo build --release --examples
# Every test target's executable, as cargo reports it.
cargo test --release --no-run --message-format=json 2>/dev/null |
  python3 -c '
import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["profile"]["test"]:
        print(m["target"]["name"], m["executable"])
' | while read -r name exe; do cp "$exe" "$stage/tests/$name"; done
cp target/release/examples/{report,adapters,mobilenet} "$stage/"
strip "$stage"/* "$stage"/tests/* 2>/dev/null || true
cp scripts/device/torch_peer.py "$layers" "$stage/"
tar -cJf .device/bundle.tar.xz -C "$stage" .
rm -rf "$stage"

# The loaders the device machine may lack (its README: /work/.library/device/README.md).
mkdir -p .gl /tmp/amd64/partial
o='-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=/tmp/amd64'
apt-get $o update -qq
(cd .gl && apt-get $o download libvulkan1 libegl1 libglvnd0 libopengl0 libgl1 libglx0 libgles2)
du -sh .device .gl
