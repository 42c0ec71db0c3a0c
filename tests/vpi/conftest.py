"""Fixtures for the virtual-Pi area: the provisioning tests' real gateway on the test's Mosquitto."""

from tests.provisioning.conftest import gateway  # noqa: F401 - pytest fixture
