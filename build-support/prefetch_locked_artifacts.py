"""Put the artifacts of the lockfile that this machine needs into pex's download cache.

Why: pex 2.1.137 fetches each locked artifact with `pip download <url>`, and with PyPI now serving
PEP 658 metadata the pip it drives crashes on many binary wheels (`assert req.link is not None`),
so Pants cannot build requirement pexes on a fresh machine. For a foreign target (a pex
complete platform, such as the catalog Lambda's CPython 3.12) the pip it drives runs on Pants'
own Python 3.9 and refuses wheels whose Requires-Python excludes 3.9 (pex issue #2395, fixed in
pex 2.3.1). pex first looks in
`$PEX_ROOT/downloads/<sha256>/<filename>`; this script fills exactly that, from the URLs and
sha256 hashes the lockfile records (public PyPI), verifying every byte. Idempotent.

Usage: prefetch_locked_artifacts.py LOCKFILE[,LOCKFILE...] PYTHON|PLATFORM.json [...]
(PLATFORM.json: a pex complete platform; its `compatible_tags` stand for an interpreter's)
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import urllib.request
from concurrent.futures import ThreadPoolExecutor

_TAGS_CODE = (
    "import json; from pip._vendor.packaging import tags; "
    "print(json.dumps([str(t) for t in tags.sys_tags()]))"
)


def supported_tags(python: str) -> list[str]:
    if python.endswith(".json"):  # a pex complete platform
        with open(python) as handle:
            return list(json.load(handle)["compatible_tags"])
    out = subprocess.run([python, "-c", _TAGS_CODE], capture_output=True, text=True, check=True)
    return list(json.loads(out.stdout))


def wheel_tags(filename: str) -> set[str]:
    parts = filename[: -len(".whl")].split("-")
    pythons, abis, platforms = parts[-3], parts[-2], parts[-1]
    return {
        f"{p}-{a}-{plat}"
        for p in pythons.split(".")
        for a in abis.split(".")
        for plat in platforms.split(".")
    }


def needed_artifacts(lock: dict, tag_sets: list[list[str]]) -> dict[str, tuple[str, str]]:
    """sha256 -> (url, filename) of every artifact an interpreter here could install.

    Every compatible wheel, not just the best, since pex's choice also depends on its
    --manylinux setting; the sdist where no wheel fits (pex builds it).
    """
    supported = set().union(*map(set, tag_sets))
    needed: dict[str, tuple[str, str]] = {}
    for resolve in lock["locked_resolves"]:
        for req in resolve["locked_requirements"]:
            chosen = []
            for art in req["artifacts"]:
                name = art["url"].rsplit("/", 1)[1]
                if name.endswith(".whl") and wheel_tags(name) & supported:
                    chosen.append((art, name))
            if not chosen:
                chosen = [
                    (art, art["url"].rsplit("/", 1)[1])
                    for art in req["artifacts"]
                    if not art["url"].endswith(".whl")
                ]
            for art, name in chosen:
                if art["algorithm"] == "sha256":
                    needed[art["hash"]] = (art["url"], name)
    return needed


def fetch(downloads: str, sha: str, url: str, filename: str) -> str:
    """Store one artifact as pex's DownloadManager does: <sha256>/{file, sha1, metadata.json}."""
    target_dir = os.path.join(downloads, sha)
    if os.path.isfile(os.path.join(target_dir, "metadata.json")):
        return "cached"
    with urllib.request.urlopen(url, timeout=300) as response:
        data = response.read()
    if hashlib.sha256(data).hexdigest() != sha:
        raise RuntimeError(f"sha256 mismatch for {url}")
    work = tempfile.mkdtemp(prefix=f"{sha}.", dir=downloads)
    with open(os.path.join(work, filename), "wb") as out:
        out.write(data)
    with open(os.path.join(work, "sha1"), "w") as out:
        out.write(hashlib.sha1(data).hexdigest())
    with open(os.path.join(work, "metadata.json"), "w") as out:
        json.dump(
            {"algorithm": "sha256", "hexdigest": sha, "filename": filename, "version": 1}, out
        )
    if os.path.isdir(target_dir):  # a partial entry (no metadata): replace it
        shutil.rmtree(target_dir, ignore_errors=True)
    try:
        os.rename(work, target_dir)
    except OSError:  # another process won the race; its copy is identical
        shutil.rmtree(work, ignore_errors=True)
    return "fetched"


def main(argv: list[str]) -> int:
    if len(argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    lock_paths, pythons = argv[1].split(","), argv[2:]
    tags = [supported_tags(p) for p in pythons]
    needed: dict[str, tuple[str, str]] = {}
    for lock_path in lock_paths:
        with open(lock_path) as handle:
            lock = json.loads("".join(line for line in handle if not line.startswith("//")))
        needed.update(needed_artifacts(lock, tags))
    downloads = os.path.join(os.environ.get("PEX_ROOT", os.path.expanduser("~/.pex")), "downloads")
    os.makedirs(downloads, exist_ok=True)
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda item: fetch(downloads, item[0], *item[1]), needed.items()))
    fetched = results.count("fetched")
    if fetched:
        print(
            f"pants bootstrap: prefetched {fetched} locked artifacts into {downloads}",
            file=sys.stderr,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
