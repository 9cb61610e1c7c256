#!/usr/bin/env bash
# Installs the Dapr 1.18 control plane (operator, sidecar injector, sentry,
# placement, scheduler for the Jobs API) into `dapr-system` with Helm. Idempotent.
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

DAPR_VERSION="${DAPR_VERSION:-1.18.3}"
DAPR_HELM_REPO="${DAPR_HELM_REPO:-https://dapr.github.io/helm-charts/}"

need helm
need_cluster

log "Dapr $DAPR_VERSION helm repository"
helm repo add dapr "$DAPR_HELM_REPO" --force-update >/dev/null || die "could not add the Dapr helm repository $DAPR_HELM_REPO"
helm repo update dapr >/dev/null || die "could not update the Dapr helm repository"

log "Dapr $DAPR_VERSION control plane in dapr-system"
# Minikube: one replica of each control-plane service is enough; the scheduler
# (Jobs API, used by reminder-service) keeps its data on a persistent volume.
ha=false
[[ "$PROFILE" == production ]] && ha=true
helm upgrade --install dapr dapr/dapr --version "$DAPR_VERSION" \
  --namespace dapr-system --create-namespace \
  --set "global.ha.enabled=$ha" \
  --wait --timeout 10m ||
  die "helm could not install Dapr $DAPR_VERSION"

for crd in components configurations resiliencies subscriptions; do
  kubectl wait --for=condition=Established --timeout=120s "crd/$crd.dapr.io" >/dev/null ||
    die "Dapr CRD $crd.dapr.io is not established"
done
kubectl rollout status -n dapr-system deploy/dapr-sidecar-injector --timeout=5m >/dev/null ||
  die "the Dapr sidecar injector is not ready: kubectl -n dapr-system get pods"
kubectl rollout status -n dapr-system statefulset/dapr-scheduler-server --timeout=5m >/dev/null ||
  die "the Dapr scheduler is not ready: kubectl -n dapr-system get pods"
log "Dapr is ready"
