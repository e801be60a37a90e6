#!/bin/sh
# Rebuilds zstd.wasm (beside this script, or the file named by $1) from libzstd's own sources,
# reproducibly: the same sources, compiler and flags give the same bytes, whatever the directory
# or the machine (test/compress/zstd-wasm-build.test.ts rebuilds it and compares digests).
#
#   sh src/compress/zstd-wasm/build.sh [OUT]        (as root on Debian 12; installs what it needs)
#
# Sources: libzstd 1.5.7 (BSD licence, facebook/zstd), as vendored in the npm package
# zstd-napi 0.0.13 (deps/zstd/lib), fetched from the npm registry and checked against its
# sha512 below. Compiler: Debian 12's clang 14.0.6 and lld 14 for wasm32-wasi, against
# Debian's wasi-libc (memcpy, memset and malloc; the module imports nothing). Only the
# compressor is built, single-threaded, without assembly: WebAssembly integer code means the
# same on every CPU and engine tier, so the module's output depends on its input alone.
# -O3: libzstd's own build uses it; the module compresses ~1.5x faster than an -Os build.
# -mbulk-memory: libzstd's memcpy and memset (window copies, table resets) become WebAssembly's
# memory.copy and memory.fill, which the engine runs natively, not wasi-libc's byte loops: ~10 %
# less CPU per compressed byte, the same frames (both are exact byte moves; bulk memory is in
# WebAssembly 2.0 and in every Node strata supports). SIMD is left off: it made no frame
# faster here (-msimd128 measured 0-5 % slower).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
out=${1:-$here/zstd.wasm}
package=zstd-napi@0.0.13
# The registry's integrity for it (sha512-ErGF+Ko1…), in hex, for coreutils' sha512sum.
sha512=12b185f8aa353ec6e8a14ea80bfb1cfdd8a258ac156b491dff9024152b3b920e64c1c12e3ad4b33b2df150e69d5d094054d69bf53c6cc5a524de13aaddc8ff94

if ! command -v clang-14 >/dev/null || ! command -v wasm-ld-14 >/dev/null || [ ! -f /usr/lib/wasm32-wasi/libc.a ]; then
  apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y clang-14 lld-14 wasi-libc
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack --silent "$package" >/dev/null)
tarball=$(ls "$work"/*.tgz)
got=$(sha512sum "$tarball" | cut -d' ' -f1)
if [ "$got" != "$sha512" ]; then
  echo "build.sh: $package has sha512 $got, expected $sha512" >&2
  exit 1
fi
tar -xzf "$tarball" -C "$work"
lib=$work/package/deps/zstd/lib
# Relative paths and a fixed order: nothing of the build directory reaches the module.
cd "$lib"
clang-14 --target=wasm32-wasi -nostdinc \
  -isystem /usr/lib/llvm-14/lib/clang/14.0.6/include -isystem /usr/include/wasm32-wasi \
  -O3 -mbulk-memory -DNDEBUG -DZSTD_LEGACY_SUPPORT=0 -DZSTD_DISABLE_ASM -DZSTD_NO_TRACE -DDEBUGLEVEL=0 \
  -I. -Icommon \
  common/debug.c common/entropy_common.c common/error_private.c common/fse_decompress.c \
  common/pool.c common/threading.c common/xxhash.c common/zstd_common.c \
  compress/fse_compress.c compress/hist.c compress/huf_compress.c compress/zstd_compress.c \
  compress/zstd_compress_literals.c compress/zstd_compress_sequences.c \
  compress/zstd_compress_superblock.c compress/zstd_double_fast.c compress/zstd_fast.c \
  compress/zstd_lazy.c compress/zstd_ldm.c compress/zstd_opt.c compress/zstd_preSplit.c \
  -nostartfiles -nodefaultlibs -L/usr/lib/wasm32-wasi -lc -fuse-ld=lld \
  -Wl,--no-entry -Wl,--export=ZSTD_versionNumber -Wl,--export=ZSTD_createCCtx \
  -Wl,--export=ZSTD_compressCCtx -Wl,--export=ZSTD_compressBound -Wl,--export=ZSTD_isError \
  -Wl,--export=malloc -Wl,--export=free \
  -w -o "$work/zstd.wasm"
mv "$work/zstd.wasm" "$out"
echo "wrote $out"
