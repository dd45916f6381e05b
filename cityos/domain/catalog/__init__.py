"""Catalog: products, variants, prices per currency, volume pricing tiers, categories, sales-channel availability."""
