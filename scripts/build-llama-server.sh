#!/usr/bin/env bash
# Builds llama.cpp's `llama-server` and `llama-bench` (CPU only) from the llama.cpp release that
# node-llama-cpp bundles (node_modules/node-llama-cpp/llama/gitRelease.bundle), so `npm run bench`
# compares edgellm with llama-server on the very same llama.cpp (with node-llama-cpp's fixes, without
# edgellm's performance patches: see FIXES below). Offline; output under
# vendor-build/ (gitignored: never commit llama.cpp source or binaries built from it).
#
# CPU variants: like the prebuilt node-llama-cpp addon (its CI build): GGML_NATIVE=OFF,
# GGML_BACKEND_DL=ON, GGML_CPU_ALL_VARIANTS=ON, GGML_OPENMP=OFF. ggml then picks the best
# libggml-cpu-<variant>.so at run time (zen4 / icelake / sapphirerapids / haswell ...). A plain
# GGML_NATIVE=OFF build without the variants is generic AVX2 and 2-3x slower: avoid it.
#
# AMX: GCC 12 (Debian 12) drops the tile-config stores before `_tile_loadconfig` in
# ggml-cpu/amx/mmq.cpp, so the AMX code dies with SIGILL on the first q8_0/q4_0 prompt batch on
# an AMX CPU. The sapphirerapids variant is built with AMX whatever the build host is, so the
# compiler barrier is always applied to the build copy of the source (harmless elsewhere).
#
# Building all 14 x86 variants is ~450 compile steps (40-60 min on 2 shared cores). LLAMA_CPU=host
# builds one CPU backend with the ISA flags of the variant ggml would pick on this CPU at run time
# (still a dynamically loaded libggml-cpu.so), ~200 steps: what the benchmark needs, not portable.
#
# Usage: scripts/build-llama-server.sh        (idempotent: does nothing when up to date)
#   LLAMA_CPU=all-variants | host | native   (default all-variants; `native` is -march=native)
#   JOBS=2            parallel compile jobs (default 2)
#   NICE=15           niceness of the compile (default 15: the machine is shared)
#   FORCE=1           rebuild even when up to date
#   LLAMA_BUILD_DIR   output folder (default vendor-build/llama.cpp)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
NLC_LLAMA="$ROOT/node_modules/node-llama-cpp/llama"
BUNDLE="$NLC_LLAMA/gitRelease.bundle"
OUT="${LLAMA_BUILD_DIR:-$ROOT/vendor-build/llama.cpp}"
SRC="$OUT/src"
BUILD="$OUT/build"
JOBS="${JOBS:-2}"
NICE="${NICE:-15}"
LLAMA_CPU="${LLAMA_CPU:-all-variants}"

[[ -f "$BUNDLE" ]] || { echo "build-llama-server: $BUNDLE not found (run npm ci first)" >&2; exit 1; }
for tool in git cmake ninja g++; do
  command -v "$tool" >/dev/null || { echo "build-llama-server: '$tool' is required (apt-get install -y cmake ninja-build g++ git)" >&2; exit 1; }
done

TAG="$(node -p "require('$NLC_LLAMA/llama.cpp.info.json').tag")"
HEAD_COMMIT="$(git bundle list-heads "$BUNDLE" | awk '$2=="HEAD"{print $1}')"

