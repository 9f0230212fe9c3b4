"""Run a fake upstream, the sidecar and a client together in one fresh network namespace.

A network namespace isolates loopback too: OpenClaw inside ``unshare -n`` cannot reach a sidecar
on the host's 127.0.0.1. So the whole chain (fake upstream -> sidecar -> OpenClaw) runs inside
the *same* namespace: this module re-executes itself there (``unshare -n python -m
tests.interop.netns SPEC``), brings ``lo`` up, starts the services, waits for their ports, runs
the steps in order, fetches the URLs to collect (e.g. the fake's ``/__fake/requests``), stops the
services and writes one JSON result. Nothing in the namespace can reach any other host.

    result = run_in_netns(
        services=[Service("fake", [sys.executable, "-m", "tests.fakes.upstream", ...], port=p)],
        steps=[Step("turn", oc_argv, env=oc_env, timeout=90)],
        collect={"requests": f"http://127.0.0.1:{p}/__fake/requests"},
    )
    result.steps["turn"].returncode, result.collected["requests"]

Ports are chosen by the caller (``tests.e2e.sidecar.free_port``); in a fresh namespace every
port is free, and when no namespace can be made (``OC_ALLOW_NETWORK=1``, no ``unshare``) the same
spec runs on the host's loopback.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tests.interop.openclaw import isolation

REPO = Path(__file__).resolve().parents[2]
_SIOCGIFFLAGS = 0x8913
_SIOCSIFFLAGS = 0x8914
_IFF_UP = 0x1


@dataclass
class Service:
    """A background process; ready when ``port`` on 127.0.0.1 accepts a connection."""

    name: str
    argv: list[str]
    port: int
    env: dict[str, str] | None = None
    cwd: str | None = None


@dataclass
class Step:
    """A foreground command, run after every service is ready (in the order given)."""

    name: str
    argv: list[str]
    env: dict[str, str] | None = None
    cwd: str | None = None
    stdin: str = ""
    timeout: float = 120


@dataclass
class StepResult:
    returncode: int | None
    stdout: str
    stderr: str
    seconds: float


@dataclass
class NetnsResult:
    isolated: bool
    steps: dict[str, StepResult]
    collected: dict[str, Any]
    service_logs: dict[str, str]
    error: str | None = None

    def json_of(self, step: str) -> dict[str, Any]:
        """The JSON object a step printed on stdout (OpenClaw may print notices around it)."""
        text = self.steps[step].stdout
        decoder = json.JSONDecoder()
        for match in re.finditer(r"^\{", text, re.MULTILINE):
            try:
                doc, _end = decoder.raw_decode(text, match.start())
            except ValueError:
                continue
            if isinstance(doc, dict):
                return doc
        raise ValueError(f"step {step!r} printed no JSON object: {text[-2000:]!r}")


@dataclass
class _Spec:
    services: list[Service]
    steps: list[Step]
    collect: dict[str, str]
    logdir: str
    result: str
    ready_timeout: float = 30.0
    lo_up: bool = True
    extra: dict[str, Any] = field(default_factory=dict)


def run_in_netns(
    services: list[Service],
    steps: list[Step],
    collect: dict[str, str] | None = None,
    *,
    workdir: Path | None = None,
    ready_timeout: float = 30.0,
) -> NetnsResult:
    """Run the spec in a fresh network namespace (see the module docstring)."""
    work = Path(workdir or tempfile.mkdtemp(prefix="oc-netns-"))
    work.mkdir(parents=True, exist_ok=True)
    prefix = isolation()
    spec = _Spec(
        services=services,
        steps=steps,
        collect=collect or {},
        logdir=str(work),
        result=str(work / "netns-result.json"),
        ready_timeout=ready_timeout,
        lo_up=bool(prefix),
    )
    spec_path = work / "netns-spec.json"
    spec_path.write_text(json.dumps(asdict(spec)))
    budget = ready_timeout * len(services) + sum(s.timeout for s in steps) + 60
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
    }
    proc = subprocess.run(
        [*prefix, sys.executable, "-m", "tests.interop.netns", str(spec_path)],
        capture_output=True,
        text=True,
        timeout=budget,
        cwd=REPO,
        env=env,
        check=False,
    )
    try:
        raw = json.loads(Path(spec.result).read_text())
    except (OSError, ValueError) as exc:
        raise RuntimeError(
            f"netns runner wrote no result (rc {proc.returncode}): {exc}\n"
            f"stdout={proc.stdout[-3000:]}\nstderr={proc.stderr[-3000:]}"
        ) from exc
    return NetnsResult(
        isolated=bool(prefix),
        steps={k: StepResult(**v) for k, v in raw["steps"].items()},
        collected=raw["collected"],
        service_logs=raw["service_logs"],
        error=raw.get("error"),
    )


# --------------------------------------------------------------------------- inside the netns


def bring_lo_up() -> None:
    """``ip link set lo up`` without needing iproute2 (SIOCSIFFLAGS on an AF_INET socket)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        req = struct.pack("16sH14x", b"lo", 0)
        flags = struct.unpack("16sH14x", fcntl.ioctl(sock, _SIOCGIFFLAGS, req))[1]
        fcntl.ioctl(sock, _SIOCSIFFLAGS, struct.pack("16sH14x", b"lo", flags | _IFF_UP))


