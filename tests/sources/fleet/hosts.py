"""Sidecar processes standing in for hosts of one fleet: each has its own empty state dir and
the same [fleet] table; the fleet's profile is seeded with the real ``fleet push``."""

from __future__ import annotations

from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import anyio

from sidecar.config import FleetSettings
from sidecar.sources.fleet.records import Record
from tests.e2e.refresh_support import CODEX_ID, distinct_ports, oauth_profile, write_profiles
from tests.e2e.sidecar import Sidecar, cli_env, render_config, run_cli, start_sidecar
from tests.fakes.token_server import Grant
from tests.sources.fleet.redis_server import RedisServer
from tests.sources.fleet.support import make_fleet, new_key, write_secret


class Fleet:
    def __init__(self, root: Path, redis: RedisServer, providers: Mapping[str, Any]) -> None:
        self.root = root
        self.redis = redis
        self.providers = providers
        self.key = new_key()
        self.settings = self.fleet_files(root / "secrets", self.key)
        self.running: list[Sidecar] = []

    def fleet_files(self, where: Path, key: str) -> FleetSettings:
        where.mkdir(parents=True, exist_ok=True)
        return FleetSettings(
            url_file=write_secret(where / "redis-url", self.redis.url),
            key_file=write_secret(where / "fleet-key", key),
            prefix="ocs",
        )

    def config(self, port: int, settings: FleetSettings, refresh: Mapping[str, float]) -> str:
        fleet = {
            "url_file": str(settings.url_file),
            "key_file": str(settings.key_file),
            "prefix": settings.prefix,
        }
        return render_config([{"port": port}], self.providers, {"refresh": refresh, "fleet": fleet})

    def config_file(self, name: str = "cli", **refresh: float) -> Path:
        path = self.root / f"{name}.toml"
        path.write_text(self.config(1, self.settings, refresh))
        return path

    def start(self, count: int, *, key: str | None = None, **refresh: float) -> list[Sidecar]:
        """``count`` sidecars, each on an empty state dir of its own."""
        settings = self.settings if key is None else self.fleet_files(self.root / "other", key)

        def one(port: int) -> Sidecar:
            host = self.root / f"host-{port}"
            (host / "state").mkdir(parents=True)
            return start_sidecar(
                self.config(port, settings, refresh), [port], state_dir=host / "state", workdir=host
            )

        with ThreadPoolExecutor(count) as pool:
            started = list(pool.map(one, distinct_ports(count)))
        self.running += started
        return started

    def stop_all(self) -> None:
        for sidecar in self.running:
            sidecar.stop()

    def push(self, grant: Grant, profile_id: str = CODEX_ID, **extra: Any) -> str:
        """The profile written to a local store as OpenClaw would, then ``fleet push``ed."""
        seed_dir = self.root / "seed"
        seed_dir.mkdir(exist_ok=True)
        write_profiles(seed_dir, {profile_id: oauth_profile(grant, **extra)})
        done = self.cli("fleet", "push", "--profile-id", profile_id, state_dir=seed_dir)
        assert done.returncode == 0, done.stderr
        return done.stdout + done.stderr

    def cli(self, *args: str, state_dir: Path | None = None) -> Any:
        state = state_dir or self.root / "seed"
        env = cli_env(state, self.root)
        return run_cli([*args, "--config", str(self.config_file())], env)

    def record(self, profile_id: str = CODEX_ID, agent: str = "main") -> Record | None:
        """The fleet's record as the sidecars see it (decrypted in this process)."""

        async def read() -> Record | None:
            store = make_fleet(self.settings)
            try:
                return await store.read(agent, profile_id)
            finally:
                await store.aclose()

        return anyio.run(read)
