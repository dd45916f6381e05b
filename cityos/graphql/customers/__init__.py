"""Customer accounts: `me` (profile, address book, orders) and the customer's own mutations."""
