"""Recurring billing: subscription plans, customer subscriptions and their billing cycles."""
