#!/usr/bin/env bash
# Shared helpers for the install scripts. Sourced, never run directly.
# shellcheck shell=bash

SPINKUBE_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
REPO_ROOT="$(cd "${SPINKUBE_DIR}/.." && pwd)"
export SPINKUBE_DIR REPO_ROOT

# Namespaces (see base/namespaces.yaml).
APP_NS="${TODO_NAMESPACE:-todo}"
KAFKA_NS="${TODO_KAFKA_NAMESPACE:-kafka}"
export APP_NS KAFKA_NS

# Deployment profile: minikube (1 Kafka node, in-cluster PostgreSQL) or production
# (3 Kafka nodes; PostgreSQL from TODO_POSTGRES_CONNECTION_STRING).
PROFILE="${TODO_PROFILE:-minikube}"
export PROFILE

log() { printf '\033[1;34m==>\033[0m %s\n' "$*" >&2; }
warn() { printf '\033[1;33mwarning:\033[0m %s\n' "$*" >&2; }
die() {
  printf '\033[1;31merror:\033[0m %s\n' "$*" >&2
  exit 1
}

# Reports which command failed, on any unexpected error (set -e).
on_error() {
  local rc=$? line=$1 cmd=$2
  printf '\033[1;31merror:\033[0m %s failed at line %s (exit %s): %s\n' \
    "$(basename "$0")" "$line" "$rc" "$cmd" >&2
}
trap 'on_error "$LINENO" "$BASH_COMMAND"' ERR

need() {
  local tool
  for tool in "$@"; do
    command -v "$tool" >/dev/null 2>&1 || die "'$tool' is not on PATH; install it first (see spinkube/README.md)"
  done
}

need_cluster() {
  need kubectl
  kubectl cluster-info >/dev/null 2>&1 ||
    die "no reachable Kubernetes cluster in the current kubectl context (start one: minikube start ...)"
}

case "$PROFILE" in
  minikube | production) ;;
  *) die "TODO_PROFILE must be 'minikube' or 'production', not '$PROFILE'" ;;
esac

# Creates or updates a generic Secret from literal key=value pairs (idempotent).
apply_secret() {
  local ns=$1 name=$2
  shift 2
  local args=()
  local kv
  for kv in "$@"; do
    args+=("--from-literal=$kv")
  done
  kubectl create secret generic "$name" -n "$ns" "${args[@]}" \
    --dry-run=client -o yaml | kubectl apply -f - >/dev/null ||
    die "could not create or update Secret $ns/$name"
}

# Prints the value of KEY in Secret NS/NAME, or nothing when it does not exist.
secret_value() {
  local ns=$1 name=$2 key=$3
  kubectl get secret "$name" -n "$ns" -o "jsonpath={.data.${key}}" 2>/dev/null | base64 -d 2>/dev/null || true
}

# A random 256-bit hex secret.
random_secret() {
  if command -v openssl >/dev/null 2>&1; then
    openssl rand -hex 32
  else
    head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n'
  fi
}

ensure_namespace() {
  kubectl create namespace "$1" --dry-run=client -o yaml | kubectl apply -f - >/dev/null ||
    die "could not create namespace $1"
}
