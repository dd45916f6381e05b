"""Decisions by cached query plans (`SharedDecisions`, every HTTP request's and live event's `Authorizer`): the PDP's
query plan per (principal shape, kind, action), evaluated in-process, equals the PDP's own CheckResources answer for
every resource kind of policies/, every role and attribute combinations that take each policy condition both ways;
a warm plan costs no PDP call per decision; a plan the evaluator cannot read is refused, not guessed."""

from __future__ import annotations

import asyncio
import itertools
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from cityos.auth.authz import (
    MAX_RESOURCES_PER_REQUEST,
    Authorizer,
    PdpCounter,
    ResourceRef,
    SharedDecisions,
    UnsupportedPlan,
    evaluate_plan,
)
from cityos.auth.pdp import create_pdp_client
from cityos.auth.principal import Principal, anonymous, guest_of
from cityos.errors import Unavailable

POLICIES = Path(__file__).resolve().parents[2] / "policies"
TENANT, OTHER_TENANT = uuid.uuid4(), uuid.uuid4()
STORE, OTHER_STORE = uuid.uuid4(), uuid.uuid4()
VENDOR, OTHER_VENDOR = str(uuid.uuid4()), str(uuid.uuid4())
COMPANY, OTHER_COMPANY = str(uuid.uuid4()), str(uuid.uuid4())
SUBJECT, OTHER_SUBJECT = "user-1", "user-2"
HASH, OTHER_HASH = "a" * 64, "b" * 64
EMAIL, OTHER_EMAIL = "buyer@example.com", "someone@example.com"
PLAIN = "plain-tenant"  # a tenant slug without scoped policies
ATTRIBUTE = re.compile(r"R\.attr\.(\w+)")
LITERAL = re.compile(r'R\.attr\.(\w+)\s*[!=]=\s*"([^"]*)"')

# The values an attribute takes: the principals' own and others' (and empty), so that every relationship of
# policies/derived_roles.yaml and every condition holds for some resources and not for others.
VALUES: dict[str, list[str]] = {
    "tenant_id": [str(TENANT), str(OTHER_TENANT)],
    "store_id": [str(STORE), str(OTHER_STORE)],
    "vendor_id": [VENDOR, OTHER_VENDOR, ""],
    "company_id": [COMPANY, OTHER_COMPANY, ""],
    "customer_id": [SUBJECT, OTHER_SUBJECT, ""],
    "access_token_hash": [HASH, OTHER_HASH, ""],
    "email": [EMAIL, OTHER_EMAIL, ""],
    "store_ids": [str(STORE), f"{OTHER_STORE},{STORE}", str(OTHER_STORE), ""],
    "vendor_ids": [VENDOR, f"{OTHER_VENDOR},{VENDOR}", OTHER_VENDOR, ""],
}


@dataclass
class Kind:
    """What policies/ say about one resource kind: its actions, the attributes its rules read (through derived
    roles too), the literals its conditions compare attributes with, and the scopes with their own policies."""

    name: str
    actions: set[str] = field(default_factory=set)
    attributes: set[str] = field(default_factory=set)
    literals: dict[str, set[str]] = field(default_factory=dict)
    scopes: set[str] = field(default_factory=set)

    def read(self, text: str) -> None:
        self.attributes.update(ATTRIBUTE.findall(text))
        for attribute, literal in LITERAL.findall(text):
            self.literals.setdefault(attribute, set()).add(literal)

    def values(self, attribute: str) -> list[str]:
        literals = sorted(self.literals.get(attribute, ()))
        return VALUES.get(attribute) or [*literals, "other", ""]

    def resources(self) -> Iterator[ResourceRef]:
        """Every combination of the attributes' values, then each attribute missing once (the PDP: no such key)."""
        names = sorted(self.attributes)
        for combination in itertools.product(*(self.values(name) for name in names)):
            yield ResourceRef.of(self.name, uuid.uuid4(), **dict(zip(names, combination, strict=True)))
        for missing in names:
            yield ResourceRef.of(self.name, uuid.uuid4(), **{name: self.values(name)[0] for name in names
                                                             if name != missing})


