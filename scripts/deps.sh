#!/bin/sh
# Makes sure the Debian packages the build, the example and the tests need
# are installed. As root it installs what is missing with apt-get; otherwise
# it prints the exact command to run and fails.
#   gcc, make, libc6-dev  build the library (C11)
#   zlib1g-dev            gzip-compressed IDX files (the MNIST format)
#   libjansson-dev        Keras model.to_json() architectures (JSON parsing)
#   libstb-dev            reading BMP/GIF/PGM/PPM/TGA images, writing PNG (stb_image)
#   libjpeg62-turbo-dev   reading JPEG images (libjpeg-turbo: DCT scaling, CMYK, progressive)
#   libpng-dev            reading PNG images (libpng 1.6: every bit depth, palette, interlace)
#   libhdf5-dev           Keras .h5 model files and the weights inside .keras files
#   libzip-dev            Keras 3 .keras files (zip archives)
#   python3-h5py          the tests check exported Keras files against Keras's layout
#   pkg-config            cnn.pc for programs that link libcnn
#   dataset-fashion-mnist the real data set the example and a test train on
#   python3               writes the small data sets of the command-line tests
#   openmpi-bin, libopenmpi-dev   data-parallel training over MPI: mpicc builds
#                         libcnn_mpi.a and cnn-mpi, mpirun runs tests/test_mpi.sh
#                         (the build and the other tests do without them)
# With --ci, also what `sh scripts/test.sh --ci` needs:
#   valgrind              the short training run under memcheck
#   python3-skimage       its sample PNGs, which test_image_photos decodes (CI may skip nothing)
# With --fuzz, also what `make fuzz` needs:
#   clang, libclang-rt-14-dev   libFuzzer and the sanitizer runtimes
set -e
packages="gcc make libc6-dev zlib1g-dev libjansson-dev libstb-dev libjpeg62-turbo-dev libpng-dev libhdf5-dev libzip-dev python3-h5py pkg-config dataset-fashion-mnist"
packages="$packages python3"
packages="$packages openmpi-bin libopenmpi-dev"
case "${1:-}" in
--ci) packages="$packages valgrind python3-skimage" ;;
--fuzz) packages="$packages clang libclang-rt-14-dev" ;;
esac
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
