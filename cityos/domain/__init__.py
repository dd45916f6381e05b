"""Bounded contexts: each has models.py (tables), rules.py (pure rules) and service.py (use cases)."""
