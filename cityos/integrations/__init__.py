"""Clients, webhooks and syncs of the external systems: Stripe, Fleetbase, ERPNext, Payload, Keycloak."""
