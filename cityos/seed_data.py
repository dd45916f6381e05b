"""The deployment plan's required seed data, as plain values."""

from __future__ import annotations

from decimal import Decimal

CURRENCIES = (
    ("usd", "US Dollar", "$", 2),
    ("eur", "Euro", "€", 2),
    ("gbp", "Pound Sterling", "£", 2),
    ("cad", "Canadian Dollar", "CA$", 2),
    ("jpy", "Yen", "¥", 0),
)
PAYMENT_PROVIDERS = ("stripe",)

US_REGION = {"name": "United States", "currency_code": "usd", "country_code": "us", "tax_rate": Decimal("0")}
US_STATES = (
    ("US-AL", "Alabama"), ("US-AK", "Alaska"), ("US-AZ", "Arizona"), ("US-AR", "Arkansas"),
    ("US-CA", "California"), ("US-CO", "Colorado"), ("US-CT", "Connecticut"), ("US-DE", "Delaware"),
    ("US-DC", "District of Columbia"), ("US-FL", "Florida"), ("US-GA", "Georgia"), ("US-HI", "Hawaii"),
    ("US-ID", "Idaho"), ("US-IL", "Illinois"), ("US-IN", "Indiana"), ("US-IA", "Iowa"), ("US-KS", "Kansas"),
    ("US-KY", "Kentucky"), ("US-LA", "Louisiana"), ("US-ME", "Maine"), ("US-MD", "Maryland"),
    ("US-MA", "Massachusetts"), ("US-MI", "Michigan"), ("US-MN", "Minnesota"), ("US-MS", "Mississippi"),
    ("US-MO", "Missouri"), ("US-MT", "Montana"), ("US-NE", "Nebraska"), ("US-NV", "Nevada"),
    ("US-NH", "New Hampshire"), ("US-NJ", "New Jersey"), ("US-NM", "New Mexico"), ("US-NY", "New York"),
    ("US-NC", "North Carolina"), ("US-ND", "North Dakota"), ("US-OH", "Ohio"), ("US-OK", "Oklahoma"),
    ("US-OR", "Oregon"), ("US-PA", "Pennsylvania"), ("US-RI", "Rhode Island"), ("US-SC", "South Carolina"),
    ("US-SD", "South Dakota"), ("US-TN", "Tennessee"), ("US-TX", "Texas"), ("US-UT", "Utah"),
    ("US-VT", "Vermont"), ("US-VA", "Virginia"), ("US-WA", "Washington"), ("US-WV", "West Virginia"),
    ("US-WI", "Wisconsin"), ("US-WY", "Wyoming"),
)

DEMO_TENANT = {"slug": "demo", "name": "Demo Tenant"}
DEMO_STORE = {"handle": "demo-store", "name": "Demo Store", "default_currency_code": "usd"}
DEMO_DOMAIN = "demo.localhost"
DEMO_KEY_TITLE = "Demo storefront"
