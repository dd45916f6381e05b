"""deploy/keycloak/realm-cityos.json holds what the API relies on (external-apis.md §2)."""

from __future__ import annotations

import json
from pathlib import Path

from cityos.auth.principal import ROLES

REALM = json.loads((Path(__file__).resolve().parents[2] / "deploy" / "keycloak" / "realm-cityos.json").read_text())


def test_realm_roles_and_clients() -> None:
    assert REALM["realm"] == "cityos"
    assert {role["name"] for role in REALM["roles"]["realm"]} >= ROLES
    clients = {client["clientId"]: client for client in REALM["clients"]}
    assert clients["medusa-backend"]["publicClient"] is False
    assert clients["medusa-backend"]["serviceAccountsEnabled"] is True
    assert clients["payload-cms"]["publicClient"] is False
    assert clients["medusa-admin"]["publicClient"] is True
    assert clients["medusa-admin"]["attributes"]["pkce.code.challenge.method"] == "S256"
    assert clients["medusa-admin"]["directAccessGrantsEnabled"] is False


def test_tenancy_attributes_are_mapped_into_tokens_and_kept_by_the_user_profile() -> None:
    attributes = {"tenant_id", "store_ids", "vendor_id", "company_id"}
    scope = next(s for s in REALM["clientScopes"] if s["name"] == "cityos-tenancy")
    mapped = {m["config"]["claim.name"] for m in scope["protocolMappers"]
              if m["protocolMapper"] == "oidc-usermodel-attribute-mapper"
              and m["config"]["access.token.claim"] == "true"}
    assert mapped == attributes
    for client in REALM["clients"]:
        assert "cityos-tenancy" in client["defaultClientScopes"]
    provider = REALM["components"]["org.keycloak.userprofile.UserProfileProvider"][0]
    profile = json.loads(provider["config"]["kc.user.profile.config"][0])
    assert {a["name"] for a in profile["attributes"]} >= attributes  # Keycloak 24+ drops undeclared attributes


def test_demo_users_cover_every_role() -> None:
    roles = {role for user in REALM["users"] for role in user["realmRoles"]}
    assert roles >= ROLES
    assert all(user["credentials"][0]["value"] == "${DEMO_USER_PASSWORD}" for user in REALM["users"])
