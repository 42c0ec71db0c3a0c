"""The harness that runs the real parts for tests, benches and HIL runs: Mosquitto and PostgreSQL on
free loopback ports (``mosquitto``, ``pg``), kiosk processes (``kiosk_proc``), simulated kiosk traffic
and attacks over MQTT (``kiosk_sim``, ``attacks``), the gateway served in a thread (``gateway``),
kiosk wheels built from this checkout (``wheels``) and the one polling helper (``wait``).

tests/, bench/ and hil/ import it from here; bench/ and hil/ never import tests/. It lives in hil/
because it is the loop HIL runs the system in (a real Pi or a simulated one); tests/support/ and the
old module paths in tests/ re-export it for the tests.

Everything here binds to 127.0.0.1 only and waits by polling with generous timeouts (the machine
may be shared), never by fixed sleeps.
"""
