"""Simulation drivers for the demo (they only use the kiosk's HTTP sim API)."""
