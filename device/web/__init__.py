"""The counter display (FastAPI): page, status JSON, reason choices and the simulation API."""
