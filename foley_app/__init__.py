"""The Foley editor (Qt)."""
