#!/usr/bin/env bash
# Builds the local control plane (etcd, kube-apiserver, kube-controller-manager,
# kube-scheduler, kwok, toxiproxy) from the pinned Go modules beside this script.
#
#   tests/controlplane/build.sh [OUT_DIR]     (default: target/control-plane/v1.37.2)
#
# The binaries are rebuilt only when a go.mod, go.sum or this script changes: the
# hash of those files is written to OUT_DIR/.stamp. A finished build is also kept in
# ~/.cache/kube-reconcile/control-plane/<hash> so a fresh clone on the same machine
# copies it instead of compiling again. Concurrent callers serialise on a file lock.
set -euo pipefail

K8S_VERSION=v1.37.2
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
out=${1:-$root/target/control-plane/$K8S_VERSION}
mkdir -p "$out"
out=$(cd "$out" && pwd)

if ! command -v go >/dev/null 2>&1; then
  echo "control-plane: Go is not installed. Install Go >= 1.26 (https://go.dev/dl or your" >&2
  echo "package manager), or point KUBE_RECONCILE_ASSETS at a folder holding etcd and" >&2
  echo "kube-apiserver (setup-envtest's KUBEBUILDER_ASSETS layout works too)." >&2
  exit 1
fi

stamp=$(cd "$here" && cat build.sh */go.mod */go.sum | sha256sum | cut -c1-16)
cache=${KUBE_RECONCILE_BUILD_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kube-reconcile/control-plane}/$stamp
binaries=(etcd kube-apiserver kube-controller-manager kube-scheduler kwok toxiproxy)

exec 9>"$out.lock"
flock 9

if [ "$(cat "$out/.stamp" 2>/dev/null)" = "$stamp" ]; then
  echo "control-plane: $out is up to date ($stamp)"
  exit 0
fi
if [ -f "$cache/.stamp" ]; then
  echo "control-plane: copying the cached build $cache"
  cp -a "$cache/." "$out/"
  exit 0
fi

started=$(date +%s)
step() { echo "control-plane: [$(($(date +%s) - started))s] $*"; }

version_flags=""
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  version_flags+=" -X $pkg.gitVersion=$K8S_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=37"
  version_flags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=2026-01-01T00:00:00Z"
done

export CGO_ENABLED=0
build() { # module-dir output-name package [ldflags]
  step "building $2 (module $1)"
  (cd "$here/$1" && go build -trimpath -ldflags "-s -w ${4:-}" -o "$out/$2" "$3")
}

build etcd etcd go.etcd.io/etcd/server/v3
build kubernetes kube-apiserver k8s.io/kubernetes/cmd/kube-apiserver "$version_flags"
build kubernetes kube-controller-manager k8s.io/kubernetes/cmd/kube-controller-manager "$version_flags"
build kubernetes kube-scheduler k8s.io/kubernetes/cmd/kube-scheduler "$version_flags"
build kwok kwok sigs.k8s.io/kwok/cmd/kwok
# The reliability suite's fault-injecting TCP proxy.
build toxiproxy toxiproxy github.com/Shopify/toxiproxy/v2/cmd/server

# kwok does nothing without Stage objects; ship the "fast" stages of its own module.
step "copying kwok's fast stages"
kwok_dir=$(cd "$here/kwok" && go list -m -f '{{.Dir}}' sigs.k8s.io/kwok)
mkdir -p "$out/kwok-stages"
for stage in node/fast/node-initialize.yaml node/heartbeat/node-heartbeat.yaml \
  pod/fast/pod-ready.yaml pod/fast/pod-complete.yaml pod/fast/pod-delete.yaml; do
  install -m 0644 "$kwok_dir/kustomize/stage/$stage" "$out/kwok-stages/$(basename "$stage")"
done

for b in "${binaries[@]}"; do test -x "$out/$b"; done
echo "$stamp" >"$out/.stamp"
mkdir -p "$cache" && cp -a "$out/." "$cache/"
step "done: $("$out/kube-apiserver" --version)"
