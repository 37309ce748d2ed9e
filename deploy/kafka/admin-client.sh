#!/bin/sh
# Writes the admin principal's Kafka client properties to $ADMIN_CONFIG (default
# /tmp/admin.properties) from KAFKA_ADMIN_PASSWORD and the CA file KAFKA_CA_FILE, then
# runs the given command (setup.sh): the password never appears on a command line.
set -eu
: "${KAFKA_ADMIN_PASSWORD:?}" "${KAFKA_CA_FILE:?}"
ADMIN_CONFIG="${ADMIN_CONFIG:-/tmp/admin.properties}"
export ADMIN_CONFIG
umask 077
cat > "$ADMIN_CONFIG" <<PROPS
security.protocol=SASL_SSL
sasl.mechanism=SCRAM-SHA-512
sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="admin" password="${KAFKA_ADMIN_PASSWORD}";
ssl.truststore.type=PEM
ssl.truststore.location=${KAFKA_CA_FILE}
PROPS
exec "$@"
