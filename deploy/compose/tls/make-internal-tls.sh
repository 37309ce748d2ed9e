#!/bin/sh
# TLS inside the single-host stack (docker-compose.yml, one-shot job "internal-tls").
#
# Production mode wants TLS where a secret or a signature travels: the notifications
# worker refuses SMTP without STARTTLS, and the services fetch Keycloak's signing keys
# (JWKS) over https only. Inside the stack there is no public certificate to use, so
# this makes, once, a private CA and one server certificate per internal host name:
#
#   <host>.crt, <host>.key   for each name in TLS_HOSTS (default: mailpit keycloak)
#   ca.crt                   the private CA
#   ca-bundle.pem            the system CAs plus ca.crt: the clients' SSL_CERT_FILE, so
#                            that public certificates (a real SMTP relay) still verify
#
# The CA's key is thrown away at once: nothing else can ever be signed with it. To
# re-issue (new host names, expiry after 825 days), empty the volume and start again.
set -eu

dir="${TLS_DIR:-/tls}"
hosts="${TLS_HOSTS:-mailpit keycloak}"
system_cas="${SYSTEM_CA_FILE:-/etc/ssl/certs/ca-certificates.crt}"

complete=yes
for host in ${hosts}; do
    [ -s "${dir}/${host}.crt" ] && [ -s "${dir}/${host}.key" ] || complete=no
done
if [ "${complete}" = yes ] && [ -s "${dir}/ca-bundle.pem" ]; then
    echo "make-internal-tls: certificates already in ${dir}"
    exit 0
fi

work="$(mktemp -d)"
trap 'rm -rf "${work}"' EXIT
umask 077

openssl req -x509 -newkey rsa:3072 -sha256 -nodes -days 825 \
    -subj "/CN=Diaspora single-host internal CA" \
    -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -keyout "${work}/ca.key" -out "${work}/ca.crt" 2>/dev/null

for host in ${hosts}; do
    openssl req -newkey rsa:2048 -sha256 -nodes -subj "/CN=${host}" \
        -keyout "${work}/${host}.key" -out "${work}/${host}.csr" 2>/dev/null
    cat > "${work}/${host}.ext" <<EXT
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=DNS:${host}
subjectKeyIdentifier=hash
authorityKeyIdentifier=keyid
EXT
    openssl x509 -req -sha256 -days 825 -in "${work}/${host}.csr" \
        -CA "${work}/ca.crt" -CAkey "${work}/ca.key" \
        -CAcreateserial -CAserial "${work}/ca.srl" \
        -extfile "${work}/${host}.ext" -out "${work}/${host}.crt" 2>/dev/null
done

cat "${system_cas}" "${work}/ca.crt" > "${work}/ca-bundle.pem"

mkdir -p "${dir}"
chmod 0755 "${dir}"
# Readable by every container that mounts the volume, whatever its uid (Keycloak 1000,
# Mailpit, the services 10001): the keys guard only links inside the stack's private
# network, and the volume is mounted nowhere else.
install -m 0644 "${work}/ca.crt" "${work}/ca-bundle.pem" "${dir}/"
for host in ${hosts}; do
    install -m 0644 "${work}/${host}.crt" "${work}/${host}.key" "${dir}/"
done
echo "make-internal-tls: wrote a private CA and certificates for ${hosts} to ${dir}"
