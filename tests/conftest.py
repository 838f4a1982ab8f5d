"""Shared pytest configuration. Tier fixtures live next to the tests that need them."""
