#!/usr/bin/env bash
# Sets up, builds and runs the main job on 127.0.0.1: keylime_registrar with generated mTLS
# certificates and SQLite under ./out/keylime, then a demo agent (swtpm + the test agent) registers
# and activates, and the registrar's mTLS admin API lists it. The registrar keeps running in the
# foreground until Ctrl-C (KL_QUICKSTART_EXIT=1 stops after the demo).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
if [ "${KL_SKIP_DEPS:-0}" != 1 ]; then scripts/install-deps.sh; fi
scripts/build.sh
BIN=$ROOT/build
OUT=$ROOT/out
export KEYLIME_DIR=$OUT/keylime
mkdir -p "$KEYLIME_DIR" "$OUT/etc"
chmod 700 "$KEYLIME_DIR"

cat > "$OUT/etc/registrar.conf" <<CONF
[registrar]
version = 2.6
ip = 127.0.0.1
port = 8890
tls_port = 8891
tls_dir = generate
server_key = default
server_cert = default
trusted_client_ca = default
database_url = sqlite
tpm_identity = default
CONF
export KEYLIME_REGISTRAR_CONFIG=$OUT/etc/registrar.conf

# The demo agent's swtpm EK certificate comes from a local CA; trust its issuer.
mkdir -p "$OUT/tpm_cert_store"
cat > "$OUT/etc/tenant.conf" <<CONF
[tenant]
tpm_cert_store = $OUT/tpm_cert_store
CONF
export KEYLIME_TENANT_CONFIG=$OUT/etc/tenant.conf

"$BIN/kl_test_agent" prepare-swtpm --dir "$OUT/swtpm" --cert-store "$OUT/tpm_cert_store" > "$OUT/swtpm.env"
# shellcheck disable=SC1090
. "$OUT/swtpm.env"

"$BIN/keylime_registrar" &
REG_PID=$!
SWTPM_PID=${SWTPM_PID:-}
trap 'kill $REG_PID ${SWTPM_PID} 2>/dev/null || true' EXIT
for _ in $(seq 50); do (echo > /dev/tcp/127.0.0.1/8891) 2>/dev/null && break; sleep 0.1; done

UUID=d432fbb3-d2f1-4a97-9ef7-75bd81c00000
"$BIN/kl_test_agent" register --registrar 127.0.0.1:8890 --uuid "$UUID" --tcti "$KL_SWTPM_TCTI"

CA=$KEYLIME_DIR/reg_ca
echo "--- GET /v2.6/agents over mTLS"
curl -s --cacert "$CA/cacert.crt" --cert "$CA/client-cert.crt" --key "$CA/client-private.pem" \
  https://127.0.0.1:8891/v2.6/agents/; echo
echo "--- GET /v2.6/agents/$UUID"
curl -s --cacert "$CA/cacert.crt" --cert "$CA/client-cert.crt" --key "$CA/client-private.pem" \
  "https://127.0.0.1:8891/v2.6/agents/$UUID" | head -c 400; echo
if [ "${KL_QUICKSTART_EXIT:-0}" = 1 ]; then exit 0; fi
echo "registrar running (pid $REG_PID); Ctrl-C to stop"
wait $REG_PID
