#!/usr/bin/env bash
# Runs before `npm test`: the suite talks to real clients and servers from Debian
# (skopeo, podman, umoci, docker-registry, python3-sklearn, PostgreSQL 15, Ceph RGW).
# Installs what is missing when it can (root + apt-get), else says what to install.
set -euo pipefail
need=()
command -v skopeo >/dev/null || need+=(skopeo)
command -v podman >/dev/null || need+=(podman uidmap)
command -v umoci >/dev/null || need+=(umoci)
[ -x /usr/bin/docker-registry ] || need+=(docker-registry)
command -v git >/dev/null || need+=(git)
command -v openssl >/dev/null || need+=(openssl) # test/proxy-tls.test.ts makes its certificate
[ -x /usr/lib/postgresql/15/bin/postgres ] || need+=(postgresql)
[ -x /usr/bin/radosgw ] && [ -x /usr/bin/ceph-osd ] || need+=(radosgw ceph-mon ceph-osd ceph-common)
/usr/bin/python3 -c 'import sklearn, joblib' 2>/dev/null || need+=(python3-sklearn python3-joblib)
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "test-deps: installing ${need[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
else
  echo "test-deps: missing Debian packages: ${need[*]} (sudo apt-get install ${need[*]})" >&2
  exit 1
fi
