#!/usr/bin/env bash
# Proves docker/Dockerfile without a Docker engine: each stage gets a Debian 12 root filesystem made with
# debootstrap, the stage's instructions (FROM, WORKDIR, ENV, COPY [--from], RUN, USER) are replayed in a chroot,
# then the runtime stage's services are started there as the image would run them (unprivileged user,
# /var/lib/keylime state) and must answer /version; the HEALTHCHECK command must pass and the demo agent
# stage's agent (swtpm + kl_test_agent) must register at the registrar.
# Needs root, network access to the Debian mirror, ~3 GB in $KL_ROOTFS_DIR. Takes 20-40 minutes (full build).
#   KL_ROOTFS_DIR   work directory (default /var/tmp/kl-rootfs); the debootstrap base is cached there
#   KL_ROOTFS_KEEP  1: keep the stage roots afterwards (default: removed, base kept)
#   KL_MIRROR       Debian mirror (default http://deb.debian.org/debian)
set -euo pipefail
SRC=$(cd "$(dirname "$0")/.." && pwd)
WORK=${KL_ROOTFS_DIR:-/var/tmp/kl-rootfs}
MIRROR=${KL_MIRROR:-http://deb.debian.org/debian}
DOCKERFILE=$SRC/docker/Dockerfile
[ "$(id -u)" -eq 0 ] || { echo "rootfs-test: needs root (debootstrap, chroot)" >&2; exit 2; }
command -v debootstrap >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap; }
START=$(date +%s)
log() { echo "[rootfs-test +$(( $(date +%s) - START ))s] $*"; }
mkdir -p "$WORK"

