#!/usr/bin/env bash
# Builds the libFuzzer target of the model-file loader (csrc/fuzz/fuzz_model_file.cpp, with
# ASan + UBSan), writes a seed corpus of real small model files (scripts/fuzz_corpus.py) and
# fuzzes for SECONDS (default 60). Exit status 0 when nothing was found; otherwise libFuzzer's
# status, with the crashing input saved under $FW_FUZZ_DIR/artifacts/ (replay it with
# `build/fuzz/fuzz_model_file FILE`). Needs clang with the libFuzzer runtime; as root on
# Debian/Ubuntu it installs them with apt-get when they are missing.
#
# usage: scripts/fuzz.sh [SECONDS] [more libFuzzer flags, e.g. -jobs=2 -workers=2]
# env:   FW_PYTHON (python with framework importable and built; default: python3),
#        FW_FUZZ_BUILD (build dir, default build/fuzz), FW_FUZZ_DIR (corpus and artifacts,
#        default build/fuzz-run), FW_BUILD_JOBS (default 2)
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-60}
shift || true
PY=${FW_PYTHON:-python3}
BUILD=${FW_FUZZ_BUILD:-build/fuzz}
WORK=${FW_FUZZ_DIR:-build/fuzz-run}

libfuzzer_works() {
  local t
  t=$(mktemp -d)
  echo 'extern "C" int LLVMFuzzerTestOneInput(const unsigned char*, unsigned long) { return 0; }' > "$t/t.cpp"
  clang++ -fsanitize=fuzzer,address,undefined "$t/t.cpp" -o "$t/t" >/dev/null 2>&1
  local rc=$?
  rm -rf "$t"
  return $rc
}

if ! command -v clang++ >/dev/null || ! libfuzzer_works; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "fuzz: installing clang (apt-get)"
    apt-get install -y -q clang >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get install -y -q clang >/dev/null; }
    if ! libfuzzer_works; then  # the libFuzzer/sanitizer runtimes are a separate package on Debian 12
      ver=$(clang++ --version | sed -n 's/.*clang version \([0-9]*\).*/\1/p' | head -1)
      apt-get install -y -q "libclang-rt-$ver-dev" >/dev/null
    fi
  fi
  libfuzzer_works || { echo "fuzz: clang++ with libFuzzer (-fsanitize=fuzzer) is needed (Debian: apt-get install clang libclang-rt-14-dev)"; exit 1; }
fi

BLAS_DIR=$("$PY" -c "import scipy_openblas32, os; print(os.path.join(scipy_openblas32.get_lib_dir(), 'cmake', 'openblas'))")
GEN=()
command -v ninja >/dev/null && GEN=(-G Ninja)
cmake -S . -B "$BUILD" "${GEN[@]}" -DFW_FUZZ=ON -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=Release \
  -DOpenBLAS_DIR="$BLAS_DIR" >/dev/null
if ! cmake --build "$BUILD" -j "${FW_BUILD_JOBS:-2}" --target fuzz_model_file >"$BUILD/build.log" 2>&1; then
  grep -E "error|FAILED" "$BUILD/build.log" | head -40
  echo "fuzz: build failed (full log: $BUILD/build.log)"
  exit 1
fi

mkdir -p "$WORK/seeds" "$WORK/corpus" "$WORK/artifacts"
"$PY" scripts/fuzz_corpus.py "$WORK/seeds"
# Seeds are read-only inputs; new coverage goes to corpus/ (kept between runs).
# -timeout: one input may run 10 s; -malloc_limit_mb: no single allocation over 256 MB
# (the target's memory cap is 16 MB per value, so anything larger is a loader bug).
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
# tests/runtime/fuzz_regressions: inputs that crashed before (replayed first, under the sanitizers).
exec "$BUILD/fuzz_model_file" "$WORK/corpus" "$WORK/seeds" tests/runtime/fuzz_regressions -max_total_time="$SECS" -timeout=10 \
  -rss_limit_mb=2048 -malloc_limit_mb=256 -max_len=65536 -print_final_stats=1 \
  -artifact_prefix="$WORK/artifacts/" "$@"
