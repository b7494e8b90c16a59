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
BIN=$ROOT/${BUILD_DIR:-build}
OUT=$ROOT/out
export KEYLIME_DIR=$OUT/keylime
mkdir -p "$KEYLIME_DIR" "$OUT/etc"
# The demo TPM is created afresh each run, so start from an empty demo database.
rm -f "$KEYLIME_DIR"/reg_data.sqlite*
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

# A software TPM with an EK certificate from a private local CA (as a TPM vendor would provision).
SW=$OUT/swtpm
rm -rf "$SW"; mkdir -p "$SW/ca" "$SW/state"
cat > "$SW/localca.conf" <<CONF
statedir = $SW/ca
signingkey = $SW/ca/signkey.pem
issuercert = $SW/ca/issuercert.pem
certserial = $SW/ca/certserial
CONF
printf -- '--platform-manufacturer KeylimeCpp\n--platform-version 2.1\n--platform-model swtpm\n' > "$SW/localca.options"
cat > "$SW/swtpm_setup.conf" <<CONF
create_certs_tool = /usr/bin/swtpm_localca
create_certs_tool_config = $SW/localca.conf
create_certs_tool_options = $SW/localca.options
CONF
XDG_CONFIG_HOME=$SW swtpm_setup --tpm2 --tpmstate "$SW/state" --config "$SW/swtpm_setup.conf" \
  --pcr-banks sha1,sha256 --create-ek-cert --create-platform-cert --lock-nvram --overwrite > "$SW/setup.log"
cp "$SW/ca/issuercert.pem" "$OUT/tpm_cert_store/swtpm-localca-issuer.pem"
cp "$SW/ca/swtpm-localca-rootca-cert.pem" "$OUT/tpm_cert_store/swtpm-localca-root.pem"
swtpm socket --tpm2 --tpmstate dir="$SW/state" --server type=tcp,port=2321,bindaddr=127.0.0.1 \
  --ctrl type=tcp,port=2322,bindaddr=127.0.0.1 --flags not-need-init,startup-clear &
SWTPM_PID=$!
KL_SWTPM_TCTI="swtpm:host=127.0.0.1,port=2321"

"$BIN/keylime_registrar" &
REG_PID=$!
trap 'kill $REG_PID ${SWTPM_PID} 2>/dev/null || true' EXIT
for _ in $(seq 50); do (echo > /dev/tcp/127.0.0.1/8891) 2>/dev/null && break; sleep 0.1; done

UUID=d432fbb3-d2f1-4a97-9ef7-75bd81c00000
"$BIN/tests/kl_test_agent" register --registrar 127.0.0.1:8890 --uuid "$UUID" --tcti "$KL_SWTPM_TCTI"

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
