"""Invitations by email over HTTP: a company admin invites an email with a role and a spending limit (the token
only in the `b2b.invitation` outbox message, hashed at rest), the invitee signed in with that verified email
accepts and is a user of the company; revoke, re-invite, expiry and wrong emails are typed errors."""

from __future__ import annotations

import hashlib
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from cityos.config import Settings
from cityos.integrations.smtp.notices import TOPICS as NOTICE_TOPICS
from cityos.jobs.outbox import dispatch_outbox
from tests.commerce_flow import OPS, shop
from tests.conftest import GraphQLClient, TenantWorld, Tokens, error_codes
from tests.fakes.smtp import FakeSmtp
from tests.integration.test_b2b import make_company, ok
from tests.integration.test_billing import app_engine

__all__ = ["app_engine", "shop"]


async def mailed(owner_engine: AsyncEngine, world: TenantWorld, email: str) -> list[dict[str, Any]]:
    async with owner_engine.connect() as connection:
        return list((await connection.execute(text(
            "select payload from outbox where tenant_id = :t and topic = 'b2b.invitation' "
            "and payload->>'to' = :e order by created_at"), {"t": world.tenant_id, "e": email})).scalars())


async def test_an_invited_email_accepts_with_its_verified_email_and_joins_the_company(
        gql: GraphQLClient, tokens: Tokens, shop: TenantWorld, owner_engine: AsyncEngine) -> None:
    acme = await make_company(gql, tokens, shop)
    invited = (await ok(gql, "storefront/InviteCompanyUserByEmail", {"companyId": acme.id, "input": {
        "email": "New.Buyer@Acme.example", "role": "COMPANY_BUYER", "limit": {"orderLimit": 25_000}}}, acme.admin,
        shop.key))["inviteCompanyUserByEmail"]
    assert invited["email"] == "new.buyer@acme.example" and invited["status"] == "PENDING"
    [message] = await mailed(owner_engine, shop, "new.buyer@acme.example")
    assert message["company_name"] == "Acme Corp" and message["role"] == "company_buyer"
    token = message["token"]
    async with owner_engine.connect() as connection:
        stored = (await connection.execute(text("select token_hash from company_invitation where email = :e"),
                                           {"e": "new.buyer@acme.example"})).scalar_one()
    assert stored == hashlib.sha256(token.encode()).hexdigest() and token not in stored

    stranger = tokens("customer", shop, subject="someone-else", email="other@acme.example")
    wrong = await gql(OPS["storefront/AcceptCompanyInvitation"], {"token": token}, token=stranger, key=shop.key)
    assert error_codes(wrong) == ["FORBIDDEN"]
    unverified = tokens("customer", shop, subject="new-buyer", email="new.buyer@acme.example", email_verified=False)
    body = await gql(OPS["storefront/AcceptCompanyInvitation"], {"token": token}, token=unverified, key=shop.key)
    assert error_codes(body) == ["FORBIDDEN"]
    unknown = await gql(OPS["storefront/AcceptCompanyInvitation"], {"token": "inv_nope"},
                        token=tokens("customer", shop, subject="new-buyer", email="new.buyer@acme.example"),
                        key=shop.key)
    assert error_codes(unknown) == ["NOT_FOUND"]

    invitee = tokens("customer", shop, subject="new-buyer", email="new.buyer@acme.example")
    user = (await ok(gql, "storefront/AcceptCompanyInvitation", {"token": token}, invitee,
                     shop.key))["acceptCompanyInvitation"]
    assert user["customerId"] == "new-buyer" and user["role"] == "COMPANY_BUYER" and user["status"] == "ACTIVE"
    twice = await gql(OPS["storefront/AcceptCompanyInvitation"], {"token": token}, token=invitee, key=shop.key)
    assert error_codes(twice) == ["INVALID_STATE_TRANSITION"]
    company = (await ok(gql, "storefront/Company", {"id": acme.id}, acme.admin, shop.key))["node"]
    joined = next(item for item in company["users"] if item["customerId"] == "new-buyer")
    assert joined["orderLimit"]["amount"] == 25_000
    assert company["invitations"][0]["status"] == "ACCEPTED" and company["invitations"][0]["acceptedBy"] == "new-buyer"
    # The new user acts for the company with a company token.
    buyer = tokens("company_buyer", shop, company=acme.local, subject="new-buyer")
    read = await gql(OPS["storefront/Company"], {"id": acme.id}, token=buyer, key=shop.key)  # credit fields: denied
    assert read["data"]["node"]["legalName"] == "Acme Corp"
    again = await gql(OPS["storefront/InviteCompanyUserByEmail"], {"companyId": acme.id, "input": {
        "email": "new.buyer@acme.example", "role": "COMPANY_BUYER"}}, token=acme.admin, key=shop.key)
    assert error_codes(again) == ["CONFLICT"]