def _wait_port(port: int, proc: subprocess.Popen[bytes], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.05)  # a process inside the namespace is starting: nothing to wait on
    return False


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def _inside(spec_path: str) -> int:
    raw = json.loads(Path(spec_path).read_text())
    logdir = Path(raw["logdir"])
    result: dict[str, Any] = {"steps": {}, "collected": {}, "service_logs": {}, "error": None}
    running: list[tuple[str, subprocess.Popen[bytes], Path]] = []
    try:
        if raw["lo_up"]:
            bring_lo_up()
        for svc in raw["services"]:
            log = logdir / f"{svc['name']}.log"
            with log.open("wb") as fh:
                proc = subprocess.Popen(
                    svc["argv"],
                    stdin=subprocess.DEVNULL,
                    stdout=fh,
                    stderr=subprocess.STDOUT,
                    env=svc["env"],
                    cwd=svc["cwd"] or str(REPO),
                    start_new_session=True,
                )
            running.append((svc["name"], proc, log))
            if not _wait_port(svc["port"], proc, raw["ready_timeout"]):
                raise RuntimeError(f"service {svc['name']} did not listen on {svc['port']}")
        for step in raw["steps"]:
            started = time.monotonic()
            try:
                done = subprocess.run(
                    step["argv"],
                    input=step["stdin"],
                    capture_output=True,
                    text=True,
                    env=step["env"],
                    cwd=step["cwd"] or str(REPO),
                    timeout=step["timeout"],
                    check=False,
                )
                rc, out, err = done.returncode, done.stdout, done.stderr
            except subprocess.TimeoutExpired as exc:
                rc = None
                out = exc.stdout.decode(errors="replace") if isinstance(exc.stdout, bytes) else ""
                err = exc.stderr.decode(errors="replace") if isinstance(exc.stderr, bytes) else ""
            result["steps"][step["name"]] = {
                "returncode": rc,
                "stdout": out,
                "stderr": err,
                "seconds": round(time.monotonic() - started, 2),
            }
        for name, url in raw["collect"].items():
            with urllib.request.urlopen(url, timeout=10) as resp:  # noqa: S310 -- loopback
                result["collected"][name] = json.loads(resp.read())
    except Exception as exc:
        result["error"] = f"{type(exc).__name__}: {exc}"
    finally:
        for _name, proc, _log in reversed(running):
            _stop(proc)
        for name, _proc, log in running:
            result["service_logs"][name] = log.read_text(errors="replace")
        Path(raw["result"]).write_text(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(_inside(sys.argv[1]))
