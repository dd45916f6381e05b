"""Orders: an order per paid cart, split into one vendor order per vendor."""
