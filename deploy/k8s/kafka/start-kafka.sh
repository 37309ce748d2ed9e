#!/bin/bash
# A Kafka broker as the deployments run it (docker-compose.yml "kafka", deploy/k8s
# StatefulSet "kafka"): combined broker and controller (KRaft) with a SASL_SSL listener
# only for clients (TLS, SCRAM-SHA-512), one SCRAM user per service plus the operators'
# admin, StandardAuthorizer refusing what no ACL allows (allow.everyone.if.no.acl.found
# false; the ACLs: deploy/k8s/kafka/setup.sh, run by the "kafka-setup" job).
#
# SCRAM users are created when the storage is formatted (the first start): SCRAM cannot
# bootstrap itself, and controllers cannot use it (their credentials live in the
# metadata they serve). The controller listener is therefore
#   PLAINTEXT on the container's loopback (one combined node: compose), its principal
#     ANONYMOUS a super user for the broker's own controller requests; or
#   SSL with client certificates (the cluster): brokers and controllers present the
#     brokers' certificate, whose CN (kafka-broker) is the super user.
# Changing a password later, or adding a user to storage formatted before it existed
# (consular, returnees on a stack started earlier): kafka-configs.sh --alter
# --entity-type users --entity-name <user> --add-config 'SCRAM-SHA-512=[password=...]'
# as admin (docs/operations.md).
#
# Environment: CLUSTER_ID, NODE_ID (default 1), ADVERTISED_HOST (default kafka), VOTERS
# (default 1@localhost:9093), CONTROLLER_HOST (default localhost), CONTROLLER_PROTOCOL
# (PLAINTEXT or SSL), REPLICATION (1), MIN_ISR (1), TLS_CERT, TLS_KEY, TLS_CA (PEM files),
# KAFKA_ADMIN_PASSWORD and KAFKA_<SERVICE>_PASSWORD for registry, notifications, matching,
# consular, returnees.
set -euo pipefail

: "${CLUSTER_ID:?}" "${KAFKA_ADMIN_PASSWORD:?}" "${KAFKA_REGISTRY_PASSWORD:?}"
: "${KAFKA_NOTIFICATIONS_PASSWORD:?}" "${KAFKA_MATCHING_PASSWORD:?}"
: "${KAFKA_CONSULAR_PASSWORD:?}" "${KAFKA_RETURNEES_PASSWORD:?}"
node_id="${NODE_ID:-1}"
advertised="${ADVERTISED_HOST:-kafka}"
voters="${VOTERS:-1@localhost:9093}"
controller_host="${CONTROLLER_HOST:-localhost}"
controller_protocol="${CONTROLLER_PROTOCOL:-PLAINTEXT}"
replication="${REPLICATION:-1}"
min_isr="${MIN_ISR:-1}"
tls_cert="${TLS_CERT:-/tls/kafka.crt}"
tls_key="${TLS_KEY:-/tls/kafka.key}"
tls_ca="${TLS_CA:-/tls/ca.crt}"
data="${DATA_DIR:-/var/lib/kafka/data}"

umask 077
work=/tmp/kafka
mkdir -p "$work"
# Kafka's PEM keystore: the key and its certificate in one file.
cat "$tls_key" "$tls_cert" > "$work/keystore.pem"

if [ "$controller_protocol" = SSL ]; then
    controller_settings="listener.name.controller.ssl.client.auth=required
ssl.principal.mapping.rules=RULE:^CN=([^,]+).*\$/\$1/,DEFAULT
super.users=User:admin;User:kafka-broker"
    controller_listener="CONTROLLER://:9093"
else
    controller_settings="super.users=User:admin;User:ANONYMOUS"
    controller_listener="CONTROLLER://${controller_host}:9093"
fi

cat > "$work/server.properties" <<PROPS
process.roles=broker,controller
node.id=${node_id}
controller.quorum.voters=${voters}
listeners=SASL_SSL://:9092,${controller_listener}
advertised.listeners=SASL_SSL://${advertised}:9092
controller.listener.names=CONTROLLER
inter.broker.listener.name=SASL_SSL
listener.security.protocol.map=SASL_SSL:SASL_SSL,CONTROLLER:${controller_protocol}
sasl.enabled.mechanisms=SCRAM-SHA-512
sasl.mechanism.inter.broker.protocol=SCRAM-SHA-512
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="admin" password="${KAFKA_ADMIN_PASSWORD}";
ssl.keystore.type=PEM
ssl.keystore.location=$work/keystore.pem
ssl.truststore.type=PEM
ssl.truststore.location=${tls_ca}
ssl.enabled.protocols=TLSv1.3,TLSv1.2
authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer
allow.everyone.if.no.acl.found=false
${controller_settings}
log.dirs=${data}
num.partitions=6
auto.create.topics.enable=false
unclean.leader.election.enable=false
default.replication.factor=${replication}
min.insync.replicas=${min_isr}
offsets.topic.replication.factor=${replication}
transaction.state.log.replication.factor=${replication}
transaction.state.log.min.isr=${min_isr}
group.initial.rebalance.delay.ms=0
PROPS

if [ ! -f "$data/meta.properties" ]; then
    /opt/kafka/bin/kafka-storage.sh format --cluster-id "$CLUSTER_ID" -c "$work/server.properties" \
        --add-scram "SCRAM-SHA-512=[name=admin,password=${KAFKA_ADMIN_PASSWORD}]" \
        --add-scram "SCRAM-SHA-512=[name=registry,password=${KAFKA_REGISTRY_PASSWORD}]" \
        --add-scram "SCRAM-SHA-512=[name=notifications,password=${KAFKA_NOTIFICATIONS_PASSWORD}]" \
        --add-scram "SCRAM-SHA-512=[name=matching,password=${KAFKA_MATCHING_PASSWORD}]" \
        --add-scram "SCRAM-SHA-512=[name=consular,password=${KAFKA_CONSULAR_PASSWORD}]" \
        --add-scram "SCRAM-SHA-512=[name=returnees,password=${KAFKA_RETURNEES_PASSWORD}]"
fi

# The admin's client settings (health checks, operators' tools in the container).
cat > "$work/admin.properties" <<PROPS
security.protocol=SASL_SSL
sasl.mechanism=SCRAM-SHA-512
sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="admin" password="${KAFKA_ADMIN_PASSWORD}";
ssl.truststore.type=PEM
ssl.truststore.location=${tls_ca}
PROPS

exec /opt/kafka/bin/kafka-server-start.sh "$work/server.properties"