async def test_revoke_and_reinvite_and_expiry(
        gql: GraphQLClient, tokens: Tokens, shop: TenantWorld, owner_engine: AsyncEngine) -> None:
    acme = await make_company(gql, tokens, shop)
    variables = {"companyId": acme.id, "input": {"email": "late@acme.example", "role": "APPROVER"}}
    first = (await ok(gql, "storefront/InviteCompanyUserByEmail", variables, acme.admin,
                      shop.key))["inviteCompanyUserByEmail"]
    revoked = (await ok(gql, "storefront/RevokeCompanyInvitation", {"id": first["id"]}, acme.admin,
                        shop.key))["revokeCompanyInvitation"]
    assert revoked["status"] == "REVOKED"
    invitee = tokens("customer", shop, subject="late-user", email="late@acme.example")
    [old] = await mailed(owner_engine, shop, "late@acme.example")
    body = await gql(OPS["storefront/AcceptCompanyInvitation"], {"token": old["token"]}, token=invitee, key=shop.key)
    assert error_codes(body) == ["INVALID_STATE_TRANSITION"]
    revoke_twice = await gql(OPS["storefront/RevokeCompanyInvitation"], {"id": first["id"]}, token=acme.admin,
                             key=shop.key)
    assert error_codes(revoke_twice) == ["INVALID_STATE_TRANSITION"]
    # A buyer of the company cannot invite or revoke.
    denied = await gql(OPS["storefront/InviteCompanyUserByEmail"], variables, token=acme.buyer, key=shop.key)
    assert error_codes(denied) in (["FORBIDDEN"], ["NOT_FOUND"])

    # Re-invite: the same row, a new token; the old token stays dead.
    second = (await ok(gql, "storefront/InviteCompanyUserByEmail", variables, acme.admin,
                       shop.key))["inviteCompanyUserByEmail"]
    assert second["id"] == first["id"] and second["status"] == "PENDING"
    _, new = await mailed(owner_engine, shop, "late@acme.example")
    assert new["token"] != old["token"]
    body = await gql(OPS["storefront/AcceptCompanyInvitation"], {"token": old["token"]}, token=invitee, key=shop.key)
    assert error_codes(body) == ["NOT_FOUND"]
    async with owner_engine.begin() as connection:  # a week later (the expiry is data: move it back)
        await connection.execute(text("update company_invitation set expires_at = now() - interval '1 minute' "
                                      "where email = 'late@acme.example'"))
    expired = await gql(OPS["storefront/AcceptCompanyInvitation"], {"token": new["token"]}, token=invitee,
                        key=shop.key)
    assert error_codes(expired) == ["INVALID_STATE_TRANSITION"]
    bad = await gql(OPS["storefront/InviteCompanyUserByEmail"], {"companyId": acme.id, "input": {
        "email": "not-an-email", "role": "APPROVER"}}, token=acme.admin, key=shop.key)
    assert error_codes(bad) == ["BAD_USER_INPUT"]


async def test_the_invitation_is_mailed_once_with_its_token(
        gql: GraphQLClient, tokens: Tokens, shop: TenantWorld, owner_engine: AsyncEngine, app_engine: AsyncEngine,
        settings: Settings) -> None:
    acme = await make_company(gql, tokens, shop)
    await ok(gql, "storefront/InviteCompanyUserByEmail", {"companyId": acme.id, "input": {
        "email": "mailed@acme.example", "role": "APPROVER"}}, acme.admin, shop.key)
    [message] = await mailed(owner_engine, shop, "mailed@acme.example")
    with FakeSmtp() as fake:
        for _ in range(2):  # a second run sends nothing again
            await dispatch_outbox(app_engine, settings.model_copy(update={"CITYOS_SMTP_URL": fake.url}), None,
                                  only=NOTICE_TOPICS)
        [mail] = fake.to("mailed@acme.example")
    assert mail["Subject"] == "You are invited to Acme Corp"
    assert message["token"] in mail.get_payload() and "as approver" in mail.get_payload()
    async with owner_engine.connect() as connection:
        status = (await connection.execute(text(
            "select status from outbox where tenant_id = :t and topic = 'b2b.invitation' "
            "and payload->>'to' = 'mailed@acme.example'"), {"t": shop.tenant_id})).scalar_one()
    assert status == "sent"
