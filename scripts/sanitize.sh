#!/usr/bin/env bash
# Builds the whole project with AddressSanitizer + UndefinedBehaviorSanitizer (build-asan) and runs the test
# suite there (opt-in labels excluded, as scripts/test.sh); then a ThreadSanitizer build (build-tsan) of the
# event loop / worker pool / poller / HTTP tests only, run under TSan. Not part of CI (slow: a full extra build).
#   SANITIZE_ONLY=asan|tsan   run one half
#   CTEST_ARGS                extra ctest arguments for the ASan run (e.g. "-R 'http|ima'")
set -euo pipefail
cd "$(dirname "$0")/.."
JOBS=${JOBS:-$(nproc)}
ONLY=${SANITIZE_ONLY:-}
rc=0
t0=$(date +%s)

if [ -z "$ONLY" ] || [ "$ONLY" = asan ]; then
  SAN="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer"
  cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_FLAGS="-O1 -g $SAN" \
    -DCMAKE_EXE_LINKER_FLAGS="$SAN" -DKL_BUILD_BENCH=OFF >/dev/null
  cmake --build build-asan -j"$JOBS"
  t1=$(date +%s)
  echo "sanitize: ASan+UBSan build took $((t1 - t0)) s"
  # detect_leaks: the services' children inherit ASAN_OPTIONS too, so leaks in the daemons are reported at exit.
  export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:halt_on_error=1
  export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
  (cd build-asan && eval ctest --output-on-failure -j"$JOBS" -LE "'fuzz|soak|manual'" --timeout 1200 ${CTEST_ARGS:-}) || rc=1
  unset ASAN_OPTIONS UBSAN_OPTIONS
  echo "sanitize: ASan+UBSan tests took $(( $(date +%s) - t1 )) s (rc=$rc)"
fi

if [ -z "$ONLY" ] || [ "$ONLY" = tsan ]; then
  t2=$(date +%s)
  TSAN="-fsanitize=thread -fno-omit-frame-pointer"
  cmake -S . -B build-tsan -G Ninja -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_FLAGS="-O1 -g $TSAN" \
    -DCMAKE_EXE_LINKER_FLAGS="$TSAN" -DKL_BUILD_BENCH=OFF >/dev/null
  # Only what exercises threads: the event loop / worker pool and async client (test_loop), the poller
  # (itest_verifier needs the daemons) and the HTTP server (test_http).
  cmake --build build-tsan -j"$JOBS" --target test_loop test_http itest_verifier keylime_registrar keylime_verifier
  export TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1
  (cd build-tsan && ctest --output-on-failure -j1 -R '^(loop|http): |^verifier: poller' --timeout 1200) || rc=1
  unset TSAN_OPTIONS
  echo "sanitize: TSan build+tests took $(( $(date +%s) - t2 )) s"
fi
echo "sanitize: total $(( $(date +%s) - t0 )) s, rc=$rc"
exit $rc
