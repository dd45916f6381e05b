"""Tenancy: tenants, stores, their domains, sales channels and publishable API keys."""
