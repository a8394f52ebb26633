"""f8lab."""
