"""Accounting in ERPNext: what our customers and orders become there (rules.py), and the orders to mirror
(service.py). One Sales Invoice per order (not per vendor order): the buyer paid once, one Payment Entry settles
it, a refund is one credit note against it; each item row names its SKU, the vendor split stays in our ledger."""
