"""GraphQL of promotions: a store's discount codes and automatic promotions, their approval, campaign reports."""