def kinds() -> list[Kind]:
    derived: dict[str, str] = {}
    found: dict[str, Kind] = {}
    for path in sorted(POLICIES.glob("**/*.yaml")):
        if "tests" in path.relative_to(POLICIES).parts:
            continue
        document = yaml.safe_load(path.read_text())
        if "derivedRoles" in document:
            for definition in document["derivedRoles"]["definitions"]:
                derived[definition["name"]] = yaml.safe_dump(definition.get("condition", {}))
            continue
        policy = document["resourcePolicy"]
        kind = found.setdefault(policy["resource"], Kind(policy["resource"]))
        if policy.get("scope"):
            kind.scopes.add(policy["scope"])
        for rule in policy["rules"]:
            kind.actions.update(action for action in rule["actions"] if action != "*")
            kind.read(yaml.safe_dump(rule.get("condition", {})))
            kind.attributes.add("tenant_id")
    for path in sorted(POLICIES.glob("**/*.yaml")):  # the derived roles' attributes, once every role is known
        document = yaml.safe_load(path.read_text())
        for rule in document.get("resourcePolicy", {}).get("rules", []):
            for role in rule.get("derivedRoles", []):
                found[document["resourcePolicy"]["resource"]].read(derived[role])
    for kind in found.values():
        kind.actions.add("not_in_any_policy")  # denied to all but super_admin ("*")
    return sorted(found.values(), key=lambda kind: kind.name)


def principals(slug: str) -> list[Principal]:
    def of(*roles: str, **attributes: Any) -> Principal:
        return Principal(id=SUBJECT, roles=frozenset(roles), tenant_id=TENANT, tenant_slug=slug,
                         authenticated=True, **attributes)

    return [
        of("super_admin"), Principal(id=SUBJECT, roles=frozenset({"super_admin"}), authenticated=True),
        of("tenant_admin"), of("tenant_admin", storefront_id=STORE),
        of("store_admin", store_ids=(STORE,)), of("store_admin", store_ids=(OTHER_STORE, STORE)), of("store_admin"),
        of("vendor_admin", vendor_id=VENDOR), of("vendor_admin", vendor_id=VENDOR, storefront_id=STORE),
        of("vendor_user", vendor_id=VENDOR), of("vendor_user", vendor_id=VENDOR, storefront_id=STORE),
        of("customer", storefront_id=STORE, email=EMAIL), of("customer", storefront_id=STORE, access_token_hash=HASH),
        of("customer"),
        of("company_admin", company_id=COMPANY, company_role="company_admin", storefront_id=STORE, email=EMAIL),
        of("company_buyer", company_id=COMPANY, company_role="company_buyer", storefront_id=STORE),
        of("company_buyer", company_id=COMPANY, company_role="approver", storefront_id=STORE),
        of("company_buyer", company_id=COMPANY, storefront_id=STORE),  # a membership not checked: no company_role
        of("tenant_admin", "customer", storefront_id=STORE),
        guest_of(TENANT, slug, STORE),
        Principal(id="guest", roles=frozenset({"guest"}), tenant_id=TENANT, tenant_slug=slug, storefront_id=STORE,
                  access_token_hash=HASH),
        anonymous(),
    ]


def test_the_policies_are_read_for_every_kind() -> None:
    found = {kind.name: kind for kind in kinds()}
    assert len(found) == len([path for path in POLICIES.glob("*.yaml") if path.name != "derived_roles.yaml"])
    assert {"tenant_id", "store_id", "customer_id", "company_id", "access_token_hash"} <= found["order"].attributes
    assert found["product"].literals["status"] == {"published"}
    assert found["vendor_order"].scopes == {"acme"}
    assert {"vendor_ids", "customer_id", "company_id"} <= found["quote"].attributes


