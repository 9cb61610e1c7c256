#!/usr/bin/env bash
# Builds and pushes the Spin application (one OCI image, six components), creates
# the secrets, and applies PostgreSQL, the Dapr resources and the six SpinApps into
# the `todo` namespace; then waits until every app is ready. Idempotent: re-running
# keeps existing secrets and rolls the apps to the newly pushed image.
#
# Needs setup-strimzi.sh, setup-dapr.sh and setup-spinkube.sh to have run.
#
# Environment (all optional):
#   TODO_IMAGE                  OCI reference to push to (default: an anonymous,
#                               24-hour ttl.sh reference, fine for Minikube)
#   TODO_SKIP_BUILD=1           push the already built app (no `spin build`)
#   TODO_PROFILE                minikube (default) | production
#   BETTER_AUTH_URL             base URL of the Better Auth server whose JWTs the apps
#                               accept (JWKS at {BETTER_AUTH_URL}/api/auth/jwks, iss, aud);
#                               unset: HS256 tokens only
#   CORS_ALLOWED_ORIGINS        browser origins, comma-separated (https://app.example.com)
#   BETTER_AUTH_SECRET          HS256 key that verifies user JWTs (alias: TODO_JWT_HS256_SECRET)
#   TODO_APP_API_TOKEN          token the Dapr sidecars present to the apps
#   TODO_POSTGRES_PASSWORD      password of the in-cluster PostgreSQL (minikube)
#   TODO_POSTGRES_CONNECTION_STRING
#                               state store connection string (required for
#                               production unless the Secret already exists)
# Unset secrets keep their current cluster value, or are generated on first run.
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

APPS=(todo-api reminder-service recurring-service audit-service notify-service mcp-server web)
PLACEHOLDER_IMAGE="todo-chatbot:local"

need spin sed
need_cluster
kubectl get crd spinapps.core.spinkube.dev >/dev/null 2>&1 || die "SpinKube is not installed: run scripts/setup-spinkube.sh"
kubectl get crd components.dapr.io >/dev/null 2>&1 || die "Dapr is not installed: run scripts/setup-dapr.sh"
kubectl get kafka todo -n "$KAFKA_NS" >/dev/null 2>&1 || die "Kafka 'todo' does not exist in namespace $KAFKA_NS: run scripts/setup-strimzi.sh"
[[ -f "$REPO_ROOT/spin.toml" ]] || die "no spin.toml at $REPO_ROOT"

# --- 1. build and push ------------------------------------------------------------
image="${TODO_IMAGE:-ttl.sh/todo-chatbot-$(random_secret | cut -c1-12):24h}"
if [[ "${TODO_SKIP_BUILD:-0}" != 1 ]]; then
  log "spin build"
  (cd "$REPO_ROOT" && spin build) || die "spin build failed (see the output above)"
