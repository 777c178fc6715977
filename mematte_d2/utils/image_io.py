"""Reading images and trimaps of any common layout (8/16-bit, grayscale, RGBA) and writing PNGs.

OpenCV reads every format it supports unchanged; these helpers turn the result into the two
layouts the predictor takes (HxWx3 RGB, HxW trimap on the 0-255 scale) so callers never see
BGR order, alpha channels or 16-bit values. Before any pixel is decoded the file's header is
read (TIFF and PNG chunks here, JPEG, BMP and WebP with Pillow): an image claiming more than
`max_pixels` pixels is refused, and so is any file whose content is not one of these five
formats, since OpenCV would decode it unmeasured. The EXIF orientation is applied so arrays
come out as image viewers display the picture (OpenCV already does so for TIFF).
"""

import struct
import threading
from pathlib import Path

import cv2
import numpy as np
from PIL import ExifTags, Image

from mematte_d2.utils.atomic import atomic_write

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")

# Largest image read by default: 16384 x 16384 pixels (about 0.8 GB as 8-bit RGB).
MAX_PIXELS = 16384 * 16384

# Signatures of the formats decoded (WebP, "RIFF....WEBP", is tested apart).
_SIGNATURES = {
    "PNG": (b"\x89PNG\r\n\x1a\n",),
    "JPEG": (b"\xff\xd8\xff",),
    "BMP": (b"BM",),
    "TIFF": (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"),
}
_TIFF_WIDTH, _TIFF_HEIGHT, _TIFF_TILE_WIDTH, _TIFF_TILE_LENGTH = 256, 257, 322, 323
_TIFF_INTEGER_TYPES = {3: "H", 4: "I", 16: "Q"}  # SHORT, LONG, LONG8 (BigTIFF)

# Pillow's own decompression-bomb limit would refuse (or warn) before ours is applied; it is
# lifted for the header read only, under a lock, and `max_pixels` checked instead.
_PILLOW_LIMIT_LOCK = threading.Lock()


class ImageReadError(ValueError):
    """A file could not be read as an image (missing, corrupt or of an unsupported layout)."""


def _sniff_format(head: bytes) -> str | None:
    """The format whose signature starts `head`, among those read here (None for others).

    OpenCV chooses its decoder by these bytes, never by the file's name, and none of the
    signatures below begins another format OpenCV decodes, so the decoder that runs is the
    one for the format whose header was read.
    """
    for fmt, signatures in _SIGNATURES.items():
        if head.startswith(signatures):
            return fmt
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WEBP"
    return None


def _tiff_size(path: Path, head: bytes, max_pixels: int) -> tuple[int, int]:
    """(width, height) of a TIFF's first directory, the page OpenCV decodes.

    Read here rather than with Pillow, which cannot open some layouts OpenCV decodes (such as
    3-channel float), so that every TIFF is measured before decoding. OpenCV allocates a
    buffer per tile, so tiles of more than `max_pixels` are refused as well.
    """
    order = "<" if head[:2] == b"II" else ">"
    big = head[2:4] in (b"+\x00", b"\x00+")
    first_ifd, count_format, entry_size = (
        (head[8:16], order + "Q", 20) if big else (head[4:8], order + "H", 12)
    )
    try:
        with open(path, "rb") as f:
            f.seek(struct.unpack(order + ("Q" if big else "I"), first_ifd)[0])
            count = struct.unpack(count_format, f.read(struct.calcsize(count_format)))[0]
            entries = f.read(min(count, 65535) * entry_size)
    except (OSError, struct.error, OverflowError, ValueError) as e:
        raise ImageReadError(f"{path}: not a readable image (TIFF header: {e})") from e
    size = {}
    for start in range(0, len(entries) - entry_size + 1, entry_size):
        tag, kind = struct.unpack(order + "HH", entries[start:start + 4])
        value = entries[start + (12 if big else 8):start + entry_size]
        if tag in (_TIFF_WIDTH, _TIFF_HEIGHT, _TIFF_TILE_WIDTH, _TIFF_TILE_LENGTH) and (
            kind in _TIFF_INTEGER_TYPES
        ):
            code = order + _TIFF_INTEGER_TYPES[kind]
            size[tag] = struct.unpack(code, value[:struct.calcsize(code)])[0]
    if _TIFF_WIDTH not in size or _TIFF_HEIGHT not in size:
        raise ImageReadError(f"{path}: not a readable image (TIFF without image width and length)")
    tile = size.get(_TIFF_TILE_WIDTH, 0), size.get(_TIFF_TILE_LENGTH, 0)
    if tile[0] * tile[1] > max_pixels:
        raise ImageReadError(
            f"{path}: TIFF tiles of {tile[0]}x{tile[1]} = {tile[0] * tile[1]:,} pixels, more "
            f"than the limit of max_pixels={max_pixels:,}"
        )
    return size[_TIFF_WIDTH], size[_TIFF_HEIGHT]


def _png_orientation(path: Path) -> int:
    """The EXIF orientation of a PNG's eXIf chunk, before or after the pixel data (1 if none).

    Only the chunk headers are read, skipping over the pixel data.
    """
    with open(path, "rb") as f:
        f.seek(8)
        while len(chunk := f.read(8)) == 8:
            length, kind = struct.unpack(">I4s", chunk)
            if kind == b"eXIf":
                exif = Image.Exif()
                try:
                    exif.load(f.read(length))
                except (SyntaxError, ValueError, struct.error):
                    return 1  # unreadable EXIF, as Pillow's exif_transpose reads it
                return exif.get(ExifTags.Base.Orientation, 1)
            if kind == b"IEND":
                break
            f.seek(length + 4, 1)  # data and CRC
    return 1


def _read_header(path: Path, max_pixels: int) -> tuple[int, int, int]:
    """(width, height, EXIF orientation 1-8 still to apply) from the file's header.

    No pixel is decoded. Files in a format whose header is not read here are refused: OpenCV
    would decode them (Radiance HDR, PNM, Sun raster, JPEG 2000...) without any size check.
    """
    with open(path, "rb") as f:
        head = f.read(16)
    fmt = _sniff_format(head)
    if fmt is None:
        raise ImageReadError(
            f"{path}: not a readable image (its content is not PNG, JPEG, BMP, TIFF or WebP, "
            "whatever its name; other formats are refused as their size is not checked)"
        )
    if fmt == "TIFF":  # OpenCV's TIFF decoder applies the Orientation tag itself
        return (*_tiff_size(path, head, max_pixels), 1)
    with _PILLOW_LIMIT_LOCK:
        saved, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
        try:
            with Image.open(path, formats=[fmt]) as im:
                width, height = im.size
                orientation = 1 if fmt == "PNG" else im.getexif().get(ExifTags.Base.Orientation, 1)
        except (OSError, SyntaxError, ValueError) as e:
            raise ImageReadError(f"{path}: not a readable image ({fmt} header: {e})") from e
        finally:
            Image.MAX_IMAGE_PIXELS = saved
    if fmt == "PNG":
        orientation = _png_orientation(path)
    return width, height, orientation if orientation in range(1, 9) else 1


def _check_pixels(path: Path, width: int, height: int, max_pixels: int) -> None:
    if width * height > max_pixels:
        raise ImageReadError(
            f"{path}: {width}x{height} = {width * height:,} pixels, more than the limit of "
            f"max_pixels={max_pixels:,}"
        )


def _check_value_range(path: Path, img: np.ndarray) -> None:
    """Refuse values the dtype's scale cannot mean: float outside [0, 1] (0-255 data saved as
    float would be clipped to white) and 16-bit files holding only 0-255 (8-bit data saved as
    16 bits would be read as nearly black)."""
    if np.issubdtype(img.dtype, np.floating):
        finite = np.isfinite(img)
        if not finite.all():
            raise ImageReadError(
                f"{path}: {int(img.size - finite.sum())} non-finite (NaN or infinite) values"
            )
        low, high = float(img.min()), float(img.max())
        if low < 0.0 or high > 1.0:
            raise ImageReadError(
                f"{path}: float values in [{low:g}, {high:g}]; float images are read on the "
                "0-1 scale (0-255 data must be saved as 8-bit or divided by 255)"
            )
    elif img.dtype == np.uint16 and 0 < int(img.max()) <= 255:
        raise ImageReadError(
            f"{path}: 16-bit file whose values are all <= 255 (max {int(img.max())}); 16-bit "
            "files are read on the 0-65535 scale (8-bit data must be saved as 8-bit or "
            "multiplied by 257)"
        )


def apply_orientation(img: np.ndarray, orientation: int) -> np.ndarray:
    """An array in stored order turned as EXIF orientation 1-8 says it is displayed."""
    flips = {
        1: lambda a: a,
        2: lambda a: a[:, ::-1],
        3: lambda a: a[::-1, ::-1],
        4: lambda a: a[::-1],
        5: lambda a: a.swapaxes(0, 1),
        6: lambda a: np.rot90(a, -1),
        7: lambda a: a[::-1, ::-1].swapaxes(0, 1),
        8: lambda a: np.rot90(a, 1),
    }
    return np.ascontiguousarray(flips[orientation](img))


def _read_unchanged(path: str | Path, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    path = Path(path)
    if not path.is_file():
        raise ImageReadError(f"{path}: no such file")
    width, height, orientation = _read_header(path, max_pixels)
    _check_pixels(path, width, height, max_pixels)
    data = np.fromfile(str(path), dtype=np.uint8)
    try:
        img = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    except cv2.error as e:
        reason = str(e).strip().splitlines()[-1]
        raise ImageReadError(f"{path}: OpenCV could not decode it ({reason})") from e
    if img is None:
        raise ImageReadError(f"{path}: not a readable image (corrupt or unsupported format)")
    if img.ndim not in (2, 3) or (img.ndim == 3 and img.shape[2] not in (1, 2, 3, 4)):
        raise ImageReadError(f"{path}: unsupported image layout of shape {img.shape}")
    if img.dtype not in (np.uint8, np.uint16) and not np.issubdtype(img.dtype, np.floating):
        raise ImageReadError(f"{path}: {img.dtype} samples, whose scale is unknown; images are "
                             "read as 8 or 16-bit unsigned (0-255 / 0-65535) or float (0-1)")
    _check_pixels(path, img.shape[1], img.shape[0], max_pixels)
    _check_value_range(path, img)
    return apply_orientation(img, orientation)


def to_float01(img: np.ndarray) -> np.ndarray:
    """Scale a uint8 / uint16 / float image to float32 in [0, 1]."""
    if img.dtype == np.uint8:
        return img.astype(np.float32) / 255.0
    if img.dtype == np.uint16:
        return img.astype(np.float32) / 65535.0
    if np.issubdtype(img.dtype, np.floating):
        return np.clip(img, 0.0, 1.0).astype(np.float32)
    raise TypeError(f"unsupported image dtype {img.dtype}; expected uint8, uint16 or float")


def to_uint8(img: np.ndarray) -> np.ndarray:
    """Convert a uint8 / uint16 / float-in-[0,1] image to uint8 with rounding."""
    if img.dtype == np.uint8:
        return img
    return np.round(to_float01(img) * 255.0).astype(np.uint8)


def read_image(path: str | Path, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Read an image as HxWx3 RGB keeping its bit depth (uint8 or uint16; float for float TIFFs).

    Grayscale is replicated to three channels; an alpha channel (RGBA, gray+alpha) is dropped,
    the colour values are used as stored. The EXIF orientation is applied; files whose header
    claims more than `max_pixels` pixels are refused before decoding.
    """
    img = _read_unchanged(path, max_pixels)
    if img.ndim == 2 or img.shape[2] == 1:
        return np.repeat(img.reshape(img.shape[0], img.shape[1], 1), 3, axis=2)
    if img.shape[2] == 2:  # gray + alpha
        return np.repeat(img[:, :, :1], 3, axis=2)
    return np.ascontiguousarray(img[:, :, 2::-1])  # BGR(A) -> RGB


def read_plane(path: str | Path, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """An image file's first channel (R of colour, as MATLAB's imread(:,:,1)) at its bit depth."""
    img = _read_unchanged(path, max_pixels)
    if img.ndim == 3:
        img = img[:, :, 2] if img.shape[2] >= 3 else img[:, :, 0]  # OpenCV stores BGR(A)
    return np.ascontiguousarray(img)


def read_mask(path: str | Path, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Read a mask as an HxW array at its bit depth (uint8, uint16 or float); colour is
    converted to gray."""
    img = _read_unchanged(path, max_pixels)
    if img.ndim == 3:
        if img.shape[2] >= 3:
            return cv2.cvtColor(np.ascontiguousarray(img[:, :, :3]), cv2.COLOR_BGR2GRAY)
        return np.ascontiguousarray(img[:, :, 0])
    return img


def read_alpha_channel(path: str | Path, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """The alpha channel (HxW, at its bit depth) of an RGBA or gray+alpha image."""
    img = _read_unchanged(path, max_pixels)
    if img.ndim != 3 or img.shape[2] not in (2, 4):
        channels = 1 if img.ndim == 2 else img.shape[2]
        raise ImageReadError(f"{path}: has no alpha channel ({channels} channel(s)) to use as "
                             "the mask")
    return np.ascontiguousarray(img[:, :, -1])


def read_trimap(path: str | Path, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Read a trimap as an HxW uint8 array on the 0-255 scale (16-bit and colour files accepted)."""
    img = _read_unchanged(path, max_pixels)
    if img.ndim == 3:
        if img.shape[2] >= 3:
            img = cv2.cvtColor(np.ascontiguousarray(img[:, :, :3]), cv2.COLOR_BGR2GRAY)
        else:
            img = img[:, :, 0]
    return to_uint8(img)


def write_png(path: str | Path, img: np.ndarray) -> None:
    """Write an HxW, HxWx3 (RGB) or HxWx4 (RGBA) uint8/uint16 array as PNG.

    The file appears complete or not at all (an earlier file of that name is kept on failure)
    and a symbolic link at `path` is replaced, never followed. OSErrors name `path`.
    """
    if img.dtype not in (np.uint8, np.uint16):
        raise TypeError(f"{path}: PNG data must be uint8 or uint16, got {img.dtype}")
    if img.ndim == 3 and img.shape[2] == 3:
        img = cv2.cvtColor(img, cv2.COLOR_RGB2BGR)
    elif img.ndim == 3 and img.shape[2] == 4:
        img = cv2.cvtColor(img, cv2.COLOR_RGBA2BGRA)
    ok, buf = cv2.imencode(".png", img)
    if not ok:
        raise OSError(f"{path}: could not encode PNG of shape {img.shape}")
    atomic_write(path, lambda f: f.write(buf.tobytes()))


def alpha_to_png_array(alpha: np.ndarray, bits: int = 8) -> np.ndarray:
    """Quantise an HxW float alpha in [0, 1] to uint8 (bits=8) or uint16 (bits=16)."""
    if bits not in (8, 16):
        raise ValueError(f"bits must be 8 or 16, got {bits}")
    scale, dtype = (255.0, np.uint8) if bits == 8 else (65535.0, np.uint16)
    # one float buffer worked in place (an 8192^2 alpha is 268 MB per copy)
    scaled = np.clip(alpha, 0.0, 1.0)
    scaled *= scale
    return np.round(scaled, out=scaled).astype(dtype)
