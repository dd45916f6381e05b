"""Invitations by email: a company admin invites an email with a company role and a spending limit; the invitee,
signed in with that email verified (Keycloak's `email_verified` claim), accepts with the token and becomes a user
of the company. Only the token's SHA-256 is stored; the token itself travels once, in the `b2b.invitation` outbox
message a notifier mails (it carries everything the mail needs). Inviting the same email again (re-invite) gives
the row a new token and expiry, and the old token no longer works; a revoked invitation is never accepted."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from cityos.domain.b2b import rules
from cityos.domain.b2b.models import (
    CompanyInvitation,
    CompanyRole,
    CompanyStatus,
    CompanyUserStatus,
    InvitationStatus,
    SpendingPeriod,
)
from cityos.domain.b2b.service import COMPANY, COMPANY_USER, add_company_user
from cityos.domain.base import table_of
from cityos.domain.kernel import validate_email
from cityos.domain.platform.outbox import enqueue
from cityos.errors import Conflict, Forbidden, InvalidStateTransition, NotFound

INVITATION = table_of(CompanyInvitation)
TOPIC = "b2b.invitation"


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def invite(connection: AsyncConnection, company: Row[Any], *, email: str, role: CompanyRole,
                 limit: rules.SpendingLimit, invited_by: str, now: datetime) -> tuple[Row[Any], str]:
    """Invite (or re-invite) an email: the invitation row and its token (returned once, never stored)."""
    email = validate_email(email)
    if company.status != CompanyStatus.ACTIVE:
        raise InvalidStateTransition("the company is suspended", **{"from": company.status, "to": "invited"})
    member = (await connection.execute(select(COMPANY_USER.c.id).where(
        COMPANY_USER.c.company_id == company.id, func.lower(COMPANY_USER.c.email) == email,
        COMPANY_USER.c.status == CompanyUserStatus.ACTIVE.value))).first()
    if member is not None:
        raise Conflict("this email is already a user of the company", field="email")
    token = "inv_" + secrets.token_urlsafe(32)
    values = {"role": role.value, "order_limit": limit.order_limit, "period_limit": limit.period_limit,
              "limit_period": limit.period.value if limit.period else None, "token_hash": token_hash(token),
              "status": InvitationStatus.PENDING.value, "expires_at": rules.invitation_expiry(now),
              "invited_by": invited_by, "accepted_by": None, "accepted_at": None}
    existing = (await connection.execute(select(INVITATION.c.id).where(
        INVITATION.c.company_id == company.id, INVITATION.c.email == email).with_for_update())).first()
    if existing is not None:
        row = (await connection.execute(update(INVITATION).where(INVITATION.c.id == existing.id).values(
            **values, updated_at=func.now()).returning(*INVITATION.c))).one()
    else:
        row = (await connection.execute(insert(INVITATION).values(
            tenant_id=company.tenant_id, id=uuid.uuid4(), company_id=company.id, email=email, **values)
            .returning(*INVITATION.c))).one()
    await enqueue(connection, tenant_id=company.tenant_id, topic=TOPIC, payload={
        "kind": "company_invitation", "to": email, "invitation_id": str(row.id), "company_id": str(company.id),
        "company_name": company.legal_name, "role": role.value, "token": token, "invited_by": invited_by,
        "expires_at": row.expires_at.isoformat(), "accept_with": "acceptCompanyInvitation(token)"})
    return row, token


async def revoke(connection: AsyncConnection, invitation_id: uuid.UUID) -> Row[Any]:
    revoked = (await connection.execute(update(INVITATION).where(
        INVITATION.c.id == invitation_id, INVITATION.c.status == InvitationStatus.PENDING.value).values(
        status=InvitationStatus.REVOKED.value, updated_at=func.now()).returning(*INVITATION.c))).first()
    if revoked is None:
        status = (await connection.execute(select(INVITATION.c.status).where(
            INVITATION.c.id == invitation_id))).scalar_one()
        raise InvalidStateTransition(f"the invitation is {status}", **{"from": status, "to": "revoked"})
    return revoked


async def find(connection: AsyncConnection, token: str) -> Row[Any]:
    row = (await connection.execute(select(INVITATION).where(INVITATION.c.token_hash == token_hash(token))
                                    .with_for_update())).first()
    if row is None:
        raise NotFound("no invitation with that token")
    return row


async def accept(connection: AsyncConnection, invitation: Row[Any], *, customer_id: str, email: str | None,
                 now: datetime) -> Row[Any]:
    """The signed-in customer with the invitation's verified email joins the company with its role and limit."""
    if not email or email.lower() != invitation.email:
        raise Forbidden("accept the invitation signed in with the invited email, verified")
    rules.check_acceptable_invitation(invitation.status, invitation.expires_at, now)
    company = (await connection.execute(select(COMPANY).where(COMPANY.c.id == invitation.company_id))).one()
    if company.status != CompanyStatus.ACTIVE:
        raise InvalidStateTransition("the company is suspended", **{"from": company.status, "to": "accepted"})
    limit = rules.SpendingLimit(invitation.order_limit, invitation.period_limit,
                                SpendingPeriod(invitation.limit_period) if invitation.limit_period else None)
    user = await add_company_user(connection, company, customer_id=customer_id, email=invitation.email,
                                  role=CompanyRole(invitation.role), limit=limit)
    await connection.execute(update(INVITATION).where(INVITATION.c.id == invitation.id).values(
        status=InvitationStatus.ACCEPTED.value, accepted_by=customer_id, accepted_at=now, updated_at=func.now()))
    return user
