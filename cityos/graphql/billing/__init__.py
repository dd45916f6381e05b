"""GraphQL of recurring billing: subscription plans, customer subscriptions and their billing cycles."""
