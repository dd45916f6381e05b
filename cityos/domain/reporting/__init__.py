"""Reporting: figures read across the other contexts (nothing in the domain imports it)."""
