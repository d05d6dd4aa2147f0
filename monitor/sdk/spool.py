"""A bounded, crash-safe disk spool for batches the sink could not take (outage, timeout, 5xx).

Layout: ``<root>/<pid>-<random>/`` (mode 0700) holds a ``lock`` file, flock-ed for the life of
the process, and append-only segment files ``<seq>.seg``. Each batch is one frame::

    magic u32 | payload length u32 | crc32(payload) u32 | records u32 | created f64 | payload

written with one ``write`` and an ``fsync`` (a batch the worker spooled survives a crash of the
host process). Frames are replayed in order and a segment is deleted once all its frames were
delivered; a crash between delivery and deletion replays a frame twice, which the idempotent
writer absorbs. When the spool is over its byte budget the oldest segment is evicted and its
records are counted as lost. A process that died leaves its directory unlocked: the next process
with the same sink adopts its segments (after truncating a torn tail) and replays them.

Hand-written (no library): the format is ~150 lines, needs no dependency in serving images, and
the peers we follow (Vector, Fluent Bit, Azure Monitor's exporter) use the same design.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import secrets
import struct
import threading
import time
import zlib
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

MAGIC = 0x4D4F4E31  # "MON1"
HEADER = struct.Struct("<IIIId")
SUFFIX = ".seg"


@dataclass
class Segment:
    path: Path
    size: int = 0
    records: int = 0
    frames: list[tuple[int, int, int, float]] | None = None  # (offset, length, records, created)


@dataclass(frozen=True)
class Frame:
    payload: bytes
    records: int
    adopted: bool  # from a dead process's spool


class Spool:
    """Frames of one process's spool directory, plus segments adopted from dead processes.

    Thread-safe: the worker writes and replays, and a shutdown that gives up on a stuck worker
    writes its leftovers from the caller's thread.
    """

    def __init__(
        self, root: Path, *, max_bytes: int = 1 << 30, segment_bytes: int = 4 << 20
    ) -> None:
        self.root = root
        self.max_bytes = max_bytes
        self.segment_bytes = max(1024, min(segment_bytes, max_bytes // 4 or 1))
        self.dir: Path | None = None
        self._lock_fd: int | None = None
        self._segments: list[Segment] = []
        self._seq = 0
        self._read = 0  # index of the next frame to replay in the oldest segment
        self.evicted_records = 0
        self._adopted: dict[Path, int] = {}  # orphan dir -> its lock, held until replayed
        self._lock = threading.RLock()

    # --- state ----------------------------------------------------------------------------

    @property
    def pending_records(self) -> int:
        first = self._segments[0] if self._segments else None
        done = sum(f[2] for f in (first.frames or [])[: self._read]) if first else 0
        return sum(s.records for s in self._segments) - done

    @property
    def pending_bytes(self) -> int:
        return sum(s.size for s in self._segments)

    def oldest_age(self) -> float | None:
        for seg in self._segments:
            frames = seg.frames or []
            start = self._read if seg is self._segments[0] else 0
            if len(frames) > start:
                return max(0.0, time.time() - frames[start][3])
        return None

    def __bool__(self) -> bool:
        return self.pending_records > 0

    # --- writing --------------------------------------------------------------------------

    def _open_dir(self) -> Path:
        if self.dir is not None:
            return self.dir
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        name = f"{os.getpid()}-{secrets.token_hex(4)}"
        tmp = self.root / f".{name}"
        tmp.mkdir(mode=0o700)
        os.chmod(tmp, 0o700)
        fd = os.open(tmp / "lock", os.O_CREAT | os.O_RDWR, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        final = self.root / name
        os.rename(tmp, final)  # adopters skip dot-names, so they never see an unlocked dir
        self._lock_fd = fd
        self.dir = final
        return final

    def _append(self, payload: bytes, records: int) -> int:
        """Write one frame durably; returns the records evicted to make room (raises OSError)."""
        frame_len = HEADER.size + len(payload)
        if frame_len > self.max_bytes:
            raise OSError(f"batch of {frame_len} bytes exceeds the spool budget")
        evicted = 0
        while self._segments and self.pending_bytes + frame_len > self.max_bytes:
            evicted += self._evict_oldest()
        directory = self._open_dir()
        seg = self._segments[-1] if self._segments else None
        if seg is None or seg.size + frame_len > self.segment_bytes or seg.path.parent != directory:
            self._seq += 1
            seg = Segment(directory / f"{self._seq:012d}{SUFFIX}", frames=[])
            self._segments.append(seg)
        created = time.time()
        header = HEADER.pack(MAGIC, len(payload), zlib.crc32(payload), records, created)
        fd = os.open(seg.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            try:
                os.write(fd, header + payload)
                os.fsync(fd)
            except OSError:
                os.ftruncate(fd, seg.size)  # never leave half a frame behind us
                raise
        finally:
            os.close(fd)
        assert seg.frames is not None
        seg.frames.append((seg.size, len(payload), records, created))
        seg.size += frame_len
        seg.records += records
        self.evicted_records += evicted
        return evicted

    def _evict_oldest(self) -> int:
        seg = self._segments.pop(0)
        done = sum(f[2] for f in (seg.frames or [])[: self._read])
        self._read = 0
        self._retire(seg)
        lost = seg.records - done
        log.warning("spool full: evicted %d records of %s", lost, seg.path.name)
        return lost

    # --- public, thread-safe ------------------------------------------------------------------

    def append(self, payload: bytes, records: int) -> int:
        """Write one frame durably; returns the records evicted to make room (raises OSError)."""
        with self._lock:
            return self._append(payload, records)

    def peek(self) -> tuple[bytes, int] | None:
        """The oldest frame not yet delivered: (payload, records)."""
        with self._lock:
            return self._peek()

    def commit(self, frames: int = 1) -> None:
        """The ``frames`` oldest frames (from :meth:`peek` or :meth:`peek_many`) were
        delivered."""
        with self._lock:
            for _ in range(frames):
                self._commit()

    def adopt_orphans(self) -> int:
        """Take over the segments of dead processes' spools under ``root``; returns frames."""
        with self._lock:
            return self._adopt_orphans()

    def close(self) -> None:
        """Release the directory (removed when empty); after a fork the child calls forget()."""
        with self._lock:
            self._close()

    # --- replay ---------------------------------------------------------------------------

    def peek_many(self, max_records: int) -> list[Frame]:
        """The oldest frames not yet delivered, up to ``max_records`` records (at least one
        frame): replay writes them together, then :meth:`commit` them."""
        with self._lock:
            self._peek()  # retires exhausted segments first
            frames: list[Frame] = []
            total = 0
            seg_index, read = 0, self._read
            while seg_index < len(self._segments) and (not frames or total < max_records):
                seg = self._segments[seg_index]
                entries = seg.frames or []
                if read >= len(entries):
                    seg_index, read = seg_index + 1, 0
                    continue
                offset, length, records, _ = entries[read]
                with open(seg.path, "rb") as fh:
                    fh.seek(offset + HEADER.size)
                    payload = fh.read(length)
                frames.append(Frame(payload, records, seg.path.parent != self.dir))
                total += records
                read += 1
            return frames

    def _peek(self) -> tuple[bytes, int] | None:
        """The oldest frame not yet delivered: (payload, records)."""
        while self._segments:
            seg = self._segments[0]
            frames = seg.frames or []
            if self._read < len(frames):
                offset, length, records, _ = frames[self._read]
                with open(seg.path, "rb") as fh:
                    fh.seek(offset + HEADER.size)
                    return fh.read(length), records
            if len(self._segments) == 1 and seg.path.parent == self.dir:
                return None  # the active segment: keep appending to it
            self._segments.pop(0)
            self._read = 0
            self._retire(seg)
        return None

    def _commit(self) -> None:
        if not self._segments:
            return
        self._read += 1
        seg = self._segments[0]
        if self._read >= len(seg.frames or []):
            self._segments.pop(0)
            self._read = 0
            self._retire(seg)

    def _retire(self, seg: Segment) -> None:
        """Delete a replayed segment; an adopted directory goes when its last one does."""
        _unlink(seg.path)
        parent = seg.path.parent
        if parent in self._adopted and not any(s.path.parent == parent for s in self._segments):
            _unlink(parent / "lock")
            with contextlib.suppress(OSError):
                os.rmdir(parent)
            os.close(self._adopted.pop(parent))

    # --- adoption -------------------------------------------------------------------------

    def _adopt_orphans(self) -> int:
        """Take over the segments of dead processes' spools under ``root``; returns frames."""
        if not self.root.is_dir():
            return 0
        adopted = 0
        for other in sorted(self.root.iterdir()):
            if other.name.startswith(".") or other == self.dir or not other.is_dir():
                continue
            try:
                fd = os.open(other / "lock", os.O_CREAT | os.O_RDWR, 0o600)
            except OSError:
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(fd)  # alive: its owner holds the lock
                continue
            keep = False
            try:
                for path in sorted(other.glob(f"*{SUFFIX}")):
                    seg = scan_segment(path)
                    if seg.frames:
                        # Adopted segments are read in place, before our own (they are
                        # older) and after those adopted earlier, keeping their order.
                        at = 1 if self._read and self._segments else 0
                        while at < len(self._segments) and self._segments[at].path.parent != (
                            self.dir
                        ):
                            at += 1
                        self._segments.insert(at, seg)
                        adopted += len(seg.frames)
                        keep = True
                    else:
                        _unlink(path)
                if not keep:
                    _unlink(other / "lock")
                    os.rmdir(other)
            except OSError as exc:
                log.warning("could not adopt spool %s: %s", other, exc)
            if keep:
                self._adopted[other] = fd  # held: no other process adopts it meanwhile
            else:
                os.close(fd)
        return adopted

    def _close(self) -> None:
        """Release the directory (removed when empty); after a fork the child calls forget()."""
        if self.dir is not None and not self._segments:
            _unlink(self.dir / "lock")
            with contextlib.suppress(OSError):
                os.rmdir(self.dir)
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None
        for fd in self._adopted.values():  # leftovers become adoptable by the next process
            os.close(fd)
        self._adopted = {}

    def forget(self) -> None:
        """In a forked child: drop the parent's spool state without touching its files or lock."""
        self.dir = None
        self._lock_fd = None  # the fd is inherited; closing it would not release the parent's lock
        self._adopted = {}
        self._segments = []
        self._read = 0


def scan_segment(path: Path) -> Segment:
    """Index a segment's valid frames and truncate a torn or corrupt tail."""
    seg = Segment(path, frames=[])
    assert seg.frames is not None
    with open(path, "r+b") as fh:
        data = fh.read()
        offset = 0
        while offset + HEADER.size <= len(data):
            magic, length, crc, records, created = HEADER.unpack_from(data, offset)
            end = offset + HEADER.size + length
            if magic != MAGIC or end > len(data):
                break
            if zlib.crc32(data[offset + HEADER.size : end]) != crc:
                break
            seg.frames.append((offset, length, records, created))
            seg.records += records
            offset = end
        if offset < len(data):
            log.warning("spool %s: truncating %d torn bytes", path, len(data) - offset)
            fh.truncate(offset)
            fh.flush()
            os.fsync(fh.fileno())
    seg.size = offset
    return seg


def _unlink(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()

