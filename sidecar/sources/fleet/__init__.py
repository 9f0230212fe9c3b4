"""Profiles shared by a fleet of sidecars through Redis: sealed records (``records``,
``crypto``), leases (``lease``), refresh under a lease (``refresh``), the source (``store``) and
its composite with a host's local OpenClaw store (``composite``)."""
