"""Customer accounts: a signed-in customer's profile and address book, reorders, and claiming guest orders."""
