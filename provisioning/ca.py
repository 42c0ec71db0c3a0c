"""A small operator certificate authority: ECDSA P-256 root, per-device client certificates, CRL.

The CA directory holds ``ca.key`` (0600), ``ca.crt``, ``crl.pem``, ``registry.json`` and
``issued/<serial>.pem``. Device private keys are never kept here: they go only into the device's
first-boot bundle. The registry maps each office counter to the device id holding it, so
provisioning the same counter again (factory reset, SD card swap) issues a new certificate and
revokes the old one.

Certificates are back-dated to 2020-01-01: a Raspberry Pi has no real-time clock and may boot with
a stale date until NTP answers; the broker (which has a good clock) still checks expiry.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import ipaddress
import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from contract.topics import DEVICE_ID_RE, OFFICE_CODE_RE

NOT_BEFORE = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
CA_DAYS = 20 * 365
DEVICE_DAYS = 10 * 365
CRL_DAYS = 365
# The gateway's MQTT identity. A '.' cannot appear in a device id, so no kiosk can be issued this CN.
GATEWAY_CN = "motcua.gateway"
_CN_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{1,63}$")


class CAError(RuntimeError):
    """An operator mistake the CLI reports in plain words."""


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _write(path: Path, data: bytes, mode: int) -> None:
    """Atomic write with the final mode set before the content lands."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.fchmod(fd, mode)
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def default_device_id(office: str, counter: int) -> str:
    return f"k-{office.lower()}-{counter:02d}"


@dataclass
class Issued:
    device_id: str
    key_pem: bytes
    cert_pem: bytes
    serial: str
    revoked: list[str]  # serials revoked because this issue replaced them


