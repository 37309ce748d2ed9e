#!/usr/bin/env bash
# One database per service, each owned by its own login role, on the one PostgreSQL
# server of the single-host stack (docker-compose.yml). The official image runs this
# script from /docker-entrypoint-initdb.d once, when the data volume is first
# initialised; later changes need `psql` by hand (or a fresh volume).
#
# Passwords come from <NAME>_DB_PASSWORD (REGISTRY_DB_PASSWORD, ...); the runtime role
# <name>_app, when <NAME>_APP_DB_PASSWORD is set, is created LOGIN (it connects to the
# database once the service's migrations grant it). A role whose
# password is empty is created NOLOGIN: the databases of services that do not run yet
# exist, but nobody can log in to them until an operator sets a password
# (ALTER ROLE matching LOGIN PASSWORD '...').
#
# DIASPORA_DATABASES overrides the list (the tests use it with throw-away names).
# Idempotent: existing roles and databases are left as they are.
set -euo pipefail

read -r -a SERVICE_DATABASES <<< "${DIASPORA_DATABASES:-registry matching consular returnees notifications keycloak}"
# Extensions the services rely on (the same as the embedded devstack enables).
SERVICE_EXTENSIONS=(pg_trgm vector unaccent)

psql_admin() {
    PGOPTIONS="--client-min-messages=warning" \
        psql -v ON_ERROR_STOP=1 --no-psqlrc --quiet --username "${POSTGRES_USER:-postgres}" "$@"
}

for name in "${SERVICE_DATABASES[@]}"; do
    password_var="$(printf '%s' "${name}" | tr '[:lower:]-' '[:upper:]_')_DB_PASSWORD"
    password="${!password_var:-}"

    psql_admin --dbname postgres -v name="${name}" -v password="${password}" <<'SQL'
SELECT CASE WHEN :'password' = ''
            THEN format('CREATE ROLE %I NOLOGIN', :'name')
            ELSE format('CREATE ROLE %I LOGIN PASSWORD %L', :'name', :'password')
       END
 WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'name') \gexec
SELECT format('CREATE DATABASE %I OWNER %I', :'name', :'name')
 WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'name') \gexec
SELECT format('REVOKE ALL ON DATABASE %I FROM PUBLIC', :'name') \gexec
SELECT format('GRANT ALL ON DATABASE %I TO %I', :'name', :'name') \gexec
SQL

    # The service's runtime role (<name>_app): what its API, relay and worker connect as.
    # Its rights on the tables are granted by the service's migrations (run as <name>).
    app_password_var="$(printf '%s' "${name}" | tr '[:lower:]-' '[:upper:]_')_APP_DB_PASSWORD"
    app_password="${!app_password_var:-}"
    if [[ "${name}" != keycloak* && -n "${app_password}" ]]; then
        psql_admin --dbname postgres -v name="${name}_app" -v password="${app_password}" <<'SQL'
SELECT format('CREATE ROLE %I LOGIN PASSWORD %L', :'name', :'password')
 WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'name') \gexec
SQL
    fi

    if [[ "${name}" != keycloak* ]]; then
        for extension in "${SERVICE_EXTENSIONS[@]}"; do
            psql_admin --dbname "${name}" -c "CREATE EXTENSION IF NOT EXISTS ${extension}"
        done
    fi

    if [[ -z "${password}" ]]; then
        echo "init-databases: ${name}: database ready, role NOLOGIN (no ${password_var})"
    else
        echo "init-databases: ${name}: database and login role ready"
    fi
done
