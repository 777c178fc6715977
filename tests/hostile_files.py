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


def radiance_hdr_header(width: int, height: int) -> bytes:
    """A tiny Radiance HDR (a format Pillow does not read) claiming width x height pixels."""
    return (b"#?RADIANCE\nFORMAT=32-bit_rle_rgbe\n\n-Y %d +X %d\n" % (height, width)
            + b"\0" * 32)


def tiff_header_only(width: int, height: int, *, big_endian: bool = False,
                     bigtiff: bool = False, tile: int = 0) -> bytes:
    """A tiny 3-channel float32 TIFF (a layout Pillow does not open) claiming width x height,
    in one strip or in `tile` x `tile` tiles."""
    order = ">" if big_endian else "<"
    tags = [(256, 4, width), (257, 4, height), (258, 3, 32), (259, 3, 1), (262, 3, 2),
            (277, 3, 3), (284, 3, 1), (339, 3, 3)]
    if tile:
        tags += [(322, 4, tile), (323, 4, tile), (324, 4, 0), (325, 4, 64)]
    else:
        tags += [(273, 4, 0), (278, 4, height), (279, 4, 64)]
    tags.sort()
    if bigtiff:
        head = (b"MM" if big_endian else b"II") + struct.pack(order + "HHHQ", 43, 8, 0, 16)
        ifd_size, count, entry, offset = 8 + 20 * len(tags) + 8, "Q", "HHQQ", "Q"
    else:
        head = (b"MM" if big_endian else b"II") + struct.pack(order + "HI", 42, 8)
        ifd_size, count, entry, offset = 2 + 12 * len(tags) + 4, "H", "HHII", "I"
    data_at = len(head) + ifd_size
    ifd = struct.pack(order + count, len(tags))
    for tag, kind, value in tags:
        value = data_at if tag in (273, 324) else value
        if big_endian:  # a value sits left-aligned in the (4 or 8 byte) value field
            value <<= 8 * (struct.calcsize(offset) - (2 if kind == 3 else 4))
        ifd += struct.pack(order + entry, tag, kind, 1, value)
    return head + ifd + struct.pack(order + offset, 0) + b"\0" * 64
