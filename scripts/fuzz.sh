#!/usr/bin/env bash
# Builds the libFuzzer targets (tests/fuzz) in a separate clang ASan+UBSan build dir and runs each one for a
# bounded time, seeded from ../shared/testdata (copied/extracted into a temporary corpus at run time).
#   KL_FUZZ_SECONDS  seconds per target (default 20)
#   KL_FUZZ_TARGETS  space-separated subset (names without fuzz_ prefix), default: all
#   FUZZ_BUILD_DIR   build dir (default build-fuzz)
#   KL_FUZZ_NO_BUILD=1  run what is already built (e.g. two runs of disjoint KL_FUZZ_TARGETS in parallel)
# Prints one line per target (executions, crashes) and exits non-zero if any target crashed.
set -euo pipefail
cd "$(dirname "$0")/.."
SRC=$PWD
BUILD=${FUZZ_BUILD_DIR:-build-fuzz}
SECONDS_PER=${KL_FUZZ_SECONDS:-20}
TESTDATA=${KL_TESTDATA:-$SRC/../shared/testdata}
JOBS=${JOBS:-$(nproc)}

if ! command -v clang++ >/dev/null; then  # Debian's clang ships libFuzzer (libclang-rt-dev)
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
  $SUDO apt-get install -y -qq --no-install-recommends clang
fi
t0=$(date +%s)
SAN="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer"
if [ "${KL_FUZZ_NO_BUILD:-0}" != 1 ]; then
cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_COMPILER=clang++ \
  -DCMAKE_CXX_FLAGS="-O1 -g $SAN -fsanitize=fuzzer-no-link" \
  -DCMAKE_EXE_LINKER_FLAGS="$SAN" -DKL_BUILD_FUZZ=ON -DKL_BUILD_BENCH=OFF >/dev/null
cmake --build "$BUILD" -j"$JOBS" --target fuzz_all
fi
t1=$(date +%s)
echo "fuzz: build took $((t1 - t0)) s"

SEEDS=$(mktemp -d)
trap 'rm -rf "$SEEDS"' EXIT
seed() {  # seed <target> <file>...  (missing files are skipped)
  mkdir -p "$SEEDS/$1"
  local t=$1; shift
  for f in "$@"; do [ -f "$f" ] && cp "$f" "$SEEDS/$t/$(echo "$f" | md5sum | cut -c1-12)-$(basename "$f")"; done
  return 0
}
seed_text() { mkdir -p "$SEEDS/$1"; printf '%s' "$2" > "$SEEDS/$1/$(printf '%s' "$2" | md5sum | cut -c1-12)"; }

