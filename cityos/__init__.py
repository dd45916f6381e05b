"""CityOS Commerce."""
