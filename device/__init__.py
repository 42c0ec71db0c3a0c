"""MotCua Edge counter kiosk runtime."""

__version__ = "0.1.0"
