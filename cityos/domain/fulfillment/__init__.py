"""Fulfillment: shipments (one per vendor order, delivered through Fleetbase) and their tracking events."""
