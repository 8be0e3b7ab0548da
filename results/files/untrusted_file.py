"""Reading a file anyone could have written (result files, spec, rule and catalog TOML): refused by
type and size from a `stat` before it is opened, so `/dev/zero`, a FIFO named `x.json`, a symlink
loop or a file of hundreds of MB costs one system call, never a hang or all the memory.

The file is then opened non-blocking (a FIFO swapped in after the `stat` cannot block the read)
and checked again on the open descriptor, and never more than the limit + 1 bytes are read.
"""

from __future__ import annotations

import errno
import os
import stat

_MIB = 1024 * 1024
_KINDS = (
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)
_OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)


class UnreadableFile(Exception):
    """The one-line problem (without the path) of a file that is refused or cannot be read."""

    def __init__(self, problem: str) -> None:
        self.problem = problem
        super().__init__(problem)


def read_untrusted(path: str | os.PathLike[str], max_bytes: int, what: str) -> bytes:
    """The bytes of the regular file `path`, at most `max_bytes` of them; else UnreadableFile.

    `what` names the expected kind of file in messages ("a result file", "a TOML file")."""
    try:
        info = os.stat(path)
    except OSError as exc:
        raise UnreadableFile(_os_problem(exc)) from None
    _check(info, max_bytes, what)
    try:
        fd = os.open(path, _OPEN_FLAGS)
    except OSError as exc:
        raise UnreadableFile(_os_problem(exc)) from None
    with open(fd, "rb", buffering=0) as handle:
        try:
            info = os.fstat(fd)
            _check(info, max_bytes, what)  # it may have been replaced since the stat
            data = handle.read(info.st_size + 1)
            while data is not None and len(data) > info.st_size and len(data) <= max_bytes:
                more = handle.read(max_bytes + 1 - len(data))  # grew, or a size-0 /proc file
                if not more:
                    break
                data += more
        except OSError as exc:
            raise UnreadableFile(_os_problem(exc)) from None
    if data is None:  # non-blocking read with nothing to give: not a regular file after all
        raise UnreadableFile(f"is not a regular file; refused, not read as {what}")
    if len(data) > max_bytes:
        raise UnreadableFile(_too_big(len(data), max_bytes, what, "over"))
    return data


def utf8_text(raw: bytes) -> str:
    """`raw` (from `read_untrusted`) decoded as UTF-8; UnreadableFile names the first bad byte."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UnreadableFile(f"not UTF-8 text (byte 0x{raw[exc.start]:02x} at offset {exc.start})") from None


def _check(info: os.stat_result, max_bytes: int, what: str) -> None:
    mode = info.st_mode
    if stat.S_ISDIR(mode):
        raise UnreadableFile(f"is a folder, not {what}")
    if not stat.S_ISREG(mode):
        kind = next((name for test, name in _KINDS if test(mode)), "not a regular file")
        raise UnreadableFile(f"is {kind}, not {what}; refused without reading it")
    if info.st_size > max_bytes:
        raise UnreadableFile(_too_big(info.st_size, max_bytes, what, ""))


def _too_big(size: int, max_bytes: int, what: str, qualifier: str) -> str:
    amount = f"{qualifier} {size:,} bytes" if qualifier else f"{size:,} bytes ({size / _MIB:.1f} MiB)"
    return (f"is {amount.strip()}, larger than the {max_bytes // _MIB} MiB allowed for {what}; "
            "refused without reading it")


def _os_problem(exc: OSError) -> str:
    if exc.errno == errno.ENOENT:
        return "no such file"
    if exc.errno == errno.ELOOP:
        return "is a symlink loop (too many levels of symbolic links)"
    if exc.errno == errno.EISDIR:
        return "is a folder"
    return f"cannot read: {exc.strerror or exc}"

