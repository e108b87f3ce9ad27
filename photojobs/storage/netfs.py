"""SQLite's file must not live on a network filesystem: its locks do not work there
(NFS, SMB) and two hosts writing one file corrupt it. Several hosts use PostgreSQL."""

from __future__ import annotations

from pathlib import Path

from ..errors import DatabaseUnusable

NETWORK_FILESYSTEMS = {"nfs", "nfs4", "cifs", "smb3", "smbfs", "9p", "afs", "ceph", "glusterfs", "lustre",
                       "fuse.sshfs", "fuse.glusterfs", "fuse.cephfs", "davfs", "fuse.rclone"}


def filesystem_of(path: Path, mountinfo: str) -> str | None:
    """The type of the filesystem `path` is on, from /proc/self/mountinfo's text."""
    best, kind = "", None
    for line in mountinfo.splitlines():
        fields = line.split()
        if " - " not in line or len(fields) < 5:
            continue
        mount_point = fields[4].replace("\\040", " ")
        fstype = line.split(" - ", 1)[1].split()[0]
        inside = str(path) == mount_point or str(path).startswith(mount_point.rstrip("/") + "/")
        if inside and len(mount_point) >= len(best):
            best, kind = mount_point, fstype
    return kind


def refuse_network_filesystem(path: Path) -> None:
    """Raise DatabaseUnusable if the SQLite file `path` is on a network filesystem (Linux)."""
    try:
        mountinfo = Path("/proc/self/mountinfo").read_text()
    except OSError:
        return  # not Linux: nothing to tell by
    kind = filesystem_of(path.resolve().parent, mountinfo)
    if kind in NETWORK_FILESYSTEMS:
        raise DatabaseUnusable(f"database {path} is on a network filesystem ({kind}): SQLite's locks do not work there",
                               hint="keep the SQLite file on a local disk, or use PostgreSQL for several hosts")


__all__ = ["filesystem_of", "refuse_network_filesystem"]
