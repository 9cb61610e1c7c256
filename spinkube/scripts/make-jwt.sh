#!/usr/bin/env bash
# Prints an HS256 JWT for USER (sub=USER, valid for TTL seconds, default 3600),
# signed with the cluster's jwt-hs256-secret (or TODO_JWT_HS256_SECRET), for trying
# the API with curl: TOKEN=$(spinkube/scripts/make-jwt.sh alice)
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

user="${1:?usage: make-jwt.sh USER [TTL_SECONDS]}"
ttl="${2:-3600}"
need openssl base64 tr
secret="${TODO_JWT_HS256_SECRET:-}"
if [[ -z "$secret" ]]; then
  need_cluster
  secret="$(secret_value "$APP_NS" jwt-hs256-secret jwt-hs256-secret)"
fi
[[ -n "$secret" ]] || die "no jwt-hs256-secret in namespace $APP_NS (run scripts/deploy.sh) and TODO_JWT_HS256_SECRET is unset"

b64url() { base64 -w0 | tr '+/' '-_' | tr -d '='; }
now=$(date +%s)
header=$(printf '{"alg":"HS256","typ":"JWT"}' | b64url)
payload=$(printf '{"sub":"%s","iat":%d,"exp":%d}' "$user" "$now" "$((now + ttl))" | b64url)
signature=$(printf '%s.%s' "$header" "$payload" | openssl dgst -sha256 -hmac "$secret" -binary | b64url)
printf '%s.%s.%s\n' "$header" "$payload" "$signature"
