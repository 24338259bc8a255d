#!/usr/bin/env bash
# Runs on the lent GPU machine (see bundle.sh): the GPU tests, the report (CPU, GPU, the
# kernel choices, the separable blocks both ways) and a PyTorch CUDA peer, on Vulkan. Writes
# at most 8 files to $OUT, as the device tool returns. LOCAL=1 tries it on this machine's own
# adapter (no loader packages unpacked, no NVIDIA driver named) with OUT set by hand.
set -uo pipefail
if [ -z "${LOCAL:-}" ]; then
  for f in .gl/*.deb; do dpkg -x "$f" /; done
  ldconfig
  export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
  export __EGL_VENDOR_LIBRARY_FILENAMES=/usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json
fi
export WGPU_BACKEND=vulkan XDG_RUNTIME_DIR=/tmp/xdg
mkdir -p /tmp/xdg /tmp/bundle "$OUT/report"
tar -xJf .device/bundle.tar.xz -C /tmp/bundle
b=/tmp/bundle
{
  nvidia-smi
  "$b/adapters"
} >"$OUT/env.txt" 2>&1
{
  for t in "$b"/tests/*; do
    echo "== $(basename "$t")"
    timeout 240 "$t" --test-threads=8
  done
  echo "== ignored: an input above 128 MiB"
  timeout 120 "$b/tests/limits" --ignored
} >"$OUT/tests.txt" 2>&1
timeout 150 python3 "$b/torch_peer.py" --layers "$b/layers.json" >"$OUT/torch_cuda.tsv" 2>&1
timeout 240 "$b/report" --peer "$OUT/torch_cuda.tsv" --out "$OUT/report" >"$OUT/report.txt" 2>&1
rm -f "$OUT/report/report.json" "$OUT/report/report.png"
grep -E '^test result|FAILED|panicked' "$OUT/tests.txt" | sort | uniq -c
tail -20 "$OUT/report.txt"
