#!/usr/bin/env bash
# Build Paddle Lite's armv8 light-API runtime (tiny_publish) and cross-compile the C++ face
# detector against it, on an x86 Linux host.
#
#   bash deploy/lite/build_arm.sh [PADDLE_LITE_SRC]
#
# PADDLE_LITE_SRC: a Paddle-Lite source tree at the release of the `opt` that writes our .nb
# files (paddlelite 2.13rc0 -> tag v2.13-rc; e.g. `git archive v2.13-rc | tar -x -C DIR`).
# It is never copied into this repository. Without it, the runtime already built in the
# output folder is reused (an error if there is none for this kernel list). Output, in
# $PADDLEFACE_ARM_BUILD (default $PADDLEFACE_HOME/arm-build, PADDLEFACE_HOME defaulting to
# ~/.cache/paddleface):
#   paddle-lite-src         a symbolic link to PADDLE_LITE_SRC
#   paddle-lite-src-armv8/  Lite's cmake build; its inference_lite_lib.armlinux.armv8/cxx is
#                           the published library (include/, lib/libpaddle_light_api_shared.so)
#   bin/face_detect_lite    the detector (aarch64), with libpaddle_light_api_shared.so beside it
# A rerun reuses a finished library build (a stamp records the version and the kernel list)
# and only recompiles the detector.
#
# Needs: cmake, make, python3, aarch64-linux-gnu-g++ (Debian: g++-aarch64-linux-gnu). To run
# the result on x86: qemu-aarch64-static -L /usr/aarch64-linux-gnu BUILD/bin/face_detect_lite.
# Environment: PADDLEFACE_BUILD_JOBS (default 2), PADDLEFACE_LITE_TAG (default v2.13-rc: the
# version string compiled into the runtime, which must equal the one opt writes into every .nb).
set -euo pipefail

if [ $# -gt 1 ] || { [ $# -eq 1 ] && [ ! -f "$1/lite/tools/build_linux.sh" ]; }; then
    echo "usage: bash deploy/lite/build_arm.sh [PADDLE_LITE_SRC]  (a Paddle-Lite source tree," \
         "e.g. the v2.13-rc tag; got '${1:-}')" >&2
    exit 2
fi
SRC=${1:+$(cd "$1" && pwd)}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
BUILD=${PADDLEFACE_ARM_BUILD:-${PADDLEFACE_HOME:-$HOME/.cache/paddleface}/arm-build}
JOBS=${PADDLEFACE_BUILD_JOBS:-2}
TAG=${PADDLEFACE_LITE_TAG:-v2.13-rc}
for tool in ${SRC:+cmake make python3 aarch64-linux-gnu-gcc} aarch64-linux-gnu-g++; do
    command -v "$tool" >/dev/null || { echo "build_arm.sh: $tool is not installed" >&2; exit 2; }
done
# Lite's cmake takes the compilers from CC and CXX, as absolute paths
CC=$(command -v aarch64-linux-gnu-gcc)
CXX=$(command -v aarch64-linux-gnu-g++)
export CC CXX
mkdir -p "$BUILD"
BUILD=$(cd "$BUILD" && pwd)
# Lite's cmake takes a source file for one of its own when the source tree's path occurs in the
# file's path, and prefixes every other one with the current source folder; the stripped
# kernels are generated in the build folder, so the build folder's path must contain the
# source tree's: the tree is reached through a link whose path begins the build folder's.
LINK="$BUILD/paddle-lite-src"
OBJ="$BUILD/paddle-lite-src-armv8"
[ -z "$SRC" ] || ln -sfn "$SRC" "$LINK"
LIB="$OBJ/inference_lite_lib.armlinux.armv8/cxx"

# --with_strip: only the kernels of deploy/lite/arm_kernels.txt, in the four list files opt
# would write next to a model (Lite's cmake reads them from LITE_OPTMODEL_DIR).
TAILOR="$BUILD/tailoring"
mkdir -p "$TAILOR"
grep -v '^#' "$HERE/arm_kernels.txt" | awk -v d="$TAILOR" 'NF == 3 {
    print $1 > (d "/.tailored_kernels_list"); print $2 > (d "/.tailored_kernels_source_list")}'
grep -v '^#' "$HERE/arm_kernels.txt" | awk -v d="$TAILOR" 'NF == 3 {split($1, k, ",")
    if (!(k[1] in seen)) {seen[k[1]] = 1; print k[1] > (d "/.tailored_ops_list")
        print $3 > (d "/.tailored_ops_source_list")}}'