CMAKE_ARGS=(
  -G Ninja
  -DCMAKE_BUILD_TYPE=Release
  -DBUILD_SHARED_LIBS=ON
  -DGGML_OPENMP=OFF
  -DGGML_CCACHE=OFF
  -DLLAMA_CURL=OFF
  -DLLAMA_OPENSSL=OFF
  -DLLAMA_BUILD_TESTS=OFF
  -DLLAMA_BUILD_EXAMPLES=OFF
  -DLLAMA_BUILD_TOOLS=ON
  -DLLAMA_BUILD_SERVER=ON
  -DLLAMA_BUILD_UI=OFF
  -DLLAMA_USE_PREBUILT_UI=OFF
)
# ggml's x86 variant table (ggml/src/CMakeLists.txt, `if (GGML_CPU_ALL_VARIANTS)`), best last;
# each feature as ggml names it and as /proc/cpuinfo does.
host_variant() {
  local flags; flags=" $(grep -m1 '^flags' /proc/cpuinfo | cut -d: -f2) "
  has() { local f; for f in "$@"; do [[ "$flags" == *" $f "* ]] || return 1; done; }
  local v=x64
  has sse4_2 && v=sse42
  has sse4_2 avx && v=sandybridge
  has sse4_2 avx f16c && v=ivybridge
  has sse4_2 avx f16c fma && v=piledriver
  has sse4_2 avx f16c fma avx2 bmi2 && v=haswell
  has sse4_2 avx f16c fma avx2 bmi2 avx_vnni && v=alderlake
  has sse4_2 avx f16c fma avx2 bmi2 avx512f && v=skylakex
  has sse4_2 avx f16c fma avx2 bmi2 avx512f avx512vbmi && v=cannonlake
  has sse4_2 avx f16c fma avx2 bmi2 avx512f avx512_vnni && v=cascadelake
  has sse4_2 avx f16c fma avx2 bmi2 avx512f avx512vbmi avx512_vnni && v=icelake
  has sse4_2 avx f16c fma avx2 bmi2 avx512f avx512_vnni avx512_bf16 && v=cooperlake
  has sse4_2 avx f16c fma avx2 bmi2 avx512f avx512vbmi avx512_vnni avx512_bf16 && v=zen4
  has sse4_2 avx f16c fma avx2 bmi2 avx512f avx512vbmi avx512_vnni avx512_bf16 amx_tile amx_int8 && v=sapphirerapids
  echo "$v"
}
variant_features() {
  case "$1" in
    x64) echo "" ;;
    sse42) echo "SSE42" ;;
    sandybridge) echo "SSE42 AVX" ;;
    ivybridge) echo "SSE42 AVX F16C" ;;
    piledriver) echo "SSE42 AVX F16C FMA" ;;
    haswell) echo "SSE42 AVX F16C FMA AVX2 BMI2" ;;
    alderlake) echo "SSE42 AVX F16C FMA AVX2 BMI2 AVX_VNNI" ;;
    skylakex) echo "SSE42 AVX F16C FMA AVX2 BMI2 AVX512" ;;
    cannonlake) echo "SSE42 AVX F16C FMA AVX2 BMI2 AVX512 AVX512_VBMI" ;;
    cascadelake) echo "SSE42 AVX F16C FMA AVX2 BMI2 AVX512 AVX512_VNNI" ;;
    icelake) echo "SSE42 AVX F16C FMA AVX2 BMI2 AVX512 AVX512_VBMI AVX512_VNNI" ;;
    cooperlake) echo "SSE42 AVX F16C FMA AVX2 BMI2 AVX512 AVX512_VNNI AVX512_BF16" ;;
    zen4) echo "SSE42 AVX F16C FMA AVX2 BMI2 AVX512 AVX512_VBMI AVX512_VNNI AVX512_BF16" ;;
    sapphirerapids) echo "SSE42 AVX F16C FMA AVX2 BMI2 AVX512 AVX512_VBMI AVX512_VNNI AVX512_BF16 AMX_TILE AMX_INT8" ;;
  esac
}

case "$LLAMA_CPU" in
  all-variants) CMAKE_ARGS+=(-DGGML_NATIVE=OFF -DGGML_BACKEND_DL=ON -DGGML_CPU_ALL_VARIANTS=ON) ;;
  host)
    VARIANT="$(host_variant)"
    CMAKE_ARGS+=(-DGGML_NATIVE=OFF -DGGML_BACKEND_DL=ON -DGGML_CPU_ALL_VARIANTS=OFF)
    for feat in SSE42 AVX AVX2 BMI2 AVX_VNNI FMA F16C AVX512 AVX512_VBMI AVX512_VNNI AVX512_BF16 AMX_TILE AMX_INT8 AMX_BF16; do
      if [[ " $(variant_features "$VARIANT") " == *" $feat "* ]]; then CMAKE_ARGS+=("-DGGML_$feat=ON"); else CMAKE_ARGS+=("-DGGML_$feat=OFF"); fi
    done
    echo "build-llama-server: host CPU variant: $VARIANT"
    ;;
  native) CMAKE_ARGS+=(-DGGML_NATIVE=ON -DGGML_BACKEND_DL=OFF -DGGML_CPU_ALL_VARIANTS=OFF) ;;
  *) echo "build-llama-server: LLAMA_CPU must be all-variants, host or native" >&2; exit 2 ;;
esac

