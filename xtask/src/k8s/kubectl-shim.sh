#!/usr/bin/env bash
# kubectl as the install scripts see it under `cargo xtask k8s`: every step runs
# against the test API server, except those that need what this control plane
# lacks (a kubelet, controllers, network to release downloads), which are
# logged as skipped. spin-operator's release assets are its module's own files.
set -euo pipefail
log() { printf '%s\t%s\n' "$1" "$ARGS" >>"$TODO_KUBECTL_LOG"; }
ARGS="$*"
args=("$@")
for i in "${!args[@]}"; do
  url="${args[$i]}"
  case "$url" in
    https://github.com/spinframework/spin-operator/releases/download/v"$TODO_SPIN_OPERATOR_VERSION"/*)
      case "${url##*/}" in
        spin-operator.crds.yaml) args[i]="$TODO_SPIN_OPERATOR_MODULE/config/crd/bases" ;;
        spin-operator.runtime-class.yaml) args[i]="$TODO_SPIN_OPERATOR_MODULE/config/samples/spin-runtime-class.yaml" ;;
        spin-operator.shim-executor.yaml) args[i]="$TODO_SPIN_OPERATOR_MODULE/config/samples/spin-shim-executor.yaml" ;;
        *) log "FAILED unknown release asset" && exit 1 ;;
      esac ;;
    http://* | https://*) log "skipped (download)" && exit 0 ;;
  esac
done
case "$ARGS" in
  *"rollout status"* | *"annotate node"*) log "skipped (needs nodes)" && exit 0 ;;
  "wait "*condition=Established*) ;;
  "wait "*) log "skipped (needs a controller)" && exit 0 ;;
esac
if "$TODO_REAL_KUBECTL" "${args[@]}"; then log ran; else
  rc=$?
  log "FAILED ($rc)"
  exit "$rc"
fi
