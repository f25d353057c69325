#!/bin/sh
# Makes sure the Debian packages the build, the example and the tests need
# are installed. As root it installs what is missing with apt-get; otherwise
# it prints the exact command to run and fails.
#   gcc, make, libc6-dev  build the library (C11)
#   zlib1g-dev            gzip-compressed IDX files (the MNIST format)
#   libjansson-dev        Keras model.to_json() architectures (JSON parsing)
#   libstb-dev            reading PNG/JPEG/BMP/PGM images, writing PNG (stb_image)
#   pkg-config            cnn.pc for programs that link libcnn
#   dataset-fashion-mnist the real data set the example and a test train on
set -e
packages="gcc make libc6-dev zlib1g-dev libjansson-dev libstb-dev pkg-config dataset-fashion-mnist"
missing=""
for p in $packages; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing="$missing $p"
    fi
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
    echo "cnn: missing Debian packages:$missing" >&2
    echo "cnn: install them with: sudo apt-get install -y$missing" >&2
    exit 1
fi
echo "cnn: installing missing Debian packages:$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq $missing >/dev/null
