#!/usr/bin/env bash
# Installs the Strimzi cluster operator (1.2, kafka.strimzi.io/v1) into the `kafka`
# namespace and creates the Kafka cluster, node pool and topics of the selected
# profile (TODO_PROFILE=minikube: one KRaft node; production: three). Idempotent.
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

STRIMZI_VERSION="${STRIMZI_VERSION:-1.2.0}"
STRIMZI_CHART="${STRIMZI_CHART:-oci://quay.io/strimzi-helm/strimzi-kafka-operator}"

need helm
need_cluster

log "namespaces"
kubectl apply -f "$SPINKUBE_DIR/base/namespaces.yaml" >/dev/null || die "could not apply base/namespaces.yaml"

log "Strimzi $STRIMZI_VERSION operator in namespace $KAFKA_NS"
helm upgrade --install strimzi-cluster-operator "$STRIMZI_CHART" \
  --version "$STRIMZI_VERSION" --namespace "$KAFKA_NS" \
  --wait --timeout 10m ||
  die "helm could not install Strimzi $STRIMZI_VERSION (chart $STRIMZI_CHART)"
kubectl wait --for=condition=Established --timeout=120s \
  crd/kafkas.kafka.strimzi.io crd/kafkanodepools.kafka.strimzi.io crd/kafkatopics.kafka.strimzi.io >/dev/null ||
  die "Strimzi CRDs are not established"

log "Kafka cluster 'todo' ($PROFILE profile)"
kubectl apply -f "$SPINKUBE_DIR/kafka/$PROFILE/kafka.yaml" || die "could not apply kafka/$PROFILE/kafka.yaml"

log "waiting for Kafka to be ready (first start pulls images: up to 15 minutes)"
kubectl wait kafka/todo -n "$KAFKA_NS" --for=condition=Ready --timeout=15m ||
  die "Kafka 'todo' is not Ready; inspect: kubectl -n $KAFKA_NS get pods,kafka,kafkanodepool; kubectl -n $KAFKA_NS describe kafka todo"

log "waiting for the topics"
kubectl wait kafkatopic --all -n "$KAFKA_NS" --for=condition=Ready --timeout=5m ||
  die "KafkaTopics are not Ready; inspect: kubectl -n $KAFKA_NS get kafkatopic"

log "Kafka is ready: todo-kafka-bootstrap.$KAFKA_NS.svc:9092"
