"""The upward feed (hourly anonymous aggregates per office: produce, serve, push) and the province hub
that ingests several commune gateways' feeds. See docs/gateway.md "Upward feed and province hub"."""
