#!/usr/bin/env bash
# Installs SpinKube: cert-manager, the containerd-shim-spin on every node (through the
# kwasm operator), the wasmtime-spin-v2 RuntimeClass, the spin-operator 0.6 CRDs, the
# `containerd-shim-spin` SpinAppExecutor, and spin-operator itself. Idempotent.
#
# Minikube must run containerd: minikube start --container-runtime=containerd
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

SPIN_OPERATOR_VERSION="${SPIN_OPERATOR_VERSION:-v0.6.1}"
CERT_MANAGER_VERSION="${CERT_MANAGER_VERSION:-v1.18.2}"
SHIM_VERSION="${SHIM_VERSION:-v0.22.0}"
KWASM_CHART_VERSION="${KWASM_CHART_VERSION:-0.2.3}"
RELEASES="https://github.com/spinframework/spin-operator/releases/download/$SPIN_OPERATOR_VERSION"

need helm
need_cluster

log "cert-manager $CERT_MANAGER_VERSION"
kubectl apply -f "https://github.com/cert-manager/cert-manager/releases/download/$CERT_MANAGER_VERSION/cert-manager.yaml" >/dev/null ||
  die "could not apply cert-manager $CERT_MANAGER_VERSION"
kubectl wait --for=condition=Available --timeout=5m -n cert-manager \
  deploy/cert-manager deploy/cert-manager-webhook deploy/cert-manager-cainjector >/dev/null ||
  die "cert-manager is not available: kubectl -n cert-manager get pods"

log "containerd-shim-spin $SHIM_VERSION on every node (kwasm operator)"
helm repo add kwasm http://kwasm.sh/kwasm-operator/ --force-update >/dev/null || die "could not add the kwasm helm repository"
helm upgrade --install kwasm-operator kwasm/kwasm-operator --version "$KWASM_CHART_VERSION" \
  --namespace kwasm --create-namespace \
  --set "kwasmOperator.installerImage=ghcr.io/spinframework/containerd-shim-spin/node-installer:$SHIM_VERSION" \
  --wait --timeout 5m || die "helm could not install the kwasm operator"
kubectl annotate node --all kwasm.sh/kwasm-node=true --overwrite >/dev/null ||
  die "could not annotate the nodes for the shim installer"

log "spin-operator $SPIN_OPERATOR_VERSION CRDs, RuntimeClass and SpinAppExecutor"
kubectl apply -f "$RELEASES/spin-operator.crds.yaml" >/dev/null || die "could not apply the spin-operator CRDs"
kubectl apply -f "$RELEASES/spin-operator.runtime-class.yaml" >/dev/null || die "could not apply the wasmtime-spin-v2 RuntimeClass"
kubectl wait --for=condition=Established --timeout=120s crd/spinapps.core.spinkube.dev crd/spinappexecutors.core.spinkube.dev >/dev/null ||
  die "spin-operator CRDs are not established"

log "spin-operator $SPIN_OPERATOR_VERSION"
helm upgrade --install spin-operator oci://ghcr.io/spinframework/charts/spin-operator \
  --version "${SPIN_OPERATOR_VERSION#v}" --namespace spin-operator --create-namespace \
  --wait --timeout 10m || die "helm could not install spin-operator $SPIN_OPERATOR_VERSION"
# The executor's admission webhook is served by spin-operator: apply after it is up.
# spin-operator 0.6 looks a SpinApp's executor up in the SpinApp's own namespace,
# so the executor goes into the apps' namespace, not the current one.
ensure_namespace "$APP_NS"
kubectl apply -n "$APP_NS" -f "$RELEASES/spin-operator.shim-executor.yaml" >/dev/null ||
  die "could not apply the containerd-shim-spin SpinAppExecutor into namespace $APP_NS"

log "waiting for the shim installer to finish on every node"
for _ in $(seq 1 60); do
  pending=$(kubectl get nodes -o name | while read -r node; do
    [[ "$(kubectl get "$node" -o 'jsonpath={.metadata.labels.kwasm\.sh/kwasm-provisioned}')" == "" ]] && echo "$node"
  done || true)
  [[ -z "$pending" ]] && break
  sleep 5
done
[[ -z "${pending:-}" ]] || die "the spin shim is not installed yet on: $pending (kubectl -n kwasm get pods)"
log "SpinKube is ready"
