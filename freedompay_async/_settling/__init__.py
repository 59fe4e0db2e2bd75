"""Settling what an ambiguous attempt left open by asking the payment's status."""
