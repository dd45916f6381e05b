"""Marketplace: vendors (commission, payouts and Stripe Connect come with the marketplace-money issue)."""
