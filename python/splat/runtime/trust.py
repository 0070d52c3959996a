"""Who may write the files the runtime turns into GPU code (docs/runtime.md, "Trust model").

A PTX file or a schedule table is code the GPU runs with the caller's tensors: whoever can write
a cache or artifact directory can make the next call read or write any memory the process can
reach. A content hash does not help against such a writer (they can rewrite the hash too), so
the runtime only reads artifacts from places that only the current user (or root) can write:

- every existing directory on the path, from ``/`` down (both the path as given and with its
  symbolic links resolved), is owned by the current user or root, and is not writable by group
  or others, unless it has the sticky bit (``/tmp``: others may add entries but not rename or
  remove ours, and whatever they add is theirs, which the owner rule then refuses);
- every file read (manifest, PTX, tables, catalog) is owned by the current user or root and is
  not writable by group or others.

One exception: a directory or file writable by its group passes when that group is the current
user's own private group (same name as the user, no other members: the Debian/Ubuntu default
with umask 002). Directories the runtime creates itself are mode 0700.

What is not covered: the check happens before each load, so a writer who gains access between
the check and the read (or changes permissions later) is out of scope, as is root.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from .artifact import ArtifactError


class UnsafePathError(ArtifactError, PermissionError):
    """A cache or artifact path that someone other than the current user (or root) can write.

    An `ArtifactError` (what artifact loading raises) and a `PermissionError` (an OSError, so
    code that treats an unusable cache as a miss keeps doing so). ``path`` is the bad path."""

    def __init__(self, path: str | os.PathLike, message: str):
        super().__init__(message)
        self.path = str(path)


def _euid() -> int | None:
    """The user the checks protect; None where the platform has no POSIX owners."""
    return os.geteuid() if hasattr(os, "geteuid") else None


def _private_group(gid: int, uid: int) -> bool:
    """Is `gid` the user's own group (same name as the user, nobody else listed in it)?"""
    try:
        import grp  # noqa: PLC0415 - POSIX only
        import pwd  # noqa: PLC0415

        user = pwd.getpwuid(uid)
        group = grp.getgrgid(gid)
    except (ImportError, KeyError):
        return False
    return (gid == user.pw_gid and group.gr_name == user.pw_name
            and set(group.gr_mem) <= {user.pw_name})


def _who(uid: int) -> str:
    try:
        import pwd  # noqa: PLC0415

        return f"uid {uid} ({pwd.getpwuid(uid).pw_name})"
    except (ImportError, KeyError):
        return f"uid {uid}"


def _check_stat(path: str, st: os.stat_result, what: str, me: int, hint: str) -> None:
    if st.st_uid not in (me, 0):
        raise UnsafePathError(path, f"{what}: {path} is owned by {_who(st.st_uid)}, not by you "
                                    f"({_who(me)}) or root, so its owner can change the kernels "
                                    f"the runtime would load; {hint}")
    mode = st.st_mode
    sticky_dir = stat.S_ISDIR(mode) and bool(mode & stat.S_ISVTX)
    others = bool(mode & stat.S_IWOTH)
    group = bool(mode & stat.S_IWGRP) and not _private_group(st.st_gid, me)
    if (others or group) and not sticky_dir:
        who = "everyone" if others else "its group"
        raise UnsafePathError(path, f"{what}: {path} is writable by {who} (mode "
                                    f"{stat.S_IMODE(mode):04o}), so another user could replace the "
                                    f"kernels the runtime would load; run `chmod go-w {path}` or "
                                    f"{hint}")


def _chain(path: Path) -> list:
    """The path's existing prefixes, as given and resolved, root first, without duplicates."""
    out: list = []
    for p in (Path(os.path.realpath(path)), Path(os.path.abspath(path))):
        for q in reversed((p, *p.parents)):
            s = str(q)
            if s not in out:
                out.append(s)
    return out


def check_tree(path: str | os.PathLike, what: str, hint: str = "use a private directory") -> None:
    """`path` and every directory above it (see the module docstring); missing parts are
    skipped (they will be created private). Raises `UnsafePathError` naming the first bad one."""
    me = _euid()
    if me is None:
        return
    for p in _chain(Path(path)):
        try:
            st = os.stat(p)
        except FileNotFoundError:
            continue
        except OSError:  # unreadable: whatever it is, we cannot vouch for it
            raise UnsafePathError(p, f"{what}: cannot inspect {p} to see who may write it; "
                                     f"{hint}") from None
        _check_stat(p, st, what, me, hint)


def check_file(path: str | os.PathLike, what: str, hint: str = "use a private directory") -> None:
    """One existing file (or directory) only, not its parents."""
    me = _euid()
    if me is None:
        return
    try:
        st = os.stat(path)
    except OSError as e:
        raise UnsafePathError(path, f"{what}: cannot inspect {path}: {e.strerror}") from None
    _check_stat(str(path), st, what, me, hint)


def make_private_dirs(path: str | os.PathLike) -> Path:
    """Create `path` and its missing parents with mode 0700 (whatever the umask grants)."""
    p = Path(path)
    missing = []
    q = p
    while not q.exists():
        missing.append(q)
        if q.parent == q:
            break
        q = q.parent
    for d in reversed(missing):
        try:
            d.mkdir(mode=0o700)
        except FileExistsError:  # a concurrent process made it; check_tree vets it
            pass
    return p
