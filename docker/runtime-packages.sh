#!/usr/bin/env bash
# Prints the Debian packages providing the shared libraries the given binaries load (for the slim image).
set -euo pipefail
for bin in "$@"; do
  ldd "$bin" | awk '/=> \//{print $3}'
done | sort -u | while read -r lib; do
  # dpkg knows the file under /lib or /usr/lib (merged /usr): try the path as resolved, then the other one.
  dpkg -S "$lib" 2>/dev/null || dpkg -S "$(readlink -f "$lib")" 2>/dev/null || dpkg -S "${lib#/usr}" 2>/dev/null || dpkg -S "/usr$lib" 2>/dev/null \
    || { echo "runtime-packages: no package owns $lib" >&2; exit 1; }
done | cut -d: -f1 | sort -u | grep -v -e '^libc6$' -e '^libgcc-s1$' -e '^libstdc++6$' | tr '\n' ' '
echo
