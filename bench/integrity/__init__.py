"""Attack bench: issue 8's attacks at volume against Mosquitto and a gateway (python -m bench.integrity)."""