MOUNTS=()
PIDS=()
cleanup() {
  for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done
  # Whatever still runs inside our stage roots (swtpm started by the agent entrypoint).
  for p in /proc/[0-9]*; do
    case "$(readlink "$p/root" 2>/dev/null)" in "$WORK"/stages/*) kill "${p#/proc/}" 2>/dev/null || true ;; esac
  done
  sleep 1
  for ((i=${#MOUNTS[@]}-1; i>=0; i--)); do umount -l "${MOUNTS[$i]}" 2>/dev/null || true; done
  if [ "${KL_ROOTFS_KEEP:-0}" != 1 ]; then rm -rf "$WORK/stages"; fi
}
trap cleanup EXIT

# ---- the Debian 12 base every FROM starts from (debian:12 and debian:12-slim are both this minimal system) ----
BASE=$WORK/base-bookworm
if [ ! -e "$BASE/.complete" ]; then
  log "debootstrap bookworm (minbase) into $BASE"
  rm -rf "$BASE"
  debootstrap --variant=minbase bookworm "$BASE" "$MIRROR" > "$WORK/debootstrap.log" 2>&1 \
    || { tail -20 "$WORK/debootstrap.log"; exit 1; }
  # What Docker's debian images carry: no service starts from package scripts, no docs.
  printf '#!/bin/sh\nexit 101\n' > "$BASE/usr/sbin/policy-rc.d"; chmod +x "$BASE/usr/sbin/policy-rc.d"
  touch "$BASE/.complete"
fi
log "base ready ($(du -shx "$BASE" 2>/dev/null | cut -f1))"

# ---- a tiny Dockerfile interpreter ----
declare -A STAGE_ROOT
STAGE=""; ROOT=""; WORKDIR=/; USER_SPEC=""; declare -a ENVS=()
declare -A STAGE_ENVS STAGE_USER
mount_stage() {
  mkdir -p "$1/dev" "$1/proc"
  mount --bind /dev "$1/dev"; MOUNTS+=("$1/dev")
  mount -t proc proc "$1/proc"; MOUNTS+=("$1/proc")
  cp /etc/resolv.conf "$1/etc/resolv.conf"
}
in_root() {  # in_root ROOT USER CWD ENV... -- command string
  local root=$1 user=$2 cwd=$3; shift 3
  local envs=()
  while [ "$1" != -- ]; do envs+=("$1"); shift; done; shift
  local spec=()
  [ -n "$user" ] && spec=(--userspec="$user")
  # IN_ROOT_EXEC=1 (background services): the job's PID becomes the service's, so kill/wait reach it.
  ${IN_ROOT_EXEC:+exec} chroot "${spec[@]}" "$root" /usr/bin/env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    HOME=/root "${envs[@]}" /bin/sh -c "cd '$cwd' && $*"
}
copy_in() {  # copy_in SRC_ROOT_OR_CONTEXT SRC DEST_ROOT DEST
  local from=$1 src=$2 dst=$4 root=$3
  local target=$root/${dst#/}
  if [ "${dst: -1}" = / ] || [ -d "$target" ]; then mkdir -p "$target"; fi
  if [ "$src" = . ]; then
    # Build context: the source tree without build outputs or VCS data (what .dockerignore drops).
    tar -C "$from" --exclude=./build --exclude='./build-*' --exclude=./.git --exclude=./out -cf - . | tar -C "$target" -xf -
  elif [ -d "$from/${src#/}" ]; then
    mkdir -p "$target"; cp -a "$from/${src#/}/." "$target/"
  else
    mkdir -p "$(dirname "$target")"; cp -a "$from/${src#/}" "$target"
  fi
}
run_instruction() {
  local ins=$1 args=$2
  case "$ins" in
    FROM)
      local image name
      image=$(awk '{print $1}' <<<"$args"); name=$(awk 'toupper($2)=="AS"{print $3}' <<<"$args")
      STAGE=$name; ROOT=$WORK/stages/$name; WORKDIR=/; USER_SPEC=""; ENVS=()
      rm -rf "$ROOT"; mkdir -p "$WORK/stages"
      if [ -n "${STAGE_ROOT[$image]:-}" ]; then
        log "stage $name: from stage $image"
        # Not into the parent's /proc and /dev mounts (--one-file-system); this stage mounts its own.
        cp -a --one-file-system "${STAGE_ROOT[$image]}" "$ROOT"
        read -r -a ENVS <<<"${STAGE_ENVS[$image]}"; USER_SPEC=${STAGE_USER[$image]}
      else
        log "stage $name: from $image (debootstrap base)"
        cp -a "$BASE" "$ROOT"
      fi
      mount_stage "$ROOT"; STAGE_ROOT[$name]=$ROOT ;;
    WORKDIR) WORKDIR=$args; mkdir -p "$ROOT/${WORKDIR#/}" ;;
    ENV)
      # KEY=VALUE pairs (no quoting is used in our Dockerfile).
      for kv in $args; do ENVS+=("$kv"); done
      STAGE_ENVS[$STAGE]="${ENVS[*]}" ;;
    USER)
      USER_SPEC=$args; [ "$USER_SPEC" = root ] && USER_SPEC=""
      [ -n "$USER_SPEC" ] && ! grep -q : <<<"$USER_SPEC" && USER_SPEC=$USER_SPEC:$USER_SPEC
      STAGE_USER[$STAGE]=$USER_SPEC ;;
    COPY)
      local from_root=$SRC
      if [[ $args == --from=* ]]; then
        local f=${args%% *}; f=${f#--from=}; from_root=${STAGE_ROOT[$f]}; args=${args#* }
      fi
      local srcs=($args); local dst=${srcs[-1]}; unset 'srcs[-1]'
      [[ $dst != /* ]] && dst=$WORKDIR/$dst
      for s in "${srcs[@]}"; do copy_in "$from_root" "$s" "$ROOT" "$dst"; done ;;
    RUN)
      log "stage $STAGE: RUN ${args:0:100}"
      local t0=$(date +%s)
      in_root "$ROOT" "$USER_SPEC" "$WORKDIR" "${ENVS[@]}" DEBIAN_FRONTEND=noninteractive -- "$args" \
        > "$WORK/$STAGE-run.log" 2>&1 || { tail -40 "$WORK/$STAGE-run.log"; log "RUN failed in stage $STAGE"; exit 1; }
      log "  done in $(( $(date +%s) - t0 ))s" ;;
    VOLUME|EXPOSE|ENTRYPOINT|HEALTHCHECK|CMD|ARG|LABEL) : ;;  # runtime metadata, checked below
    *) log "unsupported instruction $ins"; exit 1 ;;
  esac
}
# Join continuation lines, drop comments, replay.
while IFS= read -r line; do
  ins=${line%% *}; args=${line#* }
  run_instruction "$ins" "$args"
done < <(sed -e 's/^[[:space:]]*#.*$//' "$DOCKERFILE" | sed -e ':a' -e '/\\$/N; s/\\\n//; ta' | grep -v '^[[:space:]]*$' \
         | sed -e 's/[[:space:]]\+/ /g' -e 's/^ //')

# ---- run the image: the runtime stage as its USER, with its ENV, against loopback-only ports ----
RT=${STAGE_ROOT[runtime]}
read -r -a RT_ENVS <<<"${STAGE_ENVS[runtime]}"
RT_USER=${STAGE_USER[runtime]}
[ -n "$RT_USER" ] || { log "runtime stage has no USER: the image would run as root"; exit 1; }
HC=$(sed -n 's/^[[:space:]]*CMD curl/curl/p' "$DOCKERFILE" | head -1)
VPORT=${KL_ROOTFS_VPORT:-18881}; RPORT=${KL_ROOTFS_RPORT:-18890}; RTLS=${KL_ROOTFS_RTLS:-18891}
OVR=(KEYLIME_VERIFIER_IP=127.0.0.1 KEYLIME_REGISTRAR_IP=127.0.0.1 KEYLIME_VERIFIER_PORT=$VPORT
     KEYLIME_VERIFIER_REGISTRAR_PORT=$RTLS KEYLIME_REGISTRAR_PORT=$RPORT KEYLIME_REGISTRAR_TLS_PORT=$RTLS
     KEYLIME_REGISTRAR_EK_CERT_CHAIN_CHECK=off)
wait_port() { for _ in $(seq 200); do (echo > /dev/tcp/127.0.0.1/$1) 2>/dev/null && return 0; sleep 0.1; done; return 1; }

log "starting keylime_verifier in the runtime root as $RT_USER"
IN_ROOT_EXEC=1 in_root "$RT" "$RT_USER" / "${RT_ENVS[@]}" "${OVR[@]}" -- "exec /usr/bin/keylime_verifier" > "$WORK/verifier.log" 2>&1 &
PIDS+=($!)
wait_port "$VPORT" || { cat "$WORK/verifier.log"; log "verifier did not start"; exit 1; }
log "starting keylime_registrar in the runtime root as $RT_USER"
IN_ROOT_EXEC=1 in_root "$RT" "$RT_USER" / "${RT_ENVS[@]}" "${OVR[@]}" -- "exec /usr/bin/keylime_registrar" > "$WORK/registrar.log" 2>&1 &
PIDS+=($!)
wait_port "$RTLS" || { cat "$WORK/registrar.log"; log "registrar did not start"; exit 1; }

FAIL=0
check() { if "$@"; then log "ok: ${CHECK_NAME}"; else log "FAILED: ${CHECK_NAME}"; FAIL=1; fi; }
CHECK_NAME="verifier answers GET /version"
check in_root "$RT" "$RT_USER" / -- "curl -fsS --cacert /var/lib/keylime/cv_ca/cacert.crt https://127.0.0.1:$VPORT/version | tee /dev/stderr | grep -q current_version"
CHECK_NAME="registrar answers GET /version"
check in_root "$RT" "$RT_USER" / -- "curl -fsS http://127.0.0.1:$RPORT/version | tee /dev/stderr | grep -q current_version"
CHECK_NAME="HEALTHCHECK command passes for the registrar"
check in_root "$RT" "$RT_USER" / "KL_HEALTH_URL=http://127.0.0.1:$RPORT/version" -- "$HC"
CHECK_NAME="HEALTHCHECK command passes for the verifier"
check in_root "$RT" "$RT_USER" / "KL_HEALTH_URL=https://127.0.0.1:$VPORT/version" -- "$HC"
CHECK_NAME="services run unprivileged"
check bash -c "! ps -o user= -C keylime_registrar,keylime_verifier | grep -qx root"
CHECK_NAME="state files are private (keys 0600)"
check bash -c "[ \"\$(stat -c %a $RT/var/lib/keylime/cv_ca/server-private.pem)\" = 600 ]"

if [ -n "${STAGE_ROOT[demo-agent]:-}" ]; then
  AG=${STAGE_ROOT[demo-agent]}
  read -r -a AG_ENVS <<<"${STAGE_ENVS[demo-agent]}"
  mkdir -p "$AG/var/lib/keylime/cv_ca" && cp "$RT/var/lib/keylime/cv_ca/cacert.crt" "$AG/var/lib/keylime/cv_ca/"
  install -d -o "$(chroot "$AG" id -u keylime)" "$AG/home/agent"
  log "starting the demo agent (swtpm + kl_test_agent) in the demo-agent root"
  IN_ROOT_EXEC=1 in_root "$AG" "${STAGE_USER[demo-agent]}" / "${AG_ENVS[@]}" KL_REGISTRAR=127.0.0.1:$RPORT KL_AGENT_PORT=19002 \
    KL_AGENT_STATE=/home/agent KL_CV_CA=/var/lib/keylime/cv_ca/cacert.crt -- \
    "exec /usr/libexec/keylime-cpp/agent-entrypoint.sh" > "$WORK/agent.log" 2>&1 &
  PIDS+=($!)
  CA=/var/lib/keylime/cv_ca
  CHECK_NAME="demo agent registered and activated at the registrar"
  check bash -c "for _ in \$(seq 100); do grep -q '\"activate_status\":200' '$WORK/agent.log' && exit 0; sleep 0.3; done; cat '$WORK/agent.log'; exit 1"
  CHECK_NAME="registrar lists the demo agent over mTLS"
  check in_root "$RT" "$RT_USER" / -- "curl -fsS --cacert $CA/cacert.crt --cert $CA/client-cert.crt --key $CA/client-private.pem https://127.0.0.1:$RTLS/v2.6/agents/ | tee /dev/stderr | grep -q d432fbb3"
fi

CHECK_NAME="SIGTERM stops both services with exit status 0"
stop_ok=1
for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
for p in "${PIDS[@]:0:2}"; do wait "$p" || stop_ok=0; done
PIDS=()
check [ $stop_ok = 1 ]
log "runtime image size: $(du -shx "$RT" 2>/dev/null | cut -f1) (build stage $(du -shx "${STAGE_ROOT[build]}" 2>/dev/null | cut -f1))"
[ $FAIL = 0 ] && log "PASS: Dockerfile recipe builds and runs (total $(( $(date +%s) - START ))s)" || log "FAIL"
exit $FAIL