CONFIG="tag=$TAG kernels=$(grep -v '^#' "$HERE/arm_kernels.txt" | md5sum | cut -c1-32)"
STAMP="$OBJ/.paddleface_stamp"
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$CONFIG" ] \
        && [ -f "$LIB/lib/libpaddle_light_api_shared.so" ]; then
    echo "build_arm.sh: reusing the Lite runtime in $LIB"
elif [ -z "$SRC" ]; then
    echo "build_arm.sh: no Lite runtime built for this version and kernel list in $OBJ;" \
         "pass the Paddle-Lite source tree to build it" >&2
    exit 2
else
    echo "build_arm.sh: building Paddle Lite $TAG (armv8, tiny_publish, stripped) in $OBJ"
    start=$(date +%s)
    rm -rf "$OBJ"
    mkdir -p "$OBJ/lite/gen_code" "$OBJ/lite/tools/debug"
    # what build_linux.sh's prepare_workspace does; its generated op/kernel headers live in the
    # source tree and must not survive from another configuration
    touch "$OBJ/lite/gen_code/__generated_code__.cc"
    cp "$SRC/lite/tools/debug/analysis_tool.py" "$OBJ/lite/tools/debug/"
    rm -f "$SRC/lite/api/paddle_use_ops.h" "$SRC/lite/api/paddle_use_kernels.h"
    # The options of `lite/tools/build_linux.sh --arch=armv8 --with_strip=ON --with_extra=ON
    # --with_exception=ON` (that script always builds inside the source tree and deletes the
    # previous build). The version comes from PADDLE_LITE_TAG: a source tree without .git has
    # none, and the runtime refuses .nb files from an opt of another version.
    (cd "$OBJ" && cmake "$LINK" \
        -DCMAKE_BUILD_TYPE=Release -DWITH_MKLDNN=OFF -DWITH_TESTING=OFF \
        -DLITE_WITH_ARM=ON -DLITE_WITH_X86=OFF -DWITH_AVX=OFF \
        -DARM_TARGET_ARCH_ABI=armv8 -DARM_TARGET_OS=armlinux -DARM_TARGET_LANG=gcc \
        -DLITE_ON_TINY_PUBLISH=ON -DLITE_WITH_PYTHON=OFF -DLITE_WITH_STATIC_LIB=OFF \
        -DLITE_WITH_CV=OFF -DLITE_WITH_LOG=ON -DLITE_WITH_EXCEPTION=ON \
        -DLITE_BUILD_EXTRA=ON -DLITE_BUILD_TAILOR=ON -DLITE_OPTMODEL_DIR="$TAILOR" \
        -DWITH_ARM_DOTPROD=ON -DLITE_WITH_ARM82_FP16=OFF \
        -DLITE_WITH_CODE_META_INFO=OFF -DPADDLE_LITE_TAG="$TAG" \
        -DPYTHON_EXECUTABLE="$(command -v python3)")
    (cd "$OBJ" && make publish_inference -j"$JOBS")
    echo "$CONFIG" > "$STAMP"
    echo "build_arm.sh: Lite runtime built in $(( ($(date +%s) - start) / 60 )) min;" \
         "$(du -h "$LIB/lib/libpaddle_light_api_shared.so" | cut -f1) libpaddle_light_api_shared.so"
fi

mkdir -p "$BUILD/bin"
# replaced, never overwritten in place: a detector running meanwhile keeps its mapped copy
LIBFILE="$LIB/lib/libpaddle_light_api_shared.so"
if ! cmp -s "$LIBFILE" "$BUILD/bin/libpaddle_light_api_shared.so"; then
    cp "$LIBFILE" "$BUILD/bin/.lib.tmp"
    mv -f "$BUILD/bin/.lib.tmp" "$BUILD/bin/libpaddle_light_api_shared.so"
fi
# -ffp-contract=off: no fused multiply-adds, so the float32 arithmetic is numpy's
"$CXX" -std=c++14 -O2 -ffp-contract=off -Wall -Wextra -DPADDLEFACE_LITE_VERSION="\"$TAG\"" \
    -I"$HERE/cpp" -isystem "$LIB/include" \
    "$HERE/cpp/face_detect_lite.cc" "$HERE/cpp/face_detector.cc" "$HERE/cpp/deploy_config.cc" \
    "$HERE/cpp/image_io.cc" -L"$BUILD/bin" -lpaddle_light_api_shared -Wl,-rpath,'$ORIGIN' \
    -o "$BUILD/bin/.face_detect_lite.tmp"
mv -f "$BUILD/bin/.face_detect_lite.tmp" "$BUILD/bin/face_detect_lite"
echo "build_arm.sh: $BUILD/bin/face_detect_lite ($(stat -c %s "$BUILD/bin/face_detect_lite") bytes)"
