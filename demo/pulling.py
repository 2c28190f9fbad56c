"""Read an image back from a registry over the distribution API, every digest checked.

The bearer token is fetched as any client does: from the realm of the 401's challenge, with HTTP
Basic credentials. skopeo, when installed, reads it too, as a second opinion from a real client.
"""
from __future__ import annotations

import base64
import hashlib
import json
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import requests

from pipe.oci import ACCEPTED_MANIFESTS, digest_of, hex_digest

CHALLENGE_PART = re.compile(r'(\w+)="([^"]*)"')


class ReadBackFailed(RuntimeError):
    pass


@dataclass(frozen=True)
class Pulled:
    manifest_digest: str
    blobs: tuple[str, ...]  # the config and layer digests, each read whole and checked


def bearer_token(http: requests.Session, challenge: str, auth: tuple[str, str]) -> str:
    """A token from the realm that a `WWW-Authenticate: Bearer realm=...,service=...,scope=...` names."""
    if not challenge.lower().startswith("bearer "):
        raise ReadBackFailed(f"the registry asked for {challenge.split(' ')[0] or 'nothing'}, not a bearer token")
    parts = dict(CHALLENGE_PART.findall(challenge))
    realm = parts.pop("realm", None)
    if not realm:
        raise ReadBackFailed(f"the registry's challenge names no realm: {challenge}")
    r = http.get(realm, params=parts, auth=auth, timeout=30)
    if r.status_code != 200:
        raise ReadBackFailed(f"the token endpoint answered {r.status_code}: {r.text[:200]}")
    body = r.json()
    return body.get("token") or body["access_token"]


def read_back(base_url: str, repository: str, tag: str, auth: tuple[str, str]) -> Pulled:
    """GET the manifest of `repository:tag` and every blob it names; each must hash to its digest."""
    http = requests.Session()
    manifest_url = f"{base_url}/v2/{repository}/manifests/{tag}"
    headers = {"Accept": ", ".join(ACCEPTED_MANIFESTS)}
    r = http.get(manifest_url, headers=headers, timeout=30)
    if r.status_code == 401:
        token = bearer_token(http, r.headers.get("WWW-Authenticate", ""), auth)
        http.headers["Authorization"] = f"Bearer {token}"
        r = http.get(manifest_url, headers=headers, timeout=30)
    if r.status_code != 200:
        raise ReadBackFailed(f"GET {manifest_url} answered {r.status_code}: {r.text[:200]}")
    digest = digest_of(r.content)
    said = r.headers.get("Docker-Content-Digest")
    if said and said != digest:
        raise ReadBackFailed(f"the manifest hashes to {digest}, the registry says {said}")
    manifest = r.json()
    descriptors = [manifest["config"], *manifest["layers"]]
    for d in descriptors:
        _check_blob(http, f"{base_url}/v2/{repository}/blobs/{d['digest']}", d["digest"], d["size"])
    return Pulled(digest, tuple(d["digest"] for d in descriptors))


def _check_blob(http: requests.Session, url: str, digest: str, size: int) -> None:
    hasher, got = hashlib.sha256(), 0
    with http.get(url, stream=True, timeout=30) as r:
        if r.status_code != 200:
            raise ReadBackFailed(f"GET {url} answered {r.status_code}")
        for chunk in r.iter_content(1 << 16):
            hasher.update(chunk)
            got += len(chunk)
    if hex_digest(hasher) != digest or got != size:
        raise ReadBackFailed(f"blob {digest} came back as {hex_digest(hasher)}, {got} bytes (expected {size})")


def skopeo_digest(host: str, repository: str, tag: str, auth: tuple[str, str]) -> str | None:
    """The manifest digest after `skopeo copy` of the image into an OCI layout (skopeo checks every blob);
    None when skopeo is not installed."""
    if shutil.which("skopeo") is None:
        return None
    with tempfile.TemporaryDirectory(prefix="demo-skopeo-") as tmp:
        # An auth file rather than --creds: the token stays out of the process list.
        authfile = Path(tmp) / "auth.json"
        basic = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
        authfile.write_text(json.dumps({"auths": {host: {"auth": basic}}}))
        authfile.chmod(0o600)
        r = subprocess.run(["skopeo", "copy", "--quiet", "--preserve-digests", "--src-tls-verify=false",
                            "--src-authfile", str(authfile), f"docker://{host}/{repository}:{tag}",
                            f"oci:{tmp}/copy:{tag}"], capture_output=True, text=True, timeout=60)
        if r.returncode != 0:
            raise ReadBackFailed(f"skopeo copy failed: {r.stderr.strip()}")
        index = json.loads((Path(tmp) / "copy" / "index.json").read_text())
        return index["manifests"][0]["digest"]