K=$TESTDATA/keylime
TT=$K/tpm/tpm2-tools-files
seed tpm_public "$TT/ek.pub" "$TT/ak.pub"
seed tpm_attest "$TT/quote.out"
seed tpm_signature "$TT/quotesig.out"
seed pcr_blob "$TT/quotepcr.out"
for q in "$K"/tpm/quotes/*.json; do
  quote=$(jq -r '.quote // empty' "$q")
  [ -n "$quote" ] || continue
  seed_text quote_string "$quote"
  # r<attest>:<sig>:<pcrs>, each base64
  IFS=: read -r a s p <<<"${quote#r}"
  n=$(basename "$q" .json)
  printf '%s' "$a" | base64 -d > "$SEEDS/tpm_attest/$n" 2>/dev/null || true
  printf '%s' "$s" | base64 -d > "$SEEDS/tpm_signature/$n" 2>/dev/null || true
  printf '%s' "$p" | base64 -d > "$SEEDS/pcr_blob/$n" 2>/dev/null || true
  akt=$(jq -r '.ak_tpm // empty' "$q"); [ -n "$akt" ] && printf '%s' "$akt" | base64 -d > "$SEEDS/tpm_public/$n"
done
seed ima_list "$K"/ima/*.txt "$K"/create-runtime-policy/ima-log-*
mkdir -p "$SEEDS/ima_list"; jq -r '.valid[]?, .invalid[]? | if type == "string" then . else tostring end' \
  "$K/ima/ast-entries.json" 2>/dev/null | split -l 1 - "$SEEDS/ima_list/ast-" || true
seed runtime_policy "$K"/ima/*.json "$K"/runtime-policy/*.json "$K"/sign-runtime-policy/*.json \
  "$K"/create-runtime-policy/policy-*
seed legacy_policy "$K"/create-runtime-policy/allowlist-* "$K"/legacy/*.txt "$K"/legacy/test-data/allowlist.json \
  "$K"/ima/runtime-policy-test.json
seed dsse "$K"/runtime-policy/runtime-policy-test-signed*.json
seed event_log "$K"/mb/binary_bios_measurements*
[ -f "$K/mb/mb_log.b64" ] && base64 -d "$K/mb/mb_log.b64" > "$SEEDS/event_log/mb_log" 2>/dev/null || true
seed snp_report $(find "$TESTDATA/snp" -name '*report*.bin' -o -name 'attestation.bin')
seed hcl_report "$TESTDATA"/snp/azure-*/*.bin
seed certificate_field $(find "$TESTDATA/snp" -name '*.pem' | head -20) $(find "$TESTDATA/snp" -name '*.der')
for d in $(find "$TESTDATA/snp" -name '*.der'); do seed_text certificate_field "$(base64 -w0 "$d")"; done
seed strict_json "$TESTDATA"/keylime-db/*.json "$K"/ima/*.json
seed_text ini $'[registrar]\nip = 127.0.0.1\nport = 8890\n# comment\ntls_dir = generate\n[verifier]\nquote_interval = 2\nmeasured_boot_imports = [\n  "a",\n  "b"]\n'
seed_text ini $'[DEFAULT]\nx: 1\n[tenant]\ntrusted_server_ca = ["default"]\n; c\nkey=\n  continued\n'
for p in /version /v2.1/agents/d432fbb3-d2f1-4a97-9ef7-75bd81c00000 /v2.1/agents/abc/activate /v3.0/agents \
         /v2.5/allowlists/policy1 /v2.1/mbpolicies/x /v2.2/verify/identity /v3/ "//v2.1/../agents/%2e%2e"; do
  seed_text route_match "$p"
done
ekpub=$(base64 -w0 "$TT/ek.pub"); akpub=$(base64 -w0 "$TT/ak.pub")
cert=$(find "$TESTDATA/snp" -name 'vcek.der' | head -1)
seed_text registration "{\"ek_tpm\":\"$ekpub\",\"aik_tpm\":\"$akpub\",\"ip\":\"127.0.0.1\",\"port\":9002,\"mtls_cert\":\"disabled\"}"
seed_text registration "{\"ekcert\":\"$(base64 -w0 "$cert")\",\"aik_tpm\":\"$akpub\",\"ip\":\"127.0.0.1\",\"port\":9002,\"mtls_cert\":null,\"iak_tpm\":\"$akpub\",\"iak_attest\":\"AAAA\",\"iak_sign\":\"AAAA\"}"
for t in strict_json; do cp -r "$SEEDS/registration/." "$SEEDS/$t/"; done

targets=${KL_FUZZ_TARGETS:-$(cd "$BUILD/tests/fuzz" && ls fuzz_* 2>/dev/null | grep -v '\.' | sed 's/^fuzz_//')}
fail=0
mkdir -p "$BUILD/fuzz-artifacts"
printf '%-20s %12s %8s %s\n' target executions crashes note
for t in $targets; do
  exe="$BUILD/tests/fuzz/fuzz_$t"
  corpus="$BUILD/fuzz-corpus/$t"
  mkdir -p "$corpus" "$SEEDS/$t"
  log="$BUILD/fuzz-artifacts/$t.log"
  rc=0
  ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=1 UBSAN_OPTIONS=print_stacktrace=1 \
    "$exe" -max_total_time="$SECONDS_PER" -print_final_stats=1 -timeout=10 -rss_limit_mb=2048 \
    -artifact_prefix="$BUILD/fuzz-artifacts/$t-" "$corpus" "$SEEDS/$t" >"$log" 2>&1 || rc=$?
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)
  crashes=0; note=""
  if [ "$rc" -ne 0 ]; then
    crashes=1; fail=1
    note="rc=$rc, see $log: $(grep -m1 -E 'ERROR: |runtime error|SUMMARY' "$log" | cut -c1-120)"
  fi
  printf '%-20s %12s %8s %s\n' "$t" "${execs:-?}" "$crashes" "$note"
done
t2=$(date +%s)
echo "fuzz: runs took $((t2 - t1)) s, total $((t2 - t0)) s"
exit $fail