async def test_planned_decisions_equal_the_pdps_checks_for_every_kind_role_and_condition(cerbos: Any) -> None:
    pdp = create_pdp_client(cerbos.url, timeout_seconds=30)  # thousands of calls: equality, not latency, is tested
    mismatches: list[tuple[Any, ...]] = []
    unread: set[tuple[str, str, tuple[str, ...]]] = set()  # plans the evaluator left to the PDP
    outcomes: dict[str, set[bool]] = {}  # per kind: some resources allowed, some denied
    try:
        for kind in kinds():
            resources = list(kind.resources())
            complete = len(resources) - len(kind.attributes)  # the first ones carry every attribute
            for slug in (PLAIN, *sorted(kind.scopes)):
                for principal in principals(slug):
                    counter = PdpCounter()
                    planned = Authorizer(pdp, principal, counter, SharedDecisions(ttl=3600))
                    checked = Authorizer(pdp, principal, PdpCounter())
                    answers = await _checked(checked, resources, sorted(kind.actions))
                    for action in sorted(kind.actions):
                        expected = answers[action]
                        checks = counter.check_calls
                        got = await planned.visible(resources, lambda resource: resource, action)
                        if counter.check_calls > checks:
                            every = await _every_complete_one_planned(pdp, principal, resources[:complete], action)
                            if not every:
                                unread.add((kind.name, action, tuple(sorted(principal.roles))))
                        if got != expected:
                            mismatches.append((kind.name, action, slug, principal, sorted(
                                {resource.attrs for resource in set(got) ^ set(expected)})[:3]))
                        one = resources[0]
                        if (await planned.allowed(one, action)) != (one in set(expected)):
                            mismatches.append((kind.name, action, slug, principal, "allowed", one.attrs))
                        outcomes.setdefault(kind.name, set()).update({bool(expected), len(expected) < len(resources)})
                    assert counter.plan_calls == len(kind.actions), (kind.name, principal)  # one per action
    finally:
        await pdp.close()
    assert not mismatches, mismatches[:5]
    assert not unread, sorted(unread)
    assert outcomes == {kind.name: {True, False} for kind in kinds()}


async def _checked(authorizer: Authorizer, resources: list[ResourceRef], actions: list[str]
                   ) -> dict[str, list[ResourceRef]]:
    """The PDP's CheckResources answers per action: each request carries at most 50 resources with all the actions,
    one request at a time (gentle on a shared machine: the PDP's deadline is 2 s)."""
    allowed: dict[str, list[ResourceRef]] = {action: [] for action in actions}
    for start in range(0, len(resources), MAX_RESOURCES_PER_REQUEST):
        chunk = [(resource, action) for resource in resources[start:start + MAX_RESOURCES_PER_REQUEST]
                 for action in actions]
        decisions = await asyncio.gather(*(authorizer.checked(resource, action) for resource, action in chunk))
        for (resource, action), decision in zip(chunk, decisions, strict=True):
            if decision:
                allowed[action].append(resource)
    return allowed


async def _every_complete_one_planned(pdp: Any, principal: Principal, resources: list[ResourceRef],
                                      action: str) -> bool:
    """Whether the plan decides every resource that carries all its attributes (no CheckResources)."""
    counter = PdpCounter()
    await Authorizer(pdp, principal, counter, SharedDecisions()).visible(resources, lambda resource: resource, action)
    return counter.check_calls == 0


class Unreachable:
    """A PDP whose every call fails (as a gRPC error would)."""

    async def plan_resources(self, *_: Any) -> Any:
        raise ConnectionError("the PDP is down")

    async def check_resources(self, *_: Any) -> Any:
        raise ConnectionError("the PDP is down")


