"""The disk spool on a real filesystem: framing, order, torn tails, eviction, adoption, 0700."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

from monitor.sdk.records import ActualRecord
from monitor.sdk.spool import HEADER, Spool
from monitor.sdk.wire import decode_batch, encode_batch


def _drain(spool: Spool) -> list[bytes]:
    out = []
    while (frame := spool.peek()) is not None:
        out.append(frame[0])
        spool.commit()
    return out


def test_frames_replay_in_order_and_segments_are_deleted(tmp_path: Path) -> None:
    spool = Spool(tmp_path, segment_bytes=1024)
    for i in range(20):
        spool.append(f"batch-{i}".encode() * 10, records=3)
    assert spool.pending_records == 60
    assert spool.dir is not None and stat.S_IMODE(os.stat(spool.dir).st_mode) == 0o700
    assert len(list(spool.dir.glob("*.seg"))) > 1  # rotated
    frames = _drain(spool)
    assert [f[: len(f) // 10] for f in frames] == [f"batch-{i}".encode() for i in range(20)]
    assert spool.pending_records == 0 and not list(spool.dir.glob("*.seg"))
    spool.close()
    assert not spool.dir.exists()


def test_eviction_drops_oldest_segment_and_counts(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=4096, segment_bytes=1024)
    evicted = sum(spool.append(b"x" * 300, records=1) for _ in range(40))
    assert evicted > 0 and evicted == spool.evicted_records
    assert spool.pending_bytes <= 4096
    assert spool.pending_records == 40 - evicted


def test_batch_encoding_round_trips(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    ts = datetime(2026, 11, 20, tzinfo=UTC)
    preds = [("a", ts, {"x": 1.5, "c": "DE", "n": float("nan")}, 1, {"0": 0.2}, 3.0, {"r": "eu"})]
    payload, skipped = encode_batch(
        "m", "v", preds, [ActualRecord("a", 1_800_000_000_000_000_000, 1)]
    )
    assert skipped == 0
    model, version, p, a = decode_batch(payload)
    assert (model, version) == ("m", "v")
    assert p[0][0] == "a" and p[0][2]["c"] == "DE" and p[0][6] == {"r": "eu"}
    assert a[0][0] == "a" and a[0][1].isoformat().startswith("2027-01-15")


def test_orphan_with_torn_tail_is_adopted_and_truncated(tmp_path: Path) -> None:
    # A real process spools three frames, tears the last one, and dies without cleaning up.
    code = (
        "import os, sys; from pathlib import Path; from monitor.sdk.spool import Spool\n"
        "s = Spool(Path(sys.argv[1]))\n"
        "for i in range(3): s.append(b'frame%d' % i, records=1)\n"
        "seg = sorted(s.dir.glob('*.seg'))[-1]\n"
        "size = seg.stat().st_size\n"
        "os.truncate(seg, size - 3)\n"
        "os._exit(0)\n"
    )
    root = Path(__file__).resolve().parents[2]
    subprocess.run(
        [sys.executable, "-c", code, str(tmp_path)],
        check=True,
        env={**os.environ, "PYTHONPATH": str(root)},
    )
    heir = Spool(tmp_path)
    assert heir.adopt_orphans() == 2
    seg = next(tmp_path.rglob("*.seg"))
    assert seg.stat().st_size == 2 * HEADER.size + len(b"frame0") + len(b"frame1")
    assert _drain(heir) == [b"frame0", b"frame1"]
    assert not list(tmp_path.rglob("*.seg"))
    assert not [p for p in tmp_path.iterdir() if p.is_dir()]  # the orphan dir is gone


def test_live_spools_are_not_adopted(tmp_path: Path) -> None:
    alive = Spool(tmp_path)
    alive.append(b"mine", records=1)
    other = Spool(tmp_path)
    assert other.adopt_orphans() == 0  # its owner still holds the lock
    assert alive.pending_records == 1


def test_corrupt_frame_stops_the_scan(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    spool.append(b"good", records=1)
    spool.append(b"evil", records=1)
    assert spool.dir is not None
    seg = next(spool.dir.glob("*.seg"))
    data = bytearray(seg.read_bytes())
    data[-1] ^= 0xFF  # flip a payload bit of the second frame: its CRC no longer matches
    seg.write_bytes(bytes(data))
    from monitor.sdk.spool import scan_segment

    scanned = scan_segment(seg)
    assert scanned.records == 1 and seg.stat().st_size == HEADER.size + 4
