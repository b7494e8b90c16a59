#!/usr/bin/env bash
# Demo agent container: provisions a software TPM with an EK certificate from a local CA, starts swtpm,
# then serves the agent API with kl_test_agent and registers it at the registrar.
# Environment: KL_REGISTRAR (host:port, default registrar:8890), KL_AGENT_UUID, KL_AGENT_PORT (9002),
# KL_AGENT_ADDRESS (listen + contact address the verifier reaches this container at), KL_CV_CA (verifier CA for mTLS).
set -euo pipefail
STATE=${KL_AGENT_STATE:-/var/lib/keylime/agent}
SW=$STATE/swtpm
mkdir -p "$SW/ca" "$SW/state"
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
if [ ! -e "$SW/state/tpm2-00.permall" ]; then
  XDG_CONFIG_HOME=$SW swtpm_setup --tpm2 --tpmstate "$SW/state" --config "$SW/swtpm_setup.conf" \
    --pcr-banks sha1,sha256 --create-ek-cert --create-platform-cert --lock-nvram --overwrite > "$SW/setup.log"
fi
# The registrar's tpm_cert_store must hold this issuer for ek_cert_chain_check = enforce (shared volume).
if [ -n "${KL_TPM_CERT_STORE:-}" ]; then
  mkdir -p "$KL_TPM_CERT_STORE"
  cp "$SW/ca/issuercert.pem" "$KL_TPM_CERT_STORE/swtpm-localca-issuer.pem"
  cp "$SW/ca/swtpm-localca-rootca-cert.pem" "$KL_TPM_CERT_STORE/swtpm-localca-root.pem"
fi
swtpm socket --tpm2 --tpmstate dir="$SW/state" --server type=tcp,port=2321,bindaddr=127.0.0.1 \
  --ctrl type=tcp,port=2322,bindaddr=127.0.0.1 --flags not-need-init,startup-clear &
for _ in $(seq 50); do (echo > /dev/tcp/127.0.0.1/2321) 2>/dev/null && break; sleep 0.1; done
CA_ARGS=(--no-mtls)
[ -n "${KL_CV_CA:-}" ] && CA_ARGS=(--ca "$KL_CV_CA")
exec /usr/libexec/keylime-cpp/kl_test_agent serve --uuid "${KL_AGENT_UUID:-d432fbb3-d2f1-4a97-9ef7-75bd81c00000}" \
  --port "${KL_AGENT_PORT:-9002}" --address "${KL_AGENT_ADDRESS:-127.0.0.1}" --tcti "swtpm:host=127.0.0.1,port=2321" "${CA_ARGS[@]}" \
  --registrar "${KL_REGISTRAR:-registrar:8890}" --register
