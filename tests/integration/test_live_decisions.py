"""Live events are authorized by the PDP's query plan, cached per principal shape and evaluated in-process: the
decisions equal the PDP's own CheckResources answers for every role and every kind of event resource, and a warm
plan costs no PDP call per event."""

from __future__ import annotations

import itertools
import uuid
from typing import Any

import pytest

from cityos.auth.authz import (
    Authorizer,
    PdpCounter,
    ResourceRef,
    SharedDecisions,
    UnsupportedPlan,
    evaluate_plan,
)
from cityos.auth.pdp import create_pdp_client
from cityos.auth.principal import Principal, guest_of

TENANT, OTHER_TENANT = uuid.uuid4(), uuid.uuid4()
STORE, OTHER_STORE = uuid.uuid4(), uuid.uuid4()
VENDOR, OTHER_VENDOR = str(uuid.uuid4()), str(uuid.uuid4())
CUSTOMER, OTHER_CUSTOMER = "customer-1", "customer-2"


def principals(slug: str) -> list[Principal]:
    def of(subject: str, *roles: str, **attributes: Any) -> Principal:
        return Principal(id=subject, roles=frozenset(roles), tenant_id=TENANT, tenant_slug=slug,
                         authenticated=True, **attributes)

    return [of("admin", "tenant_admin"), of("store-admin", "store_admin", store_ids=(STORE,)),
            of("vendor", "vendor_admin", vendor_id=VENDOR), of("vendor-user", "vendor_user", vendor_id=VENDOR),
            of(CUSTOMER, "customer", storefront_id=STORE), of("buyer", "company_buyer", company_id="c1"),
            of("root", "super_admin"), guest_of(TENANT, slug, STORE)]


def resources() -> list[ResourceRef]:
    found = []
    for kind, tenant, store, vendor, customer in itertools.product(
            ("order", "shipment", "vendor_order"), (TENANT, OTHER_TENANT), (STORE, OTHER_STORE),
            (VENDOR, OTHER_VENDOR, ""), (CUSTOMER, OTHER_CUSTOMER, "")):
        attributes: dict[str, Any] = {"tenant_id": tenant, "store_id": store}
        if kind != "order":
            attributes["vendor_id"] = vendor
        if kind != "vendor_order":
            attributes["customer_id"] = customer
        found.append(ResourceRef.of(kind, uuid.uuid4(), **attributes))
    return found


async def test_planned_decisions_equal_the_pdps_checks(cerbos: Any) -> None:
    pdp = create_pdp_client(cerbos.url)
    try:
        for slug in ("plain-tenant", "acme"):  # acme has scoped policies (policies/tenants)
            shared = SharedDecisions(ttl=3600)
            for principal in principals(slug):
                counter = PdpCounter()
                planned = Authorizer(pdp, principal, counter)
                checked = Authorizer(pdp, principal, PdpCounter())
                for resource in resources():
                    expected = await checked.allowed(resource, "read")
                    assert await shared.allowed(planned, resource, "read") == expected, (slug, principal.roles,
                                                                                          resource)
                assert counter.check_calls == 0, principal.roles  # every event decided by the cached plan
                assert counter.plan_calls <= 3  # one plan per kind, whatever the number of events
            assert shared.planned == len(principals(slug)) * len(resources())
    finally:
        await pdp.close()


def test_a_plan_this_evaluator_cannot_read_is_refused_not_guessed() -> None:
    resource = ResourceRef.of("order", "o1", tenant_id="t1")
    condition = {"expression": {"operator": "eq", "operands": [{"variable": "request.resource.attr.tenant_id"},
                                                               {"value": "t1"}]}}
    assert evaluate_plan(condition, resource) is True
    for unreadable in ({"expression": {"operator": "hasIntersection", "operands": []}},
                       {"variable": "request.resource.attr.missing"}, {"variable": "request.principal.id"},
                       {"expression": {"operator": "in", "operands": [{"value": "a"}, {"value": "abc"}]}}):
        with pytest.raises(UnsupportedPlan):
            evaluate_plan(unreadable, resource)
