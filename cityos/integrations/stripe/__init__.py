"""Stripe through the official SDK (StripeClient, async methods)."""
