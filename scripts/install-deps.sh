#!/usr/bin/env bash
# Installs every Debian 12 package the build, the services and the tests need.
set -euo pipefail
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends \
  build-essential cmake ninja-build ccache pkg-config git ca-certificates openssl \
  libboost-dev libboost-system-dev libssl-dev \
  libtss2-dev libtss2-tcti-swtpm0 libtss2-tcti-mssim0 tpm2-tools swtpm swtpm-tools \
  nlohmann-json3-dev libsqlite3-dev sqlite3 libspdlog-dev libfmt-dev catch2 libpcre2-dev \
  libpq-dev postgresql procps zstd xz-utils gzip cpio systemd