class CA:
    """An initialised CA directory. Use :func:`init_ca` or :func:`open_ca`."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.key = serialization.load_pem_private_key((self.path / "ca.key").read_bytes(), None)
        self.cert = x509.load_pem_x509_certificate((self.path / "ca.crt").read_bytes())

    # ------------------------------------------------------------------ registry
    @property
    def registry_path(self) -> Path:
        return self.path / "registry.json"

    def registry(self) -> dict:
        return json.loads(self.registry_path.read_text())

    def _save(self, reg: dict) -> None:
        _write(self.registry_path, json.dumps(reg, indent=1, sort_keys=True).encode(), 0o600)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[dict]:
        with open(self.path / ".lock", "w") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            reg = self.registry()
            yield reg
            self._save(reg)

    # ------------------------------------------------------------------ issuing
    def _build(self, cn: str, ou: str | None, public_key, days: int, server_names: list[str] | None = None,
               client: bool = True) -> x509.Certificate:
        name = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, "MotCua Edge")]
        if ou:
            name.append(x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, ou))
        name.append(x509.NameAttribute(NameOID.COMMON_NAME, cn))
        builder = (x509.CertificateBuilder()
                   .subject_name(x509.Name(name)).issuer_name(self.cert.subject)
                   .public_key(public_key).serial_number(x509.random_serial_number())
                   .not_valid_before(NOT_BEFORE).not_valid_after(utcnow() + dt.timedelta(days=days))
                   .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                   .add_extension(x509.KeyUsage(digital_signature=True, key_encipherment=False,
                                                content_commitment=False, data_encipherment=False,
                                                key_agreement=True, key_cert_sign=False, crl_sign=False,
                                                encipher_only=False, decipher_only=False), critical=True)
                   .add_extension(x509.ExtendedKeyUsage(
                       [ExtendedKeyUsageOID.CLIENT_AUTH] if client else [ExtendedKeyUsageOID.SERVER_AUTH]),
                       critical=False)
                   .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()),
                                  critical=False))
        crl_url = self.registry().get("crl_url")
        if crl_url:  # EMQX fetches CRLs from here (and needs the matching IDP in the CRL)
            builder = builder.add_extension(x509.CRLDistributionPoints([x509.DistributionPoint(
                [x509.UniformResourceIdentifier(crl_url)], None, None, None)]), critical=False)
        if server_names:
            sans: list[x509.GeneralName] = []
            for n in server_names:
                try:
                    sans.append(x509.IPAddress(ipaddress.ip_address(n)))
                except ValueError:
                    sans.append(x509.DNSName(n))
            builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
        cert = builder.sign(self.key, hashes.SHA256())
        _write(self.path / "issued" / f"{cert.serial_number:x}.pem", cert_pem(cert), 0o644)
        return cert

    def issue_device(self, office: str, counter: int, device_id: str | None = None) -> Issued:
        """New key + client certificate (CN=device id, OU=office) for an office counter.

        Any earlier certificate for the same counter or the same device id is revoked.
        """
        if not OFFICE_CODE_RE.match(office):
            raise CAError(f"mã điểm một cửa không hợp lệ / invalid office code: {office!r}")
        if not 1 <= counter <= 999:
            raise CAError(f"số quầy phải từ 1 đến 999 / counter must be 1-999: {counter}")
        device_id = device_id or default_device_id(office, counter)
        if not DEVICE_ID_RE.match(device_id):
            raise CAError(f"mã thiết bị không hợp lệ / invalid device id: {device_id!r}")
        key = new_key()
        with self._locked() as reg:
            slot = f"{office}/{counter}"
            revoked: list[str] = []
            holders = {reg["slots"].get(slot), device_id} - {None}
            for old_id in sorted(holders):
                if reg["devices"].get(old_id, {}).get("status") == "active":
                    revoked.append(self._revoke_entry(reg, old_id, "superseded"))
            cert = self._build(device_id, office, key.public_key(), DEVICE_DAYS)
            serial = f"{cert.serial_number:x}"
            reg["devices"][device_id] = {
                "office": office, "counter": counter, "slot": slot, "serial": serial, "status": "active",
                "issued_at": utcnow().isoformat(timespec="seconds"),
                "not_after": cert.not_valid_after_utc.isoformat(timespec="seconds"),
                "generation": reg["devices"].get(device_id, {}).get("generation", 0) + 1,
            }
            reg["slots"][slot] = device_id
        if revoked:
            self.write_crl()
        return Issued(device_id, key_pem(key), cert_pem(cert), serial, revoked)

    def issue_service(self, cn: str, server_names: list[str] | None = None) -> tuple[bytes, bytes]:
        """Key + certificate for the broker (server_names given) or the gateway's MQTT client."""
        if not _CN_RE.match(cn) or "." not in cn:
            raise CAError(f"service name {cn!r} must contain a '.' so no device id can equal it")
        key = new_key()
        cert = self._build(cn, "services", key.public_key(), DEVICE_DAYS, server_names,
                           client=server_names is None)
        return key_pem(key), cert_pem(cert)

    # ------------------------------------------------------------------ revocation
    def _revoke_entry(self, reg: dict, device_id: str, reason: str) -> str:
        entry = reg["devices"][device_id]
        entry["status"] = "revoked"
        reg["revoked"].append({"serial": entry["serial"], "device_id": device_id, "reason": reason,
                               "revoked_at": utcnow().isoformat(timespec="seconds")})
        if reg["slots"].get(entry["slot"]) == device_id:
            del reg["slots"][entry["slot"]]
        return entry["serial"]

    def revoke(self, device_id: str, reason: str = "revoked") -> str:
        with self._locked() as reg:
            entry = reg["devices"].get(device_id)
            if entry is None:
                raise CAError(f"không có thiết bị / unknown device: {device_id}")
            if entry["status"] != "active":
                raise CAError(f"thiết bị đã bị thu hồi / already revoked: {device_id}")
            serial = self._revoke_entry(reg, device_id, reason)
        self.write_crl()
        return serial

    def write_crl(self) -> Path:
        """(Re)write crl.pem listing every revoked serial; valid CRL_DAYS days (refresh with `ca crl`)."""
        now = utcnow()
        builder = (x509.CertificateRevocationListBuilder().issuer_name(self.cert.subject)
                   .last_update(now - dt.timedelta(minutes=5)).next_update(now + dt.timedelta(days=CRL_DAYS)))
        reg = self.registry()
        if reg.get("crl_url"):
            builder = builder.add_extension(x509.IssuingDistributionPoint(
                full_name=[x509.UniformResourceIdentifier(reg["crl_url"])], relative_name=None,
                only_contains_user_certs=False, only_contains_ca_certs=False, only_some_reasons=None,
                indirect_crl=False, only_contains_attribute_certs=False), critical=True)
        for r in reg["revoked"]:
            builder = builder.add_revoked_certificate(
                x509.RevokedCertificateBuilder().serial_number(int(r["serial"], 16))
                .revocation_date(dt.datetime.fromisoformat(r["revoked_at"])).build())
        crl = builder.sign(self.key, hashes.SHA256())
        path = self.path / "crl.pem"
        _write(path, crl.public_bytes(serialization.Encoding.PEM), 0o644)
        return path

    def ca_pem(self) -> bytes:
        return cert_pem(self.cert)


def init_ca(path: Path, name: str = "MotCua Edge operator CA", crl_url: str | None = None) -> CA:
    """Create the CA. ``crl_url`` (optional, fixed for the CA's life) is put in every certificate as
    its CRL distribution point, for brokers that fetch CRLs (EMQX); publish crl.pem there."""
    path = Path(path)
    if (path / "ca.key").exists():
        raise CAError(f"đã có CA tại / a CA already exists in {path}")
    path.mkdir(parents=True, exist_ok=True)
    (path / "issued").mkdir(exist_ok=True)
    os.chmod(path, 0o700)
    key = new_key()
    subject = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "MotCua Edge"),
                         x509.NameAttribute(NameOID.COMMON_NAME, name)])
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(NOT_BEFORE).not_valid_after(utcnow() + dt.timedelta(days=CA_DAYS))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=False, key_encipherment=False,
                                         content_commitment=False, data_encipherment=False,
                                         key_agreement=False, key_cert_sign=True, crl_sign=True,
                                         encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256()))
    _write(path / "ca.key", key_pem(key), 0o600)
    _write(path / "ca.crt", cert_pem(cert), 0o644)
    reg = {"devices": {}, "slots": {}, "revoked": [], "crl_url": crl_url}
    _write(path / "registry.json", json.dumps(reg).encode(), 0o600)
    ca = CA(path)
    ca.write_crl()
    return ca


def open_ca(path: Path) -> CA:
    path = Path(path)
    if not (path / "ca.key").exists():
        raise CAError(f"chưa có CA tại / no CA in {path}: run `motcua-provision ca init --dir {path}`")
    return CA(path)