async def test_a_warm_plan_decides_without_the_pdp_for_its_ttl_and_a_pdp_error_is_not_cached(cerbos: Any) -> None:
    pdp = create_pdp_client(cerbos.url)
    now = [0.0]
    try:
        shared = SharedDecisions(ttl=5, clock=lambda: now[0])
        counter = PdpCounter()
        with pytest.raises(Unavailable):  # fails closed, and the failure is not kept
            await Authorizer(Unreachable(), guest_of(TENANT, PLAIN, STORE), counter, shared).require(
                ResourceRef.of("cart", uuid.uuid4(), tenant_id=TENANT, store_id=STORE, customer_id=""), "read")
        guest = Authorizer(pdp, guest_of(TENANT, PLAIN, STORE), counter, shared)
        carts = [ResourceRef.of("cart", uuid.uuid4(), tenant_id=TENANT, store_id=store, customer_id=customer)
                 for store in (STORE, OTHER_STORE) for customer in ("", SUBJECT)]
        assert await guest.visible(carts, lambda cart: cart) == carts[:1]
        assert (counter.plan_calls, counter.check_calls) == (2, 0)
        for _ in range(3):  # later requests of the same principal shape: no PDP call
            again = guest.for_principal(guest_of(TENANT, PLAIN, STORE))
            assert [await again.allowed(cart, "read") for cart in carts] == [True, False, False, False]
        assert (counter.plan_calls, counter.check_calls) == (2, 0)
        # An object the plan cannot decide (an attribute missing): one CheckResources, shared for the TTL, asked
        # again after it, even by the same long-lived authorizer (a WebSocket's).
        unread = ResourceRef.of("cart", uuid.uuid4(), tenant_id=TENANT, store_id=STORE)
        assert [await guest.allowed(unread, "read") for _ in range(3)] == [False] * 3
        assert (counter.plan_calls, counter.check_calls) == (2, 1)
        now[0] += 5
        assert await guest.allowed(unread, "read") is False
        assert await guest.allowed(carts[0], "read") is True
        assert (counter.plan_calls, counter.check_calls) == (3, 2)
    finally:
        await pdp.close()


async def test_the_shared_caches_stay_bounded(cerbos: Any) -> None:
    pdp = create_pdp_client(cerbos.url)
    try:
        shared = SharedDecisions(max_entries=4)
        cart = ResourceRef.of("cart", "c1", tenant_id=TENANT, store_id=STORE, customer_id="")
        for number in range(20):  # a principal shape each: a plan each
            customer = Principal(id=f"customer-{number}", roles=frozenset({"customer"}), tenant_id=TENANT,
                                 tenant_slug=PLAIN, storefront_id=STORE, authenticated=True)
            assert await Authorizer(pdp, customer, PdpCounter(), shared).allowed(cart, "read") is True
            assert len(shared._plans) <= 4
    finally:
        await pdp.close()


def test_a_plan_this_evaluator_cannot_read_is_refused_not_guessed() -> None:
    resource = ResourceRef.of("order", "o1", tenant_id="t1", status="paid")
    condition = {"expression": {"operator": "eq", "operands": [{"variable": "request.resource.attr.tenant_id"},
                                                               {"value": "t1"}]}}
    assert evaluate_plan(condition, resource) is True
    assert evaluate_plan({"expression": {"operator": "not", "operands": [condition]}}, resource) is False
    assert evaluate_plan({"expression": {"operator": "in", "operands": [
        {"variable": "request.resource.attr.tenant_id"}, {"value": ["t0", "t1"]}]}}, resource) is True
    status = {"variable": "request.resource.attr.status"}
    assert evaluate_plan({"expression": {"operator": "contains", "operands": [status, {"value": "ai"}]}},
                         resource) is True
    assert evaluate_plan({"expression": {"operator": "startsWith", "operands": [status, {"value": "ai"}]}},
                         resource) is False
    for unreadable in ({"expression": {"operator": "hasIntersection", "operands": []}},
                       {"variable": "request.resource.attr.missing"}, {"variable": "request.principal.id"},
                       {"expression": {"operator": "in", "operands": [{"value": "a"}, {"value": "abc"}]}},
                       {"expression": {"operator": "in", "operands": [status, {"value": ["paid", 1]}]}},
                       {"expression": {"operator": "eq", "operands": [status, {"value": 1}]}},
                       {"expression": {"operator": "ne", "operands": [status, {"value": True}]}},
                       {"expression": {"operator": "lt", "operands": [status, {"value": ["paid"]}]}},
                       {"expression": {"operator": "not", "operands": [status]}},
                       {"expression": {"operator": "contains", "operands": [{"value": ["paid"]}, status]}},
                       {"expression": {"operator": "and", "operands": []}}):
        with pytest.raises(UnsupportedPlan):
            evaluate_plan(unreadable, resource)
