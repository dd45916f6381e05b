"""Fleetbase (delivery): orders created and canceled through the outbox; webhooks move shipments."""