# node-llama-cpp's source patches (llama/patches/*.diff) that llama-server gets: only the fixes (a
# crash and wrong rows on AMX CPUs, node-llama-cpp's own PR-22566), named here. Every other patch is
# one of edgellm's performance patches and stays out, so that llama-server is the reference as
# llama.cpp ships it; a new patch is left out until it is named a fix.
FIXES=" PR-22566.diff edgellm-amx-tileconfig-barrier.diff edgellm-no-amx-buffer-type.diff "
FIX_PATCHES=()
PERF_PATCH_FILES=()
for diff in "$NLC_LLAMA"/patches/*.diff; do
  [[ -e "$diff" ]] || continue
  if [[ "$FIXES" == *" $(basename "$diff") "* ]]; then FIX_PATCHES+=("$diff"); else PERF_PATCH_FILES+=("$diff"); fi
done

# Everything that decides the binaries: a change of any of it (a source patch included) rebuilds.
PATCHES_SUM="$(cat "${FIX_PATCHES[@]}" /dev/null | sha256sum | cut -c1-16)"
WANT="$(printf '%s\n' "tag=$TAG" "commit=$HEAD_COMMIT" "cpu=$LLAMA_CPU" "amx-barrier=1" "patches=$PATCHES_SUM" "${CMAKE_ARGS[@]}")"
STAMP="$BUILD/.edgellm-build-stamp"
if [[ "${FORCE:-0}" != 1 && -x "$BUILD/bin/llama-server" && -x "$BUILD/bin/llama-bench" && -f "$STAMP" && "$(cat "$STAMP")" == "$WANT" ]]; then
  echo "build-llama-server: up to date ($TAG, $LLAMA_CPU): $BUILD/bin"
  exit 0
fi

started=$SECONDS
mkdir -p "$OUT"
if [[ ! -d "$SRC/.git" || "$(git -C "$SRC" rev-parse HEAD 2>/dev/null)" != "$HEAD_COMMIT" ]]; then
  echo "build-llama-server: cloning llama.cpp $TAG from $BUNDLE"
  rm -rf "$SRC"
  git -c advice.detachedHead=false clone --quiet "$BUNDLE" "$SRC"
  git -C "$SRC" -c advice.detachedHead=false checkout --quiet "$HEAD_COMMIT"
fi

# A performance patch an earlier build applied comes out again.
for diff in "${PERF_PATCH_FILES[@]}"; do
  if git -C "$SRC" apply --check --reverse --ignore-whitespace "$diff" 2>/dev/null; then
    git -C "$SRC" apply --reverse --ignore-whitespace "$diff"
    echo "build-llama-server: removed $(basename "$diff")"
  fi
done
for diff in "${FIX_PATCHES[@]}"; do
  if git -C "$SRC" apply --check --ignore-whitespace "$diff" 2>/dev/null; then
    git -C "$SRC" apply --ignore-whitespace "$diff"
    echo "build-llama-server: applied $(basename "$diff")"
  elif git -C "$SRC" apply --check --reverse --ignore-whitespace "$diff" 2>/dev/null; then
    : # already applied
  else
    echo "build-llama-server: warning: $(basename "$diff") does not apply; building without it" >&2
  fi
done

# The AMX compiler barrier (see the header).
MMQ="$SRC/ggml/src/ggml-cpu/amx/mmq.cpp"
if [[ -f "$MMQ" ]] && ! grep -q 'edgellm: GCC 12 AMX barrier' "$MMQ"; then
  perl -0pi -e 's/^([ \t]*)_tile_loadconfig\(&tc\);/$1__asm__ __volatile__("" : : "r"(&tc) : "memory"); \/\/ edgellm: GCC 12 AMX barrier\n$1_tile_loadconfig(&tc);/mg' "$MMQ"
  grep -q 'edgellm: GCC 12 AMX barrier' "$MMQ" || { echo "build-llama-server: could not apply the AMX barrier to $MMQ" >&2; exit 1; }
  echo "build-llama-server: applied the AMX tile-config compiler barrier"
fi
if grep -qw amx_tile /proc/cpuinfo 2>/dev/null; then
  echo "build-llama-server: this CPU has AMX: the barrier above is what keeps the sapphirerapids/native build from SIGILL"
fi

echo "build-llama-server: configuring ($LLAMA_CPU) in $BUILD"
nice -n "$NICE" cmake -S "$SRC" -B "$BUILD" "${CMAKE_ARGS[@]}" >"$OUT/cmake-configure.log" 2>&1 || {
  tail -40 "$OUT/cmake-configure.log" >&2
  exit 1
}
# CPU backends of an earlier configuration would still be found (and scored) at run time.
rm -f "$BUILD"/bin/libggml-cpu*.so
echo "build-llama-server: compiling llama-server and llama-bench with -j$JOBS at nice $NICE (log: $OUT/cmake-build.log)"
nice -n "$NICE" cmake --build "$BUILD" --target llama-server llama-bench -j "$JOBS" >"$OUT/cmake-build.log" 2>&1 || {
  tail -40 "$OUT/cmake-build.log" >&2
  exit 1
}
printf '%s' "$WANT" >"$STAMP"
echo "build-llama-server: built in $((SECONDS - started)) s: $BUILD/bin/llama-server, $BUILD/bin/llama-bench"
echo "build-llama-server: CPU backends: $(cd "$BUILD/bin" && ls libggml-cpu*.so 2>/dev/null | tr '\n' ' ')"
