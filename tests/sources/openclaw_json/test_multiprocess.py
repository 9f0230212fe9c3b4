"""Many processes read-modify-writing one store under OpenClaw's lock lose no update, and a
reader never sees a half-written file."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

WRITERS = 8
CYCLES = 25

WRITER = textwrap.dedent(
    """
    import dataclasses, sys
    from pathlib import Path
    from sidecar.sources.openclaw_json.store import JsonStore
    from sidecar.sources.openclaw.layout import Layout
    from sidecar.sources.openclaw.model import merge_usage, UsageStats

    state_dir, me, cycles = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    store = JsonStore(Layout.from_env({"OPENCLAW_STATE_DIR": str(state_dir)}), home=state_dir,
                      check_interval_s=0)
    pid = f"counter:{me}"

    def bump(state):
        usage = state.usage.get(pid, UsageStats())
        new = merge_usage(usage, {"errorCount": usage.error_count + 1})
        return dataclasses.replace(state, usage={**state.usage, pid: new})

    for n in range(1, cycles + 1):
        store.put_profile_sync("main", pid, {"type": "api_key", "provider": "counter", "n": n})
        store.update_state_sync("main", bump)
    """
)

READER = textwrap.dedent(
    """
    import json, sys
    from pathlib import Path

    paths, stop = [Path(p) for p in sys.argv[2:]], Path(sys.argv[1])
    reads = bad = 0
    while not stop.exists():
        for path in paths:
            try:
                data = path.read_bytes()
            except FileNotFoundError:
                continue
            try:
                json.loads(data)
                reads += 1
            except ValueError:
                bad += 1
    print(json.dumps({"reads": reads, "bad": bad}))
    """
)


def test_concurrent_writers_lose_no_update(sd, tmp_path):
    """8 processes x 25 cycles of put_profile + update_state: every counter is exact."""
    sd.write_profiles("main", {"keep:me": {"type": "api_key", "provider": "keep", "key": "k"}})
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    stop = tmp_path / "stop"
    reader = subprocess.Popen(
        [sys.executable, "-c", READER, str(stop), str(sd.profiles_path()), str(sd.state_path())],
        stdout=subprocess.PIPE,
        env=env,
    )
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, str(sd.path), str(i), str(CYCLES)],
            env=env,
            stderr=subprocess.PIPE,
        )
        for i in range(WRITERS)
    ]
    try:
        results = [(w.wait(timeout=60), w.stderr.read().decode()[-2000:]) for w in writers]
    finally:
        stop.touch()
        out, _ = reader.communicate(timeout=30)
        for w in writers:
            w.stderr.close()
    assert results == [(0, "")] * WRITERS
    profiles = sd.load(sd.profiles_path())["profiles"]
    usage = sd.load(sd.state_path())["usageStats"]
    assert profiles == {
        "keep:me": {"type": "api_key", "provider": "keep", "key": "k"},
        **{
            f"counter:{i}": {"type": "api_key", "provider": "counter", "n": CYCLES}
            for i in range(WRITERS)
        },
    }
    assert {pid: u["errorCount"] for pid, u in usage.items()} == {
        f"counter:{i}": CYCLES for i in range(WRITERS)
    }
    seen = json.loads(out)
    assert (seen["bad"], seen["reads"] > 0) == (0, True)
    assert sorted(p.name for p in sd.agent_dir().iterdir()) == [
        "auth-profiles.json",
        "auth-state.json",
    ]
