"""Read-only root on the virtual Pi: the option docs/kiosk.md describes, switched on and rebooted into.

What the step does, as the technician's procedure (docs/kiosk.md, "Read-only root"):
1. network cut (link down), three tickets: acknowledged by the kiosk, held in its outbox;
2. the kiosk stopped, ``/var/lib/motcua`` copied onto the data partition (label ``motcua-data``; here
   a second virtual disk, on a Pi the card's third partition) and mounted there by ``/etc/fstab``;
   the root's fstab line ``ro``; ``/tmp`` a tmpfs (the unit's ``PrivateTmp``); cloud-init disabled
   (its first boot is done; with ``/var`` volatile it would think every boot is the first);
3. clean power-off, boot with ``ro systemd.volatile=state`` on the kernel command line: root mounted
   read-only, ``/var`` a tmpfs (journal, DHCP leases, timesync state: RAM), the data partition on
   top of it at ``/var/lib/motcua``, read-write;
4. PASS when: ``/`` is mounted ``ro`` and a write to it fails, ``/var/lib/motcua`` is the data
   partition ``rw``, the kiosk is active and online, the three outbox events arrive, and a new ticket
   continues the day's numbering (no number twice).
"""

from __future__ import annotations

import time
from typing import Any

DATA_LABEL = "motcua-data"
DATA_MB = 1024  # sparse on the host; room for both release slots
RO_KERNEL_ARGS = "ro systemd.volatile=state"
TICKETS = 3

PREPARE = f"""set -e
systemctl stop motcua-kiosk
mkdir -p /mnt/motcua-data
mount LABEL={DATA_LABEL} /mnt/motcua-data
cp -a /var/lib/motcua/. /mnt/motcua-data/
chown motcua:motcua /mnt/motcua-data
chmod 0700 /mnt/motcua-data
umount /mnt/motcua-data
sed -i '/^\\/dev\\/vda2 /s/defaults,noatime/ro,noatime/' /etc/fstab
printf '%s\\n' 'LABEL={DATA_LABEL}  /var/lib/motcua  ext4  defaults,noatime  0 2' \\
  'tmpfs  /tmp  tmpfs  mode=1777,nosuid,nodev  0 0' >> /etc/fstab
printf '%s\\n' 'd /var/lib/dhcp 0755 root root -' > /etc/tmpfiles.d/motcua-readonly.conf
touch /etc/cloud/cloud-init.disabled
sync
grep -c ' ro,noatime' /etc/fstab
"""


def make_data_disk(path: Any) -> None:
    """An empty ext4 file system labelled motcua-data (the card's third partition)."""
    import subprocess

    with open(path, "wb") as fh:
        fh.truncate(DATA_MB * 1024 * 1024)
    subprocess.run(["mkfs.ext4", "-q", "-F", "-L", DATA_LABEL, str(path)], check=True, capture_output=True)


def readonly_root_step(sc: Any) -> str:
    from hil.vpi.run import BOOT_TIMEOUT_S, GuestRig, wait

    vm, b = sc.vm, sc.watcher
    rig = GuestRig(vm)
    vm.set_link(False)
    acked: list[str] = []
    for _ in range(TICKETS):
        acked += rig.press("ticket").get("event_ids", [])
    assert len(acked) >= TICKETS, f"presses not acknowledged: {acked}"
    out = vm.run(PREPARE, timeout=600).strip()
    assert out.splitlines()[-1] == "1", f"fstab root line not switched to ro: {out[-300:]}"
    down_s = vm.shutdown()
    vm.kernel_args = RO_KERNEL_ARGS
    t0 = time.monotonic()
    vm.start()
    vm.wait_agent(BOOT_TIMEOUT_S)
    wait(sc.kiosk_active, BOOT_TIMEOUT_S, "kiosk active on the read-only root", 3)
    b.wait(lambda ev: set(acked) <= {e["event_id"] for e in ev}, BOOT_TIMEOUT_S, "outbox events delivered")
    wait(sc.online, 300, "kiosk online at the gateway", 2)
    back_s = time.monotonic() - t0
    mounts = _check_mounts(vm)
    numbers = _new_ticket_continues(sc, rig)
    sc.verdict.figures["read-only root boot"] = (f"{back_s:.0f} s to online + outbox drained "
                                                 f"(clean shutdown {down_s:.0f} s)")
    return f"{mounts}; {len(acked)} outbox events delivered after the reboot; numbers {numbers}"


def _check_mounts(vm: Any) -> str:
    root = vm.run("findmnt -no OPTIONS /").strip()
    assert root.split(",")[0] == "ro", f"/ is mounted {root}"
    probe = vm.run("touch /motcua-ro-probe 2>&1; echo rc=$?", check=False).strip()
    assert probe.endswith("rc=1") and "Read-only" in probe, f"a write to / did not fail: {probe}"
    data = vm.run("findmnt -no SOURCE,FSTYPE,OPTIONS /var/lib/motcua").split()
    assert len(data) == 3 and data[1] == "ext4" and data[2].split(",")[0] == "rw", data
    var = vm.run("findmnt -no FSTYPE /var", check=False).strip() or "on /"
    return f"/ ro (write refused), /var {var}, /var/lib/motcua {data[0]} rw"


def _new_ticket_continues(sc: Any, rig: Any) -> list[int]:
    b = sc.watcher
    ids = rig.press("ticket").get("event_ids", [])
    b.wait(lambda ev: set(ids) <= {e["event_id"] for e in ev}, 300, "ticket after the read-only boot")
    with b.lock:  # one entry per event (QoS 1 may deliver an event twice)
        issued = {e["event_id"]: (e["data"]["service_day"], e["data"]["ticket_no"]) for e in b.events
                  if e["type"] == "ticket.issued"}
    keys = list(issued.values())
    assert len(set(keys)) == len(keys), f"a ticket number issued twice: {sorted(keys)}"
    return [n for _, n in keys[-(TICKETS + 1):]]
