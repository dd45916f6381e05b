"""Strawberry types per context, Relay plumbing, and the assembled schema (api.py)."""
