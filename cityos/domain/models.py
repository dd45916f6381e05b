"""Every table, imported once so that Base.metadata is complete (Alembic and tests read it)."""

from cityos.domain.base import Base
from cityos.domain.commerce.models import Currency, PaymentProvider, Region, RegionState
from cityos.domain.tenancy.models import PublishableApiKey, SalesChannel, Store, StoreDomain, Tenant

TENANT_OWNED_TABLES = tuple(
    table.name for table in Base.metadata.sorted_tables if "tenant_id" in table.c and table.name != "audit_log"
)

__all__ = [
    "TENANT_OWNED_TABLES",
    "Base",
    "Currency",
    "PaymentProvider",
    "PublishableApiKey",
    "Region",
    "RegionState",
    "SalesChannel",
    "Store",
    "StoreDomain",
    "Tenant",
]
