#!/usr/bin/env bash
# Installs what the test suite needs, idempotently (a second run on a ready machine takes about a second):
# 1. Debian packages: real OCI clients and servers (skopeo, podman, umoci, docker-registry, containerd),
#    python3-sklearn for the model examples, PostgreSQL 15 and Ceph RGW for the scale-out backends, Debian's
#    chromium for the console's browser tests;
# 2. pinned Go clients built once per machine (scripts/deps/go-tools.sh: oras, crane, regctl, cosign, notation,
#    the OCI conformance suite);
# 3. one pinned Python virtual environment (scripts/deps/python-venv.sh).
# Runs before `npm test` (pretest) and from .ci/run. Without root and apt-get it says what to install.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
need=()
command -v skopeo >/dev/null || need+=(skopeo)
command -v podman >/dev/null || need+=(podman uidmap)
command -v umoci >/dev/null || need+=(umoci)
[ -x /usr/bin/docker-registry ] || need+=(docker-registry)
command -v git >/dev/null || need+=(git)
command -v curl >/dev/null || need+=(curl) # the README's quickstart waits for /readyz with it (test/readme.test.ts)
command -v openssl >/dev/null || need+=(openssl) # TLS tests make their certificates with it
[ -x /usr/lib/postgresql/15/bin/postgres ] || need+=(postgresql)
[ -x /usr/bin/radosgw ] && [ -x /usr/bin/ceph-osd ] || need+=(radosgw ceph-mon ceph-osd ceph-common)
/usr/bin/python3 -c 'import sklearn, joblib, numpy' 2>/dev/null || need+=(python3-sklearn python3-joblib python3-numpy)
command -v containerd >/dev/null && command -v ctr >/dev/null || need+=(containerd)
[ -x /usr/bin/chromium ] || need+=(chromium)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "test-deps: installing ${need[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq && apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  else
    echo "test-deps: missing Debian packages: ${need[*]} (sudo apt-get install ${need[*]})" >&2
    exit 1
  fi
fi
bash "$here/deps/go-tools.sh"
bash "$here/deps/python-venv.sh"
