#!/usr/bin/env bash
# Installs the real peer tools berth is tested against, from Debian's packages.
# Idempotent: packages already present are not reinstalled. Needs root (or sudo).
set -euo pipefail
PKGS=(docker.io skopeo umoci tar-split docker-registry busybox-static zstd pigz time jq apache2-utils openssl chromium attr)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-peers: all peers present"
  exit 0
fi
SUDO=""
[ "$(id -u)" = 0 ] || SUDO="sudo"
echo "install-peers: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# docker.io's and docker-registry's maintainer scripts try to start services; there is no init
# system here, so policy-rc.d tells them not to.
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
  $SUDO chmod +x /usr/sbin/policy-rc.d
  trap '$SUDO rm -f /usr/sbin/policy-rc.d' EXIT
fi
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "install-peers: done"
