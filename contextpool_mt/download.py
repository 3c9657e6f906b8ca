"""Checked, resumable downloads and safe archive extraction (standard library only).

``fetch(url, dest, checksum)`` downloads ``url`` (or the same file name from a mirror) to
``dest``:

* the bytes go to ``dest + ".part"``; a ``.part`` left by an earlier run, or by a
  connection that dropped, is continued with an HTTP ``Range`` request (or a seek, for
  ``file://`` and local-folder mirrors), and a dropped connection is retried ``retries``
  times before giving up (the ``.part`` is kept for the next run);
* when the file is whole its digest is compared with ``checksum``; only a match renames it
  to ``dest`` (and records a ``dest.verified`` stamp so later runs need not re-hash it).
  A mismatch deletes the file and raises :class:`ChecksumMismatch`, whose message names
  the URL, the file and both digests.  An existing ``dest`` is re-checked the same way.

A checksum is written ``sha256:<hex>`` or ``md5:<hex>`` (a bare hex string is read by its
length).  A mirror is ``http(s)://...``, ``file://...`` or a local folder holding the same
file names as the original URLs.

``safe_extract(archive, dest_dir, members)`` checks *every* member of a tar archive first
(absolute paths, ``..`` components, links that point outside ``dest_dir``, device files and
FIFOs are refused with :class:`UnsafeArchive`), then extracts the wanted regular files into
a temporary folder that is renamed to ``dest_dir`` once complete; a refused or incomplete
extraction leaves nothing behind.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import posixpath
import re
import shutil
import socket
import sys
import tarfile
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Callable, Dict, Iterable, List, Optional

CHUNK = 1 << 20
USER_AGENT = "contextpool-mt-downloader/1.0"


class DownloadError(Exception):
    """A download could not be completed; the message says what to do."""


class ChecksumMismatch(DownloadError):
    def __init__(self, url: str, path: str, checksum: "Checksum", actual: str):
        self.url, self.path, self.expected, self.actual = url, path, checksum.hexdigest, actual
        super().__init__(
            f"checksum mismatch for {os.path.basename(path)} from {url}: expected "
            f"{checksum.algo} {checksum.hexdigest}, got {actual}; the file {path} was deleted. "
            f"Rerun to download it again; if it keeps failing, the source (or --mirror) serves "
            f"a different file"
        )


class UnsafeArchive(Exception):
    """An archive member would be written outside the target folder (or is not a file)."""


# --------------------------------------------------------------------------- checksums


@dataclass(frozen=True)
class Checksum:
    algo: str
    hexdigest: str

    @classmethod
    def parse(cls, text: str) -> "Checksum":
        text = text.strip()
        if ":" in text:
            algo, _, hexdigest = text.partition(":")
            algo = algo.lower()
        else:
            hexdigest = text
            algo = {64: "sha256", 32: "md5", 128: "sha512", 40: "sha1"}.get(len(text), "")
        hexdigest = hexdigest.lower()
        if algo not in ("sha256", "md5", "sha512", "sha1") or not re.fullmatch(r"[0-9a-f]+", hexdigest):
            raise ValueError(f"not a checksum: {text!r} (write sha256:<64 hex digits> or md5:<32 hex digits>)")
        if len(hexdigest) != hashlib.new(algo).digest_size * 2:
            raise ValueError(f"{algo} checksum {hexdigest!r} has the wrong length")
        return cls(algo, hexdigest)

    def __str__(self) -> str:
        return f"{self.algo}:{self.hexdigest}"


def file_digest(path: str, algo: str) -> str:
    h = hashlib.new(algo)
    with open(path, "rb") as f:
        while True:
            block = f.read(CHUNK)
            if not block:
                break
            h.update(block)
    return h.hexdigest()


def read_checksum_file(path: str) -> Dict[str, Checksum]:
    """Reads ``<digest>  <file name>`` lines (``sha256sum`` output; ``md5:``/``sha256:``
    prefixes allowed; ``#`` comments).  Returns {file name: Checksum}."""
    result: Dict[str, Checksum] = {}
    try:
        f = open(path, encoding="utf-8")
    except OSError as e:
        raise DownloadError(f"cannot read the checksum file {path}: {e.strerror}") from None
    with f:
        for lineno, line in enumerate(f, 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            parts = line.split(None, 1)
            if len(parts) != 2:
                raise DownloadError(f"{path}:{lineno}: expected '<checksum>  <file name>', got {line!r}")
            digest, name = parts
            try:
                result[os.path.basename(name.lstrip("*"))] = Checksum.parse(digest)
            except ValueError as e:
                raise DownloadError(f"{path}:{lineno}: {e}") from None
    return result


# --------------------------------------------------------------------------- progress


def human_size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"


class Progress:
    """Progress on stderr: a live line on a terminal, a line every 10 % otherwise."""

    def __init__(self, name: str, total: Optional[int], start: int, stream=None, enabled: bool = True):
        self.name, self.total, self.start = name, total, start
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.tty = enabled and hasattr(self.stream, "isatty") and self.stream.isatty()
        self.t0 = self.last = time.monotonic()
        self.last_decile = -1
        self.done = start

    @staticmethod
    def _mib(n: int) -> str:
        return human_size(n)

    def _line(self) -> str:
        rate = (self.done - self.start) / max(time.monotonic() - self.t0, 1e-6)
        if self.total:
            pct = 100.0 * self.done / self.total
            return f"  {self.name}: {self._mib(self.done)} / {self._mib(self.total)} ({pct:.1f}%), {self._mib(int(rate))}/s"
        return f"  {self.name}: {self._mib(self.done)}, {self._mib(int(rate))}/s"

    def update(self, done: int) -> None:
        self.done = done
        if not self.enabled:
            return
        now = time.monotonic()
        if self.tty:
            if now - self.last >= 0.2:
                self.last = now
                print("\r" + self._line(), end="", file=self.stream, flush=True)
        elif self.total:
            decile = int(10 * done / self.total)
            if decile != self.last_decile and decile < 10:
                self.last_decile = decile
                print(self._line(), file=self.stream, flush=True)
        elif now - self.last >= 30:
            self.last = now
            print(self._line(), file=self.stream, flush=True)

    def close(self) -> None:
        if self.enabled:
            print(("\r" if self.tty else "") + self._line(), file=self.stream, flush=True)


# --------------------------------------------------------------------------- sources


def resolve_source(url: str, mirror: Optional[str]) -> str:
    """The URL (or local path) to read: ``url`` itself, or its file name under ``mirror``."""
    if not mirror:
        return url
    name = posixpath.basename(urllib.parse.urlparse(url).path)
    if re.match(r"^(https?|file)://", mirror, re.IGNORECASE):
        return mirror.rstrip("/") + "/" + urllib.parse.quote(name)
    if not os.path.isdir(mirror):
        raise DownloadError(f"--mirror {mirror} is neither an http(s):// or file:// URL nor a folder")
    return os.path.join(mirror, name)


class _Retryable(Exception):
    pass


def _open_http(source: str, offset: int, timeout: float):
    """Returns (stream, start offset actually served, total size or None)."""
    headers = {"User-Agent": USER_AGENT}
    if offset > 0:
        headers["Range"] = f"bytes={offset}-"
    req = urllib.request.Request(source, headers=headers)
    try:
        resp = urllib.request.urlopen(req, timeout=timeout)
    except urllib.error.HTTPError as e:
        if e.code == 416 and offset > 0:
            return None, offset, offset  # nothing left to send: .part is (at least) whole
        if e.code in (408, 429, 500, 502, 503, 504):
            raise _Retryable(f"HTTP {e.code} {e.reason}") from None
        raise DownloadError(f"HTTP {e.code} {e.reason} for {source}") from None
    except urllib.error.URLError as e:
        reason = e.reason
        if isinstance(reason, (socket.timeout, ConnectionError, TimeoutError)):
            raise _Retryable(str(reason)) from None
        raise DownloadError(f"cannot reach {source}: {reason}") from None
    except (socket.timeout, ConnectionError, http.client.HTTPException) as e:
        raise _Retryable(f"{type(e).__name__}: {e}") from None
    status = resp.status
    if status == 206:
        m = re.match(r"bytes (\d+)-(\d+)/(\d+|\*)", resp.headers.get("Content-Range", ""))
        if not m:
            resp.close()
            raise DownloadError(f"{source}: partial response without a usable Content-Range header")
        start = int(m.group(1))
        total = int(m.group(3)) if m.group(3) != "*" else None
        return resp, start, total
    length = resp.headers.get("Content-Length")
    return resp, 0, int(length) if length is not None else None


def _open_local(path: str, offset: int):
    if path.lower().startswith("file://"):
        parsed = urllib.parse.urlparse(path)
        path = urllib.request.url2pathname(parsed.path)
    try:
        f = open(path, "rb")
    except FileNotFoundError:
        raise DownloadError(f"{path} does not exist (is the mirror complete?)") from None
    total = os.fstat(f.fileno()).st_size
    start = offset if offset <= total else 0
    f.seek(start)
    return f, start, total


# --------------------------------------------------------------------------- fetch


def _stamp_path(dest: str) -> str:
    return dest + ".verified"


def _stamp_text(dest: str, checksum: Checksum) -> str:
    st = os.stat(dest)
    return f"{checksum} size={st.st_size} mtime_ns={st.st_mtime_ns}\n"


def _stamp_ok(dest: str, checksum: Checksum) -> bool:
    try:
        with open(_stamp_path(dest), encoding="utf-8") as f:
            return f.read() == _stamp_text(dest, checksum)
    except OSError:
        return False


def _write_stamp(dest: str, checksum: Checksum) -> None:
    tmp = _stamp_path(dest) + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(_stamp_text(dest, checksum))
    os.replace(tmp, _stamp_path(dest))


def _remove(*paths: str) -> None:
    for p in paths:
        try:
            os.remove(p)
        except FileNotFoundError:
            pass


def verify_file(path: str, checksum: Checksum, url: str, log: Callable[[str], None]) -> None:
    """Raises ChecksumMismatch (after deleting ``path``) unless ``path`` matches."""
    log(f"  checking {checksum.algo} of {os.path.basename(path)}")
    actual = file_digest(path, checksum.algo)
    if actual != checksum.hexdigest:
        _remove(path, _stamp_path(path))
        raise ChecksumMismatch(url, path, checksum, actual)


def fetch(
    url: str,
    dest: str,
    checksum: Checksum,
    *,
    mirror: Optional[str] = None,
    retries: int = 5,
    retry_wait: float = 2.0,
    timeout: float = 60.0,
    progress: bool = True,
    log: Callable[[str], None] = print,
) -> str:
    """Downloads ``url`` (or its mirror copy) to ``dest`` and checks it; returns ``dest``."""
    name = os.path.basename(dest)
    source = resolve_source(url, mirror)
    if os.path.exists(dest):
        if _stamp_ok(dest, checksum):
            log(f"{name}: already downloaded and verified")
            return dest
        log(f"{name}: already downloaded; verifying")
        verify_file(dest, checksum, source, log)
        _write_stamp(dest, checksum)
        return dest

    os.makedirs(os.path.dirname(os.path.abspath(dest)), exist_ok=True)
    part = dest + ".part"
    is_http = bool(re.match(r"^https?://", source, re.IGNORECASE))
    failures = 0
    restarted_after_416 = False
    while True:
        offset = os.path.getsize(part) if os.path.exists(part) else 0
        log(f"{name}: {'resuming at byte ' + str(offset) + ' from' if offset else 'downloading'} {source}")
        try:
            if is_http:
                stream, start, total = _open_http(source, offset, timeout)
            else:
                stream, start, total = _open_local(source, offset)
        except _Retryable as e:
            failures += 1
            if failures > retries:
                raise DownloadError(
                    f"could not download {source}: {e} (gave up after {retries} retries)"
                    + (f"; {part} is kept, rerun to resume" if os.path.exists(part) else "; rerun to try again")
                ) from None
            wait = min(retry_wait * (2 ** (failures - 1)), 60.0)
            log(f"{name}: {e}; retrying in {wait:.0f} s ({failures}/{retries})")
            time.sleep(wait)
            continue

        if stream is not None:  # (None: HTTP 416, the .part already holds every byte)
            if start != offset:
                if offset:
                    log(f"{name}: the source did not resume at byte {offset}; starting again from 0")
                _remove(part)
                offset = 0
                if start != 0:
                    stream.close()
                    raise DownloadError(f"{source}: server answered from byte {start}, asked for 0")
            bar = Progress(name, total, offset, enabled=progress)
            done = offset
            try:
                with stream, open(part, "ab") as out:
                    while True:
                        try:
                            block = stream.read(CHUNK)
                        except (socket.timeout, TimeoutError, ConnectionError, http.client.HTTPException) as e:
                            raise _Retryable(f"{type(e).__name__}: {e}") from None
                        if not block:
                            break
                        out.write(block)
                        done += len(block)
                        bar.update(done)
                if total is not None and done < total:
                    raise _Retryable(f"connection closed after {done} of {total} bytes")
            except _Retryable as e:
                bar.close()
                failures += 1
                if failures > retries:
                    raise DownloadError(
                        f"could not download {source}: {e} (gave up after {retries} retries); "
                        f"{part} is kept, rerun to resume"
                    ) from None
                wait = min(retry_wait * (2 ** (failures - 1)), 60.0)
                log(f"{name}: transfer interrupted ({e}); resuming in {wait:.0f} s ({failures}/{retries})")
                time.sleep(wait)
                continue
            bar.close()

        actual = file_digest(part, checksum.algo)
        if actual != checksum.hexdigest:
            _remove(part)
            if stream is None and not restarted_after_416:
                # The .part claimed to be complete but was not the right file: start over once.
                restarted_after_416 = True
                log(f"{name}: the partial download does not match its checksum; starting again")
                continue
            raise ChecksumMismatch(source, dest, checksum, actual)
        os.replace(part, dest)
        _write_stamp(dest, checksum)
        log(f"{name}: {checksum.algo} OK")
        if checksum.algo != "sha256":
            log(f"{name}: its sha256 is {file_digest(dest, 'sha256')} (only an {checksum.algo} is published)")
        return dest


# --------------------------------------------------------------------------- extraction


def _norm_member(name: str) -> str:
    while name.startswith("./"):
        name = name[2:]
    return name.rstrip("/")


def _inside(base: str, path: str) -> bool:
    return path == base or path.startswith(base + os.sep)


def check_member(member: tarfile.TarInfo, dest_dir: str, archive: str) -> None:
    """Raises UnsafeArchive if extracting ``member`` under ``dest_dir`` could leave it."""
    name = member.name
    where = f"{archive}: member {name!r}"
    if name.startswith("/") or name.startswith("\\") or re.match(r"^[A-Za-z]:", name):
        raise UnsafeArchive(f"{where} has an absolute path; refusing to extract this archive")
    parts = re.split(r"[\\/]", name)
    if ".." in parts:
        raise UnsafeArchive(f"{where} contains '..' and would leave {dest_dir}; refusing to extract this archive")
    base = os.path.realpath(dest_dir)
    target = os.path.realpath(os.path.join(base, name))
    if not _inside(base, target):
        raise UnsafeArchive(f"{where} would be written outside {dest_dir}; refusing to extract this archive")
    if member.issym():
        link = member.linkname
        if link.startswith("/") or os.path.isabs(link):
            raise UnsafeArchive(f"{where} is a symlink to the absolute path {link!r}; refusing to extract this archive")
        resolved = os.path.realpath(os.path.join(os.path.dirname(target), link))
        if not _inside(base, resolved):
            raise UnsafeArchive(f"{where} is a symlink pointing outside {dest_dir} ({link!r}); refusing to extract this archive")
    elif member.islnk():
        link = member.linkname
        resolved = os.path.realpath(os.path.join(base, link))
        if link.startswith("/") or ".." in re.split(r"[\\/]", link) or not _inside(base, resolved):
            raise UnsafeArchive(f"{where} is a hard link pointing outside {dest_dir} ({link!r}); refusing to extract this archive")
    elif not (member.isfile() or member.isdir()):
        raise UnsafeArchive(f"{where} is a device file or FIFO; refusing to extract this archive")


def safe_extract(
    archive: str,
    dest_dir: str,
    members: Optional[Iterable[str]] = None,
    log: Callable[[str], None] = print,
) -> List[str]:
    """Extracts ``members`` (all regular files when None) of the tar ``archive`` into
    ``dest_dir`` after checking every member; returns the extracted paths."""
    wanted = None if members is None else {_norm_member(m) for m in members}
    tmp = dest_dir.rstrip("/") + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    found: Dict[str, str] = {}
    names_seen: List[str] = []
    try:
        try:
            tar = tarfile.open(archive, "r:*")
        except tarfile.TarError as e:
            raise UnsafeArchive(f"{archive} is not a readable tar archive: {e}") from None
        with tar:
            all_members = tar.getmembers()  # reads the whole archive: every member is checked
            for m in all_members:
                check_member(m, tmp, archive)
            for m in all_members:
                key = _norm_member(m.name)
                names_seen.append(key)
                if wanted is not None and key not in wanted:
                    continue
                if m.isdir():
                    continue
                if not m.isfile():
                    if wanted is not None:
                        raise UnsafeArchive(f"{archive}: wanted member {key!r} is not a regular file")
                    continue
                out_path = os.path.join(tmp, key)
                os.makedirs(os.path.dirname(out_path), exist_ok=True)
                src = tar.extractfile(m)
                assert src is not None
                with src, open(out_path, "wb") as out:
                    shutil.copyfileobj(src, out, CHUNK)
                found[key] = os.path.join(dest_dir, key)
                log(f"  extracted {key}")
        if wanted is not None:
            missing = sorted(wanted - set(found))
            if missing:
                sample = ", ".join(sorted(n for n in names_seen if n)[:20])
                raise UnsafeArchive(
                    f"{archive} lacks {', '.join(missing)} (it holds: {sample}"
                    f"{', ...' if len(names_seen) > 20 else ''}); is it the right file?"
                )
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    shutil.rmtree(dest_dir, ignore_errors=True)
    os.replace(tmp, dest_dir)
    return [found[k] for k in sorted(found)]
