"""Apache Superset in a virtualenv of its own, built once and cached.

Superset pins another sqlglot (and SQLAlchemy, Flask...) than Canon, so it cannot share the test
environment. The venv lives in ~/.cache/canon-superset-venv/<key> (CANON_SUPERSET_CACHE overrides the
folder), keyed by the pins in requirements.txt and constraints.txt: changing a pin builds a new one.
Beside it, a metadata database already migrated (`superset db upgrade`), with its roles and permissions
(`superset init`) and an admin user: each test run copies it into its own temp folder, so only the first
run pays for those commands.

Run this file to build (or find) the venv and print its folder: `python tests/bi_tools/superset/venv.py`.
A failed build raises with the tail of the installer's log; it never leaves a half-built venv behind.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
REQUIREMENTS = HERE / "requirements.txt"
CONSTRAINTS = HERE / "constraints.txt"
ADMIN_USER, ADMIN_PASSWORD = "admin", "canon-superset-admin"
# the metadata template is made with this key; the test server uses the same one (it encrypts secrets
# stored in the metadata database, of which the template holds none)
SECRET_KEY = "canon-tests-only-not-a-secret-0123456789abcdef"
INSTALL_TIMEOUT_S = 1800
COMMAND_TIMEOUT_S = 600


@dataclass(frozen=True)
class SupersetVenv:
    root: Path  # the venv
    metadata: Path  # the initialised metadata SQLite database (a template: copy it, never open it in place)
    timings: dict  # seconds each build step took, when this call built it ({} when it was cached)

    @property
    def python(self) -> Path:
        return self.root / "bin" / "python"

    @property
    def superset(self) -> Path:
        return self.root / "bin" / "superset"


def cache_root() -> Path:
    return Path(os.environ.get("CANON_SUPERSET_CACHE") or Path.home() / ".cache" / "canon-superset-venv")


def pin_key() -> str:
    digest = hashlib.sha256(REQUIREMENTS.read_bytes() + b"\0" + CONSTRAINTS.read_bytes()
                            + sys.version.split()[0].encode())
    return digest.hexdigest()[:16]


def config_text(metadata: Path) -> str:
    """A superset_config.py for tests: SQLite metadata at `metadata`, no CSRF (API use only), no login
    rate limit, no examples, synchronous SQL Lab."""
    return "\n".join([
        f"SECRET_KEY = {SECRET_KEY!r}",
        f"SQLALCHEMY_DATABASE_URI = {'sqlite:///' + str(metadata)!r}",
        "WTF_CSRF_ENABLED = False",
        "AUTH_RATE_LIMITED = False",
        "RATELIMIT_ENABLED = False",
        "TALISMAN_ENABLED = False",
        "SQLLAB_ASYNC_TIME_LIMIT_SEC = 60",
        "SQLLAB_TIMEOUT = 60",
        "SUPERSET_WEBSERVER_TIMEOUT = 60",
        "PREVENT_UNSAFE_DB_CONNECTIONS = False",  # Canon listens on loopback
        "FEATURE_FLAGS = {'ALERT_REPORTS': False, 'THUMBNAILS': False}",
        "",
    ])


def superset_env(config: Path) -> dict:
    """The environment for a `superset` command: SUPERSET_CONFIG_PATH set, nothing of the test venv."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("CANON_", "PYTHON", "VIRTUAL_ENV", "SUPERSET_", "FLASK_"))}
    env.update({"SUPERSET_CONFIG_PATH": str(config), "FLASK_APP": "superset", "PYTHONUNBUFFERED": "1",
                "SUPERSET_LOAD_EXAMPLES": "no"})
    return env


def _run(argv: list, log: Path, env: dict | None = None, timeout: float = COMMAND_TIMEOUT_S) -> float:
    started = time.monotonic()
    with open(log, "ab") as out:
        out.write(f"\n$ {' '.join(map(str, argv))}\n".encode())
        out.flush()
        code = subprocess.run([str(a) for a in argv], stdout=out, stderr=subprocess.STDOUT, env=env,
                              stdin=subprocess.DEVNULL, timeout=timeout).returncode
    if code != 0:
        # pip warns once per package about this machine's empty local indexes: not the cause, left out
        lines = [line for line in log.read_text(errors="replace").splitlines()
                 if not line.startswith("WARNING: Location")]
        tail = "\n".join(lines)[-6000:]
        raise RuntimeError(f"{argv[0]} {' '.join(map(str, argv[1:3]))} failed with exit {code}:\n{tail}")
    return time.monotonic() - started


@contextmanager
def _locked(path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)  # one builder at a time (xdist workers, parallel runs)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def ensure() -> SupersetVenv:
    """The cached venv and metadata template for the current pins, built first if missing."""
    base = cache_root()
    final = base / pin_key()
    with _locked(base / ".lock"):
        if (final / "ready").exists():
            return SupersetVenv(final / "venv", final / "metadata.db", {})
        for stale in base.iterdir():  # venvs of older pins (about 800 MB each) and their failure logs
            if stale.is_dir():
                shutil.rmtree(stale, ignore_errors=True)
            elif stale.name != ".lock":
                stale.unlink()
        timings = _build(final)
    return SupersetVenv(final / "venv", final / "metadata.db", timings)


def _build(final: Path) -> dict:
    """Build in place (a venv's scripts hold its absolute path); `ready` is written last, and a failed
    build removes the folder, so a half-built venv is never taken for a cached one."""
    shutil.rmtree(final, ignore_errors=True)
    final.mkdir(parents=True)
    try:
        return _steps(final)
    except BaseException:
        log = final / "build.log"
        if log.exists():
            shutil.copy(log, final.with_name(final.name + ".failed.log"))
        shutil.rmtree(final, ignore_errors=True)
        raise


def _steps(final: Path) -> dict:
    log, venv, timings = final / "build.log", final / "venv", {}
    timings["venv"] = _run([sys.executable, "-m", "venv", venv], log)
    timings["install"] = _run([venv / "bin" / "python", "-m", "pip", "install", "-q", "-r", REQUIREMENTS,
                               "-c", CONSTRAINTS], log, env={**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"},
                              timeout=INSTALL_TIMEOUT_S)
    config = final / "superset_config.py"
    config.write_text(config_text(final / "metadata.db"))
    env, superset = superset_env(config), venv / "bin" / "superset"
    timings["db upgrade"] = _run([superset, "db", "upgrade"], log, env)
    timings["init"] = _run([superset, "init"], log, env)  # roles and permissions: the REST API needs them
    timings["create-admin"] = _run([superset, "fab", "create-admin", "--username", ADMIN_USER, "--firstname",
                                    "Canon", "--lastname", "Tests", "--email", "admin@example.invalid",
                                    "--password", ADMIN_PASSWORD], log, env)
    (final / "ready").write_text(" ".join(f"{k}={v:.1f}s" for k, v in timings.items()) + "\n")
    return timings


if __name__ == "__main__":
    started = time.monotonic()
    built = ensure()
    print(built.root)
    print(f"{'built' if built.timings else 'cached'} in {time.monotonic() - started:.0f} s {built.timings}")
