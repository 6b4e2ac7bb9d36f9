"""The web app's pages and the few JSON endpoints it needs that the API did not have.

    GET /                              the app (one HTML shell; hash routes hold the page state)
    GET /app/{file}                    its scripts and styles, shipped in the package (no CDN)
    GET /v1/metrics/{name}/source      the definition as written (YAML, file:line) and its git history
    GET /v1/metrics/{name}/checks      data tests on its models and its sources' freshness
    GET /v1/diff/refs                  branches, tags and recent commits to compare
    GET /v1/diff?base=&head=           `canon diff` between two refs (head empty: the served catalog)

Every JSON endpoint checks the caller's grant as the catalog endpoints do. Refs reach git only after
an allow-list of characters and `git rev-parse --verify`, as argument lists (no shell), and the diff
then names commits by their full hash.
"""

from __future__ import annotations

import functools
import hashlib
import re
import subprocess
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Path as PathParam, Query, Request
from fastapi.responses import Response

from canon.compiler.errors import AccessDeniedError, ConfigError, QueryError, UnknownNameError, did_you_mean

from ..http_api import catalog_of, grant_of, runtime_of
from ..runtime import visibility as seen

STATIC = Path(__file__).parent / "static"
# Everything from this origin and nothing else: a page that tried a CDN would fail in the browser test.
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
       "font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
PAGE_HEADERS = {"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff",
                "Referrer-Policy": "no-referrer", "Cache-Control": "no-cache"}
ASSET_TYPES = {".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml"}
# a ref as people write one (main, v1.2, HEAD~2, origin/main, a hash); never an option, never a range
REF = re.compile(r"^(?!-)(?!.*\.\.)[A-Za-z0-9._/~^@-]{1,100}$")
HISTORY_LIMIT = 20
GIT_TIMEOUT_S = 10

router = APIRouter()


# --- the app shell and its assets ------------------------------------------------------------------


@functools.cache
def _asset(path: Path) -> tuple[bytes, str]:
    """A shipped file and its ETag, read once per process (about 60 kB in all): answered from memory,
    no thread hop per request, and a 304 when the browser has it already."""
    body = path.read_bytes()
    return body, '"' + hashlib.sha256(body).hexdigest()[:20] + '"'


def _send(request: Request, path: Path, media_type: str) -> Response:
    body, etag = _asset(path)
    headers = {**PAGE_HEADERS, "ETag": etag}
    if etag in request.headers.get("if-none-match", ""):
        return Response(status_code=304, headers=headers)
    return Response(body, media_type=media_type, headers=headers)


@router.api_route("/", methods=["GET", "HEAD"], include_in_schema=False)
async def index(request: Request):
    return _send(request, STATIC / "index.html", "text/html")


@router.api_route("/app/{file_path:path}", methods=["GET", "HEAD"], include_in_schema=False)
async def asset(request: Request, file_path: Annotated[str, PathParam(max_length=200)]):
    """Only files shipped under static/ (resolved, so `..` cannot leave it), by an allow-list of types."""
    path = (STATIC / file_path).resolve()
    if STATIC.resolve() not in path.parents or path.suffix not in ASSET_TYPES or not path.is_file():
        raise UnknownNameError(f"no app file '{file_path}'",
                               hint="the app's files are under /app/ (see /)")
    return _send(request, path, ASSET_TYPES[path.suffix])


# --- git, by argument lists ------------------------------------------------------------------------------


def _git(project: Path, *args: str) -> str | None:
    """git's output, or None when this is not a git work tree (or git is missing, or it failed)."""
    try:
        done = subprocess.run(["git", *args], cwd=project, capture_output=True, text=True, timeout=GIT_TIMEOUT_S,
                              check=False)
    except (FileNotFoundError, subprocess.TimeoutExpired):
        return None
    return done.stdout if done.returncode == 0 else None


def resolve_ref(project: Path, ref: str, field: str) -> str:
    """The full commit hash of `ref`, or a 400 naming the field and the refs there are."""
    if not REF.match(ref):
        raise QueryError(f"{field}: '{ref}' is not a git ref", hint="a branch, tag or commit, e.g. HEAD~1 or main")
    sha = _git(project, "rev-parse", "--verify", "--quiet", "--end-of-options", f"{ref}^{{commit}}")
    if not sha:
        known = [r["ref"] for r in list_refs(project)["refs"]]
        raise QueryError(f"{field}: no commit '{ref}' in the project's git history",
                         hint=did_you_mean(ref, known) or ("refs: " + ", ".join(known[:10]) if known
                                                            else "the project is not in a git repository"))
    return sha.strip()


def list_refs(project: Path) -> dict:
    refs = []
    out = _git(project, "for-each-ref", "--format=%(refname:short)%1f%(objectname)", "refs/heads", "refs/tags")
    for line in filter(None, (out or "").splitlines()):
        name, sha = line.split("\x1f")
        refs.append({"ref": name, "sha": sha})
    return {"git": out is not None, "refs": refs, "commits": _log(project, "-n", str(HISTORY_LIMIT))}


def _log(project: Path, *args: str) -> list[dict]:
    out = _git(project, "log", "--no-color", "--format=%x1e%H%x1f%h%x1f%an%x1f%aI%x1f%s", *args)
    commits = []
    for record in filter(None, (out or "").split("\x1e")):
        parts = record.strip("\n").split("\n", 1)[0].split("\x1f")
        if len(parts) == 5:
            sha, short, author, date, subject = parts
            commits.append({"sha": sha, "short": short, "author": author, "date": date, "subject": subject})
    return commits


# --- a metric's source, history and checks ---------------------------------------------------------------