fi
# The components read WASI environment variables, which a SpinApp cannot set:
# the settings travel in the pushed manifest (`environment` of the
# components that check tokens for browsers and agents). The JWKS host is an application variable
# (SpinApp `spec.variables`, below).
manifest=spin.toml
env_entries=()
for name in BETTER_AUTH_URL CORS_ALLOWED_ORIGINS; do
  value="${!name:-}"
  [[ "$value" != *[\\\"]* ]] || die "$name must not contain quotes or backslashes"
  [[ -z "$value" ]] || env_entries+=("$name = \"$value\"")
done
if ((${#env_entries[@]})); then
  manifest=spin.deploy.toml
  environment="environment = { $(IFS=,; echo "${env_entries[*]}") }"
  # Replaces the `environment` of those components (spin.toml's is the default).
  awk -v env="$environment" '
    /^\[/ { mine = ($0 ~ /^\[component\.(todo-api|audit-service|notify-service|mcp-server)\]$/) }
    mine && /^environment = / { next }
    { print }
    mine && /^\[component\./ { print env }' \
    "$REPO_ROOT/spin.toml" >"$REPO_ROOT/$manifest" || die "could not write $manifest"
fi
log "spin registry push $image ($manifest)"
(cd "$REPO_ROOT" && spin registry push --from "$manifest" "$image") ||
  die "spin registry push $image failed (for a private registry run: spin registry login <registry>)"

# --- 2. namespaces, identity, secrets ---------------------------------------------
log "namespaces and service account"
kubectl apply -f "$SPINKUBE_DIR/base/namespaces.yaml" >/dev/null || die "could not apply base/namespaces.yaml"
kubectl apply -f "$SPINKUBE_DIR/base/rbac.yaml" >/dev/null || die "could not apply base/rbac.yaml"

log "secrets (kept when they exist, generated on first run)"
jwt="${TODO_JWT_HS256_SECRET:-${BETTER_AUTH_SECRET:-$(secret_value "$APP_NS" jwt-hs256-secret jwt-hs256-secret)}}"
jwt="${jwt:-$(random_secret)}"
token="${TODO_APP_API_TOKEN:-$(secret_value "$APP_NS" app-api-token app-api-token)}"
token="${token:-$(random_secret)}"
apply_secret "$APP_NS" jwt-hs256-secret "jwt-hs256-secret=$jwt"
apply_secret "$APP_NS" app-api-token "app-api-token=$token"
# The sidecars present this token (dapr.io/app-token-secret); the apps compare it with
# app-api-token above, so both hold the same value.
apply_secret "$APP_NS" dapr-app-token "token=$token"

conn="${TODO_POSTGRES_CONNECTION_STRING:-}"
if [[ "$PROFILE" == minikube || "${TODO_IN_CLUSTER_POSTGRES:-0}" == 1 ]]; then
  pg_password="${TODO_POSTGRES_PASSWORD:-$(secret_value "$APP_NS" postgres-credentials password)}"
  pg_password="${pg_password:-$(random_secret)}"
  apply_secret "$APP_NS" postgres-credentials "password=$pg_password"
  conn="${conn:-host=postgres.$APP_NS.svc.cluster.local port=5432 user=todo password=$pg_password dbname=todo sslmode=disable}"
  log "PostgreSQL (in-cluster)"
  kubectl apply -f "$SPINKUBE_DIR/base/postgres.yaml" >/dev/null || die "could not apply base/postgres.yaml"
  kubectl rollout status statefulset/postgres -n "$APP_NS" --timeout=5m ||
    die "PostgreSQL is not ready: kubectl -n $APP_NS describe pod postgres-0"
fi
conn="${conn:-$(secret_value "$APP_NS" postgres-statestore connectionString)}"
[[ -n "$conn" ]] || die "set TODO_POSTGRES_CONNECTION_STRING to the production PostgreSQL (e.g. host=... user=... password=... dbname=... sslmode=require)"
apply_secret "$APP_NS" postgres-statestore "connectionString=$conn"

# --- 3. Dapr resources --------------------------------------------------------------
log "Dapr components, configurations, resiliency and subscriptions"
for f in components configuration resiliency subscriptions; do
  kubectl apply -f "$SPINKUBE_DIR/dapr/$f.yaml" >/dev/null || die "could not apply dapr/$f.yaml"
done

# --- 4. SpinApps --------------------------------------------------------------------
log "SpinApps with image $image"
# The origin of BETTER_AUTH_URL (scheme://host[:port]) may be reached outbound.
origin="$(printf '%s' "${BETTER_AUTH_URL:-http://127.0.0.1:*}" | sed -E 's#^([A-Za-z]+://[^/]+).*#\1#')"
sed -e "s#\"$PLACEHOLDER_IMAGE\"#\"$image\"#" -e "s|\"http://127.0.0.1:[*]\" # better_auth_origin.*|\"$origin\"|" \
  "$SPINKUBE_DIR/apps/spinapps.yaml" | kubectl apply -f - >/dev/null ||
  die "could not apply apps/spinapps.yaml"
kubectl apply -f "$SPINKUBE_DIR/apps/ingress.yaml" >/dev/null || die "could not apply apps/ingress.yaml"
# Components and configuration are read when a sidecar starts: restart the apps so a
# re-run picks up changed Dapr resources even when the image did not change.
for app in "${APPS[@]}"; do
  for _ in $(seq 1 60); do
    kubectl get deploy "$app" -n "$APP_NS" >/dev/null 2>&1 && break
    sleep 2
  done
  kubectl get deploy "$app" -n "$APP_NS" >/dev/null 2>&1 ||
    die "spin-operator created no Deployment for SpinApp $app: kubectl -n $APP_NS describe spinapp $app"
  kubectl rollout restart deploy/"$app" -n "$APP_NS" >/dev/null
done

log "waiting for the apps"
for app in "${APPS[@]}"; do
  kubectl rollout status deploy/"$app" -n "$APP_NS" --timeout=5m ||
    die "$app is not ready: kubectl -n $APP_NS describe pods -l app.kubernetes.io/name=$app; kubectl -n $APP_NS logs -l app.kubernetes.io/name=$app -c daprd"
done

log "deployed. Try the API:"
cat >&2 <<EOT
  kubectl -n $APP_NS port-forward svc/todo-api 8080:80 &
  curl -s http://127.0.0.1:8080/healthz/todo-api
  TOKEN=\$($SPINKUBE_DIR/scripts/make-jwt.sh alice)
  curl -s -H "Authorization: Bearer \$TOKEN" http://127.0.0.1:8080/api/alice/tasks
EOT
