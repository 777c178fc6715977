"""Files a careless or hostile user may hand to the command-line programs."""

import struct
import zlib
from pathlib import Path


def png_header_only(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims width x height pixels (a decompression bomb's shape)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data)))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr)
            + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b""))


def leftovers(folder: Path) -> list[str]:
    """Temporary files an interrupted atomic write would leave behind."""
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))
