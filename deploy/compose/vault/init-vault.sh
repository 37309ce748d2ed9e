#!/bin/sh
# Makes the stack's Vault ready for crypto-shredding; run by the vault-init job at every
# `docker compose up` (idempotent):
#   1. on the first start, initialise Vault with one unseal key; the key and the root
#      token are written to $VAULT_INIT_DIR (the vault-init volume, mounted nowhere else);
#   2. unseal it (Vault starts sealed after every restart);
#   3. enable the transit engine and create the key $VAULT_TRANSIT_KEY (never exported);
#   4. create the registry's token with the id $VAULT_REGISTRY_TOKEN, whose only policy is
#      to encrypt and decrypt with that key.
# A production Vault run by operators (auto-unseal, several key holders) replaces this:
# see docs/operations.md, "Crypto-shredding keys".
set -eu

: "${VAULT_ADDR:?}" "${VAULT_INIT_DIR:?}" "${VAULT_TRANSIT_KEY:?}" "${VAULT_REGISTRY_TOKEN:?}"
export VAULT_ADDR
umask 077

initialised=$(vault status -format=json | grep -o '"initialized": *[a-z]*' | grep -o '[a-z]*$' || true)
if [ "$initialised" != "true" ]; then
    echo "vault-init: initialising Vault (one unseal key)"
    vault operator init -key-shares=1 -key-threshold=1 > "$VAULT_INIT_DIR/init.txt"
fi
[ -s "$VAULT_INIT_DIR/init.txt" ] || {
    echo "vault-init: Vault is initialised but $VAULT_INIT_DIR/init.txt is missing" >&2
    exit 1
}
unseal_key=$(sed -n 's/^Unseal Key 1: *//p' "$VAULT_INIT_DIR/init.txt")
VAULT_TOKEN=$(sed -n 's/^Initial Root Token: *//p' "$VAULT_INIT_DIR/init.txt")
export VAULT_TOKEN

if vault status > /dev/null 2>&1; then
    echo "vault-init: already unsealed"
else
    vault operator unseal "$unseal_key" > /dev/null
    echo "vault-init: unsealed"
fi

if ! vault secrets list -format=json | grep -q '"transit/"'; then
    vault secrets enable transit
fi
if ! vault read "transit/keys/$VAULT_TRANSIT_KEY" > /dev/null 2>&1; then
    vault write -f "transit/keys/$VAULT_TRANSIT_KEY" type=aes256-gcm96 exportable=false
fi

vault policy write diaspora-registry-transit - <<POLICY
path "transit/encrypt/$VAULT_TRANSIT_KEY" { capabilities = ["update"] }
path "transit/decrypt/$VAULT_TRANSIT_KEY" { capabilities = ["update"] }
POLICY

# The registry's token: an orphan with that policy only, renewed at every run; its
# period (32 days) bounds how long it lives without a `docker compose up`.
if vault token lookup "$VAULT_REGISTRY_TOKEN" > /dev/null 2>&1; then
    vault token renew "$VAULT_REGISTRY_TOKEN" > /dev/null
else
    vault token create -id="$VAULT_REGISTRY_TOKEN" -orphan -no-default-policy \
        -policy=diaspora-registry-transit -period=768h -display-name=registry > /dev/null
fi
echo "vault-init: transit key $VAULT_TRANSIT_KEY and the registry's token are ready"
