#!/usr/bin/env bash
# Regenerates data/imagenet1k_classes.txt: the 1,000 ImageNet-1k class names in the order of
# the class indices, from the PyPI package timm 1.0.31 (Apache-2.0): its
# timm/data/_info/imagenet_synsets.txt (the synsets in class order) and
# imagenet_synset_to_lemma.txt (WordNet lemmas). Needs pip, unzip and python3.
set -euo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pip download --quiet --no-deps timm==1.0.31 -d "$tmp"
unzip -q -o "$tmp"/timm-1.0.31-*.whl 'timm/data/_info/imagenet_synsets.txt' \
  'timm/data/_info/imagenet_synset_to_lemma.txt' -d "$tmp"
python3 - "$tmp/timm/data/_info" > data/imagenet1k_classes.txt <<'PY'
import sys
d = sys.argv[1]
synsets = open(f"{d}/imagenet_synsets.txt").read().split()
lemma = dict(l.rstrip("\n").split("\t", 1) for l in open(f"{d}/imagenet_synset_to_lemma.txt"))
assert len(synsets) == 1000
print("# ImageNet-1k class names, one per line in class-index order (line 1 after these comments")
print("# is class 0), with their WordNet synset. Source: PyPI package timm 1.0.31 (Apache-2.0),")
print("# timm/data/_info/imagenet_synsets.txt and imagenet_synset_to_lemma.txt.")
print("# Regenerate with scripts/imagenet-classes.sh.")
for s in synsets:
    print(f"{s}\t{lemma[s]}")
PY
