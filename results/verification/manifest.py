"""Evidence integrity: the lot manifest (sha256 of every unit file, the procedure file and the
declared spec, and every determination), its SSHSIG signature made and checked by the real
`ssh-keygen -Y` (namespace "tppbench-lot"; no crypto code of our own), and `verify --check`, which
checks the signature and re-hashes every listed file.

Paths in a manifest are relative to the manifest's folder where the file lies under it, else
absolute. A manifest (and its .sig) is never written over: evidence already signed stays as it was."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from results.errors import TppbenchError, UsageError
from results.verification.lot import Lot

NAMESPACE = "tppbench-lot"
MANIFEST_FORMAT_VERSION = 1
SSH_KEYGEN_TIMEOUT_S = 60


class EvidenceError(TppbenchError):
    exit_code = 1


def _rel(path: Path, base: Path) -> str:
    path = path.resolve()
    try:
        return str(path.relative_to(base.resolve()))
    except ValueError:
        return str(path)


def manifest_document(lot: Lot, manifest_path: Path) -> dict[str, Any]:
    base = manifest_path.parent
    files = [{"role": "procedure", "path": _rel(lot.procedure.path, base), "sha256": lot.procedure.sha256},
             {"role": "declared", "path": _rel(lot.declared.file, base), "sha256": lot.declared.sha256}]
    seen = set()
    for u in lot.units:
        if u.unit.file.resolve() not in seen:
            seen.add(u.unit.file.resolve())
            files.append({"role": "unit", "path": _rel(u.unit.file, base), "sha256": u.unit.sha256})
    return {
        "manifest_format_version": MANIFEST_FORMAT_VERSION, "tool": "tppbench", "tool_version": _tool_version(),
        "lot": lot.name, "created_utc": lot.created_utc,
        "procedure": lot.procedure.record(), "declared": {"ref": lot.declared.ref, "name": lot.declared.name},
        "verified": lot.verified, "counts": lot.counts, "files": files,
        "determinations": [{"serial": u.unit.serial, "file": _rel(u.unit.file, base),
                            "device_index": u.unit.device_index, "determination": u.determination,
                            "decided_by": u.decided_by,
                            "items": {i.item: i.determination for i in u.items}} for u in lot.units],
    }


def _tool_version() -> str:
    from importlib import metadata

    try:
        return metadata.version("tppbench")
    except metadata.PackageNotFoundError:
        return "unknown"


def ssh_keygen() -> str:
    found = shutil.which("ssh-keygen")
    if found is None:
        raise EvidenceError("ssh-keygen not found: signing and checking use OpenSSH's ssh-keygen "
                            "(Debian/Ubuntu: apt-get install openssh-client)")
    return found


def _run(args: list[str], stdin: bytes | None = None) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(args, input=stdin if stdin is not None else b"", capture_output=True,
                              timeout=SSH_KEYGEN_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise EvidenceError(f"{' '.join(args[:3])}: no answer in {SSH_KEYGEN_TIMEOUT_S} s "
                            "(a key with a passphrase needs ssh-agent)") from None
    except OSError as exc:
        raise EvidenceError(f"cannot run ssh-keygen: {exc.strerror or exc}") from None


def _first_line(cp: subprocess.CompletedProcess) -> str:
    text = (cp.stderr or cp.stdout or b"").decode(errors="replace").strip().splitlines()
    return text[0] if text else f"exit status {cp.returncode}"


def check_signing_key(key: Path) -> str:
    """The key's fingerprint line, or one line saying why it cannot sign (before anything is written)."""
    tool = ssh_keygen()
    if not key.is_file():
        raise EvidenceError(f"{key}: no such key file")
    cp = _run([tool, "-l", "-f", str(key)])
    if cp.returncode != 0:
        raise EvidenceError(f"{key}: not an SSH key ({_first_line(cp)})")
    return cp.stdout.decode(errors="replace").strip()


def refuse_existing(manifest: Path) -> None:
    for path in (manifest, Path(f"{manifest}.sig")):
        if path.exists():
            raise UsageError(f"{path}: exists; a manifest and its signature are never written over (choose another name)")
    if not manifest.parent.is_dir():
        raise UsageError(f"{manifest}: folder {manifest.parent} does not exist")


