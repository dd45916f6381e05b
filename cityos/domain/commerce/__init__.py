"""Commerce: currencies, regions and their states, payment providers (carts and orders come later)."""
