"""Independent evidence for the Kiro event-stream fixture: botocore's own decoder
(`botocore.eventstream.EventStreamBuffer`, which checks both CRCs) reads the frames the Kiro
mock wrote (`crates/switchyard-testkit/fixtures/kiro/text.eventstream`, written with
aws_smithy_eventstream) and finds exactly the events of the sidecar `text.events.json`.
No gateway or mock process is involved."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from botocore.eventstream import ChecksumMismatch, EventStreamBuffer

FIXTURES = Path(__file__).resolve().parents[2] / "crates" / "switchyard-testkit" / "fixtures" / "kiro"


def _recorded() -> bytes:
    return (FIXTURES / "text.eventstream").read_bytes()


def _expected() -> list[dict]:
    return json.loads((FIXTURES / "text.events.json").read_text(encoding="utf-8"))["frames"]


def _decode(chunks) -> list[dict]:
    buffer = EventStreamBuffer()
    frames = []
    for chunk in chunks:
        buffer.add_data(chunk)
        for message in buffer:
            frames.append({"headers": dict(message.headers), "payload": json.loads(message.payload)})
    return frames


def test_botocore_reads_the_sidecar_events_from_the_recorded_stream():
    expected = _expected()
    assert len(expected) == 9
    assert _decode([_recorded()]) == expected


@pytest.mark.parametrize("size", [1, 5, 13, 64])
def test_botocore_reads_the_same_events_in_small_chunks(size):
    data = _recorded()
    assert _decode(data[i : i + size] for i in range(0, len(data), size)) == _expected()


def test_botocore_rejects_a_flipped_payload_byte():
    data = bytearray(_recorded())
    first_length = int.from_bytes(data[0:4], "big")
    data[first_length - 5] ^= 0x20  # the first frame's last payload byte
    with pytest.raises(ChecksumMismatch):
        _decode([bytes(data)])
