"""The deployment plan's required seed data, as plain values."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

CURRENCIES = (
    ("usd", "US Dollar", "$", 2),
    ("eur", "Euro", "€", 2),
    ("gbp", "Pound Sterling", "£", 2),
    ("cad", "Canadian Dollar", "CA$", 2),
    ("jpy", "Yen", "¥", 0),
)
PAYMENT_PROVIDERS = ("stripe",)

US_REGION = {"name": "United States", "currency_code": "usd", "country_code": "us", "country_codes": ["us"],
             "tax_rate": Decimal("0")}
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

# Shipping options of the US region: (code, name, amount in cents, offered from this subtotal)
SHIPPING_OPTIONS = (
    ("standard", "Standard (3-5 business days)", 500, None),
    ("express", "Express (1-2 business days)", 1500, None),
    ("free", "Free shipping on orders of $50 or more", 0, 5000),
)

# Demo marketplace: three vendors of the demo store, categories, and sample products.
DEMO_VENDORS = (
    ("northwind-outfitters", "Northwind Outfitters", "sales@northwind.example"),
    ("lumen-home", "Lumen Home", "hello@lumen.example"),
    ("cedar-pantry", "Cedar Pantry", "orders@cedar.example"),
)
DEMO_CATEGORIES = (("apparel", "Apparel", None), ("tops", "Tops", "apparel"), ("home", "Home", None),
                   ("pantry", "Pantry", None))
# (vendor, handle, title, description, category, [(sku, title, options, stock, price_usd_cents)], tiers)
DEMO_PRODUCTS: tuple[tuple[Any, ...], ...] = (
    ("northwind-outfitters", "merino-tee", "Merino Tee", "A breathable merino wool t-shirt for every season.",
     "tops", [("NW-TEE-S", "Small", {"size": "S"}, 40, 4500), ("NW-TEE-M", "Medium", {"size": "M"}, 60, 4500),
              ("NW-TEE-L", "Large", {"size": "L"}, 25, 4500)], []),
    ("northwind-outfitters", "trail-socks", "Trail Socks", "Cushioned hiking socks, sold by the pair.",
     "apparel", [("NW-SOCK-1", "One size", {"size": "one"}, 500, 1200)],
     [(10, "9", None), (50, None, 800)]),
    ("lumen-home", "linen-throw", "Linen Throw", "A stonewashed linen throw blanket.",
     "home", [("LU-THROW-OAT", "Oat", {"color": "oat"}, 15, 8900), ("LU-THROW-SLATE", "Slate", {"color": "slate"}, 8,
                                                                        8900)], []),
    ("lumen-home", "beeswax-candle", "Beeswax Candle", "Hand-poured beeswax candle, 40 hours of light.",
     "home", [("LU-CANDLE", "Standard", {}, 120, 2400)], [(12, "10", None)]),
    ("cedar-pantry", "wildflower-honey", "Wildflower Honey", "Raw wildflower honey from small apiaries.",
     "pantry", [("CP-HONEY-12", "12 oz", {"size": "12oz"}, 200, 1400), ("CP-HONEY-32", "32 oz", {"size": "32oz"}, 80,
                                                                         3200)], []),
    ("cedar-pantry", "single-origin-coffee", "Single-Origin Coffee", "Whole-bean coffee, roasted to order.",
     "pantry", [("CP-COFFEE-1LB", "1 lb", {"size": "1lb"}, 90, 1900)], [(5, "5", None), (20, None, 1500)]),
)
