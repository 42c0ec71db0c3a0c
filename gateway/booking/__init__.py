"""Public appointment booking (đặt lịch hẹn) on the gateway: page, store, rate limit, push to kiosks.

A citizen picks office, service field, day and slot on a mobile-first page (no account, no personal
data required), gets a six-letter code and its QR, and can cancel with the code. Capacity per slot
is enforced in one conditional UPDATE (atomic on SQLite and PostgreSQL, gateway/booking/store.py);
each client address is limited per hour (gateway/booking/limits.py). The day's list goes to the
office's kiosks as the signed ``load_appointments`` command (gateway/booking/push.py), before
opening and after every change; the kiosks keep it and redeem codes offline. Settings:
``[booking]`` (gateway/booking/config.py, docs/gateway.md#appointments).
"""
