"""Hardware-in-the-loop scenarios for the counter kiosk (real Pi or simulated hardware)."""
