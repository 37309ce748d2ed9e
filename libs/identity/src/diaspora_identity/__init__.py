"""Who is calling and what they may see, the same way in every service.

- ``tokens`` / ``jwks``: OIDC bearer tokens (JWT) verified against the issuer's JWKS;
- ``principal``: the caller (roles, embassies, partner, member id) built from the claims;
- ``policy`` and ``data/policy.yaml``: roles and scopes as data, field rules, one
  enforcement path for get, list, search and export;
- ``jurisdictions`` and ``data/jurisdictions.yaml``: which embassy covers which countries;
- ``audit``: the append-only audit trail of staff access to personal data;
- ``http``: the FastAPI dependency (401/403 problem details);
- ``testing``: a local issuer for tests and the development identity provider (never production).
"""