def _block(lines: list[str], start: int) -> int:
    """The last line (1-based) of the YAML list item starting at line `start`."""
    indent = len(lines[start - 1]) - len(lines[start - 1].lstrip())
    end = start
    for number in range(start + 1, len(lines) + 1):
        text = lines[number - 1]
        if text.strip() and not text.lstrip().startswith("#") and len(text) - len(text.lstrip()) <= indent:
            break
        if text.strip():
            end = number
    return end


def metric_source(project: Path | None, location) -> dict:
    if project is None or location is None or not location.file:
        return {"file": None, "line": None, "yaml": None, "history": [], "git": False}
    root = Path(project).resolve()
    path = (root / location.file).resolve()
    if root not in path.parents or not path.is_file():
        return {"file": location.file, "line": location.line, "yaml": None, "history": [], "git": False}
    lines = path.read_text(encoding="utf-8").splitlines()
    start = location.line or 1
    end = _block(lines, start)
    rel = path.relative_to(root).as_posix()
    # the commits that touched these lines (git follows the block as it moved), else the file's
    history = _log(root, "-n", str(HISTORY_LIMIT), "-s", f"-L{start},{end}:{rel}")
    if not history:
        history = _log(root, "-n", str(HISTORY_LIMIT), "--follow", "--", rel)
    is_git = _git(root, "rev-parse", "--is-inside-work-tree") is not None
    return {"file": rel, "line": start, "end_line": end, "yaml": "\n".join(lines[start - 1:end]),
            "history": history, "git": is_git}


@router.get("/v1/metrics/{name}/source", tags=["catalog"])
async def get_metric_source(request: Request, name: Annotated[str, PathParam(max_length=200)]):
    """The metric's definition as written (file, lines, YAML text) and the git commits that changed it."""
    catalog = catalog_of(request)
    metric = seen.check_metric(catalog, grant_of(request, catalog), name)
    runtime = runtime_of(request)
    return {"metric": name, **await runtime.run(metric_source, runtime.project, metric.location)}


@router.get("/v1/metrics/{name}/checks", tags=["catalog"])
async def get_metric_checks(request: Request, name: Annotated[str, PathParam(max_length=200)],
                            run: Annotated[bool, Query(description="Run the data tests now (unrestricted callers)")] = False):
    """The data tests declared on the models the metric reads, and their sources' last freshness check."""
    from ..governance.datatests import build_tests, run_case

    catalog = catalog_of(request)
    grant = grant_of(request, catalog)
    seen.check_metric(catalog, grant, name)
    runtime = runtime_of(request)
    models = set(catalog.facts[name].models)
    cases = [c for c in build_tests(catalog) if c.model in models]
    if run:
        if not sees_everything(grant):  # a failing test shows sample rows, past any row filter
            raise AccessDeniedError(f"running data tests is not available to user {grant.user!r}",
                                    hint="their definitions are listed; ask an unrestricted user to run them")
        results = [r.to_dict() for r in await runtime.run(lambda: [run_case(c, runtime.internal) for c in cases])]
    else:
        dialect = runtime.dialect
        results = [{"model": c.model, "name": c.name, "type": c.type, "severity": c.severity, "status": None,
                    "sql": c.query.sql(dialect=dialect, pretty=True)} for c in cases]
    report = runtime.freshness.report(catalog) or []
    freshness = [s.to_dict() for s in report if s.model in models]
    return {"metric": name, "models": sorted(models), "tests": results, "freshness": freshness,
            "freshness_checked": report is not None}


# --- change review ----------------------------------------------------------------------------------------


def sees_everything(grant) -> bool:
    """No policy hides a name or filters a row for this caller (an open server, or e.g. a finance role)."""
    return grant.open or not (grant.nothing or grant.denies or grant.row_filters)


def _unrestricted(request: Request, what: str):
    catalog = catalog_of(request)
    grant = grant_of(request, catalog)
    if not sees_everything(grant):  # a diff lists every object and runs sample queries without row filters
        raise AccessDeniedError(f"{what} is not available to user {grant.user!r}",
                                hint=f"it needs access to the whole catalog; policies: {', '.join(grant.policies)}")
    return catalog


def _project(request: Request) -> Path:
    project = runtime_of(request).project
    if project is None:
        raise ConfigError("this server has no project folder, so no git history to compare")
    return Path(project)


@router.get("/v1/diff/refs", tags=["governance"])
async def diff_refs(request: Request):
    """Branches, tags and the latest commits of the project's repository, for choosing what to compare."""
    _unrestricted(request, "the change review")
    return await runtime_of(request).run(list_refs, _project(request))


@router.get("/v1/diff", tags=["governance"])
async def diff(request: Request,
               base: Annotated[str, Query(max_length=100, description="The ref before (branch, tag, commit)")] = "HEAD",
               head: Annotated[str | None, Query(max_length=100, description="The ref after; empty: the served catalog")] = None):
    """`canon diff` between two refs: every change classified, SQL diffs, sample numbers before and after."""
    from ..governance.diff import catalog_at_ref, diff_catalogs

    served = _unrestricted(request, "the change review")
    runtime = runtime_of(request)
    project = _project(request)

    def work():
        base_sha = resolve_ref(project, base, "base")
        head_sha = resolve_ref(project, head, "head") if head else None
        after = catalog_at_ref(project, head_sha) if head_sha else served
        report = diff_catalogs(catalog_at_ref(project, base_sha), after, warehouse=runtime.internal,
                               base_name=base, head_name=head or "working tree")
        return {**report.to_dict(), "base_sha": base_sha, "head_sha": head_sha}

    return await runtime.run(work)


def install(app) -> None:
    app.include_router(router)


__all__ = ["router", "install", "resolve_ref", "list_refs", "metric_source", "CSP"]