def write_manifest(lot: Lot, manifest: Path) -> Path:
    from results.files.atomic import publish_new

    raw = (json.dumps(manifest_document(lot, manifest), indent=1, sort_keys=True) + "\n").encode()
    written = publish_new(manifest, lambda f: f.write(raw))
    if written != manifest:  # a file appeared under the name after refuse_existing: keep both, say so
        os.unlink(written)
        raise EvidenceError(f"{manifest}: appeared while the lot was judged; nothing written")
    return manifest


def sign(manifest: Path, key: Path) -> Path:
    tool = ssh_keygen()
    cp = _run([tool, "-Y", "sign", "-f", str(key), "-n", NAMESPACE, str(manifest)])
    sig = Path(f"{manifest}.sig")
    if cp.returncode != 0 or not sig.is_file():
        raise EvidenceError(f"{key}: signing failed: {_first_line(cp)}")
    return sig


@dataclass(frozen=True)
class CheckResult:
    principals: tuple[str, ...]
    signature: str  # "good" | "not checked"
    files: int
    problems: tuple[str, ...]


def check_manifest(manifest: Path, allowed_signers: Path | None) -> CheckResult:
    try:
        raw = manifest.read_bytes()
        doc = json.loads(raw)
    except FileNotFoundError:
        raise EvidenceError(f"{manifest}: no such manifest") from None
    except (OSError, ValueError) as exc:
        raise EvidenceError(f"{manifest}: not a readable manifest ({exc})") from None
    if not isinstance(doc, dict) or doc.get("manifest_format_version") != MANIFEST_FORMAT_VERSION \
            or not isinstance(doc.get("files"), list):
        raise EvidenceError(f"{manifest}: not a tppbench lot manifest (manifest_format_version {MANIFEST_FORMAT_VERSION})")
    principals: tuple[str, ...] = ()
    signature = "not checked (no --allowed-signers)"
    if allowed_signers is not None:
        principals = verify_signature(manifest, raw, allowed_signers)
        signature = "good"
    problems = []
    for entry in doc["files"]:
        if not isinstance(entry, dict) or not isinstance(entry.get("path"), str):
            raise EvidenceError(f"{manifest}: a files entry without a path")
        path = Path(entry["path"])
        path = path if path.is_absolute() else manifest.parent / path
        try:
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
        except FileNotFoundError:
            problems.append(f"{entry['path']}: missing")
            continue
        except OSError as exc:
            problems.append(f"{entry['path']}: unreadable ({exc.strerror or exc})")
            continue
        if digest != entry.get("sha256"):
            problems.append(f"{entry['path']}: changed (sha256 {digest[:16]}..., manifest says {str(entry.get('sha256'))[:16]}...)")
    return CheckResult(principals, signature, len(doc["files"]), tuple(problems))


def verify_signature(manifest: Path, raw: bytes, allowed_signers: Path) -> tuple[str, ...]:
    tool = ssh_keygen()
    sig = Path(f"{manifest}.sig")
    if not sig.is_file():
        raise EvidenceError(f"{sig}: no signature beside the manifest")
    if not allowed_signers.is_file():
        raise EvidenceError(f"{allowed_signers}: no such allowed-signers file")
    cp = _run([tool, "-Y", "find-principals", "-s", str(sig), "-f", str(allowed_signers)])
    if cp.returncode != 0:
        raise EvidenceError(f"{sig}: signed by no key in {allowed_signers} ({_first_line(cp)})")
    principals = tuple(p for p in cp.stdout.decode(errors="replace").split() if p)
    for principal in principals:
        check = _run([tool, "-Y", "verify", "-f", str(allowed_signers), "-I", principal, "-n", NAMESPACE,
                      "-s", str(sig)], stdin=raw)
        if check.returncode == 0:
            return (principal,)
    raise EvidenceError(f"{manifest}: BAD signature: the manifest does not match {sig} ({_first_line(check)})")
