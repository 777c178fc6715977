"""Procedural matting material: foregrounds with realistic mattes, and backgrounds.

A matte is built from an anti-aliased blobby body with a soft or sharp edge, holes (some only
partly transparent), an optional semi-transparent veil, tufts of 1-3 px hair strands drawn
with OpenCV, and optional motion blur. Backgrounds are crops of the photographs bundled with
scikit-image (no download) or procedural textures. Everything is driven by a numpy Generator.
"""

import functools
import logging

import cv2
import numpy as np

__all__ = ["random_background", "random_foreground", "sample_photos"]

_SHIFT = 4  # fractional bits of the polygon coordinates handed to OpenCV
_ONE = 1 << _SHIFT

# scikit-image sample images shipped inside the package (loading them needs no network).
_COLOUR_PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "hubble_deep_field",
                  "immunohistochemistry", "retina", "motorcycle_left")
_GRAY_PHOTOS = ("brick", "grass", "gravel", "camera", "moon", "clock", "coins")


@functools.lru_cache(maxsize=1)
def sample_photos() -> tuple[np.ndarray, ...]:
    """The bundled scikit-image photographs as uint8 RGB arrays (gray ones replicated)."""
    import skimage.data
    from skimage import io

    photos = []
    for name in _COLOUR_PHOTOS + _GRAY_PHOTOS:
        try:
            if name == "motorcycle_left":
                img = io.imread(f"{skimage.data.data_dir}/motorcycle_left.png")
            else:
                img = getattr(skimage.data, name)()
        except Exception as e:  # noqa: BLE001 - an image missing from this version is skipped
            logging.getLogger(__name__).info("skipping scikit-image sample %s: %s", name, e)
            continue
        img = np.asarray(img)
        if img.ndim == 2:
            img = np.repeat(img[:, :, None], 3, axis=2)
        photos.append(np.ascontiguousarray(img[:, :, :3]).astype(np.uint8))
    return tuple(photos)


def _smooth_noise(rng: np.random.Generator, h: int, w: int, cells: int, channels: int = 1
                  ) -> np.ndarray:
    """Band-limited noise in [0, 1]: a coarse random grid upsampled bicubically."""
    gh, gw = max(2, round(cells * h / max(h, w))), max(2, round(cells * w / max(h, w)))
    grid = rng.random((gh, gw, channels)).astype(np.float32)
    out = cv2.resize(grid, (w, h), interpolation=cv2.INTER_CUBIC)
    return np.clip(out.reshape(h, w, channels), 0.0, 1.0)


def _fill(mask_shape: tuple[int, int], points: np.ndarray) -> np.ndarray:
    """Anti-aliased filled polygon (float points, pixel units) as float32 in [0, 1]."""
    canvas = np.zeros(mask_shape, np.uint8)
    pts = np.round(points * _ONE).astype(np.int32).reshape(-1, 1, 2)
    cv2.fillPoly(canvas, [pts], 255, lineType=cv2.LINE_AA, shift=_SHIFT)
    return canvas.astype(np.float32) / 255.0


def _blob(rng: np.random.Generator, centre: np.ndarray, radius: float, roughness: float,
          stretch: float = 1.0, n: int = 240) -> np.ndarray:
    """Outline of a random star-shaped blob: radius modulated by a few random harmonics, then
    stretched by `stretch` along a random axis."""
    theta = np.linspace(0.0, 2.0 * np.pi, n, endpoint=False)
    r = np.ones(n)
    for k in range(2, 8):
        r += roughness * rng.normal() / k * np.sin(k * theta + rng.uniform(0, 2 * np.pi))
    r = radius * np.clip(r, 0.35, None)
    xy = np.stack([r * np.cos(theta) * stretch, r * np.sin(theta) / stretch], axis=1)
    turn = rng.uniform(0, np.pi)
    rot = np.array([[np.cos(turn), -np.sin(turn)], [np.sin(turn), np.cos(turn)]])
    return centre + xy @ rot.T


def _strands(rng: np.random.Generator, shape: tuple[int, int], outline: np.ndarray,
             count: int, scale: float) -> np.ndarray:
    """Hair: curved polylines 1-3 px wide growing outwards from tufts on the body outline."""
    h, w = shape
    # Drawn at 2x and averaged down: 1 px lines at 2x become half-covered (fractional) pixels.
    canvas = np.zeros((2 * h, 2 * w), np.uint8)
    centre = outline.mean(axis=0)
    tufts = rng.integers(len(outline), size=rng.integers(1, 4))
    for i in range(count):
        base = int(tufts[i % len(tufts)] + rng.normal(0, len(outline) / 30)) % len(outline)
        start = outline[base]
        heading = np.arctan2(*(start - centre)[::-1]) + rng.normal(0, 0.35)
        steps = int(rng.integers(6, 16))
        seg = scale * rng.uniform(3.0, 7.0)
        curl = rng.normal(0, 0.12)
        pts = [start]
        for _ in range(steps):
            heading += curl + rng.normal(0, 0.08)
            pts.append(pts[-1] + seg * np.array([np.cos(heading), np.sin(heading)]))
        pts = np.round(np.array(pts) * 2 * _ONE).astype(np.int32).reshape(-1, 1, 2)
        thickness = int(rng.choice([1, 2, 3, 4, 6], p=[0.3, 0.3, 0.2, 0.1, 0.1]))  # 0.5-3 px
        value = int(rng.uniform(120, 255))
        cv2.polylines(canvas, [pts], False, value, thickness=thickness, lineType=cv2.LINE_AA,
                      shift=_SHIFT)
    return cv2.resize(canvas, (w, h), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0


def _motion_kernel(rng: np.random.Generator, length: int) -> np.ndarray:
    """A normalised anti-aliased line of `length` px at a random angle."""
    kernel = np.zeros((length, length), np.float32)
    cv2.line(kernel, (0, length // 2), (length - 1, length // 2), 1.0, 1, cv2.LINE_AA)
    rot = cv2.getRotationMatrix2D(((length - 1) / 2, (length - 1) / 2), rng.uniform(0, 180), 1.0)
    kernel = cv2.warpAffine(kernel, rot, (length, length))
    return kernel / kernel.sum()


def _union(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return 1.0 - (1.0 - a) * (1.0 - b)


def _foreground_colour(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """Foreground colours everywhere (HxWx3 float32): a photo crop or two-tone mottled noise."""
    photos = sample_photos()
    if photos and rng.random() < 0.5:
        return _photo_crop(rng, photos[rng.integers(len(photos))], height, width).astype(
            np.float32)
    colours = rng.uniform(20, 235, (2, 3)).astype(np.float32)
    field = _smooth_noise(rng, height, width, 5, 3)
    fg = colours[0] * field + colours[1] * (1 - field)
    grain = cv2.GaussianBlur(rng.random((height, width)).astype(np.float32), (0, 0), 1.5)
    grain = (grain - grain.mean()) / (grain.std() + 1e-6)
    return fg * np.clip(1.0 + 0.12 * grain, 0.5, 1.5)[:, :, None]


def random_foreground(rng: np.random.Generator, height: int, width: int
                      ) -> tuple[np.ndarray, np.ndarray]:
    """A foreground (HxWx3 uint8 RGB, defined everywhere) and its alpha (HxW float32 [0, 1])."""
    size = min(height, width)
    scale = size / 320.0
    centre = np.array([width * rng.uniform(0.35, 0.65), height * rng.uniform(0.4, 0.75)])
    outline = _blob(rng, centre, size * rng.uniform(0.2, 0.32), rng.uniform(0.2, 0.7),
                    stretch=rng.uniform(0.75, 1.35))
    body = _fill((height, width), outline)
    edge_sigma = rng.choice([0.0, 0.7, 1.5, 3.0])
    if edge_sigma:
        body = cv2.GaussianBlur(body, (0, 0), edge_sigma * scale)

    for _ in range(int(rng.integers(1, 4))):  # holes, some only partly see-through
        inside = outline[rng.integers(len(outline))] * 0.5 + centre * 0.5
        hole = _fill((height, width), _blob(rng, inside, size * rng.uniform(0.03, 0.08), 0.4))
        body *= 1.0 - hole * rng.choice([1.0, rng.uniform(0.4, 0.8)])

    alpha = body
    if rng.random() < 0.7:  # semi-transparent veil reaching past the body
        veil_centre = centre + rng.normal(0, size * 0.15, 2)
        veil = _fill((height, width), _blob(rng, veil_centre, size * rng.uniform(0.2, 0.35), 0.5))
        veil = cv2.GaussianBlur(veil, (0, 0), 2.0 * scale)
        modulation = 0.6 + 0.4 * _smooth_noise(rng, height, width, 6)[:, :, 0]
        opacity = rng.uniform(0.2, 0.7) * modulation
        alpha = _union(alpha, veil * opacity)

    hair = _strands(rng, (height, width), outline, int(rng.integers(30, 90) * scale), scale)
    alpha = _union(alpha, hair)

    fg = _foreground_colour(rng, height, width)
    hair_colour = rng.uniform(20, 235, 3).astype(np.float32)
    hair_weight = np.clip(hair - body, 0.0, 1.0)[:, :, None]
    fg = fg * (1 - hair_weight) + hair_colour * hair_weight

    if rng.random() < 0.3:  # motion-blurred object: colour and matte move together
        length = int(rng.integers(3, 13) * scale) | 1
        kernel = _motion_kernel(rng, length)
        fg = cv2.filter2D(fg, -1, kernel, borderType=cv2.BORDER_REFLECT)
        alpha = cv2.filter2D(alpha, -1, kernel, borderType=cv2.BORDER_REFLECT)
    return np.clip(fg, 0, 255).astype(np.uint8), np.clip(alpha, 0.0, 1.0).astype(np.float32)


def _photo_crop(rng: np.random.Generator, photo: np.ndarray, height: int, width: int
                ) -> np.ndarray:
    ph, pw = photo.shape[:2]
    fit = min(ph / height, pw / width) * rng.uniform(0.4, 1.0)
    ch, cw = max(1, round(height * fit)), max(1, round(width * fit))
    top, left = int(rng.integers(ph - ch + 1)), int(rng.integers(pw - cw + 1))
    crop = photo[top:top + ch, left:left + cw]
    if rng.random() < 0.5:
        crop = crop[:, ::-1]
    interp = cv2.INTER_AREA if fit > 1 else cv2.INTER_CUBIC
    out = cv2.resize(np.ascontiguousarray(crop), (width, height), interpolation=interp)
    tint = rng.uniform(0.8, 1.2, 3)
    return np.clip(out.astype(np.float32) * tint, 0, 255).astype(np.uint8)


def _texture(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A busy procedural background: multi-scale colour noise, stripes and bokeh discs."""
    img = np.zeros((height, width, 3), np.float32)
    for cells, weight in ((4, 0.5), (16, 0.3), (64, 0.2)):
        img += weight * _smooth_noise(rng, height, width, cells, 3)
    img *= 255.0
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    angle = rng.uniform(0, np.pi)
    period = rng.uniform(6, 40)
    stripes = 0.5 + 0.5 * np.sin((xx * np.cos(angle) + yy * np.sin(angle)) * 2 * np.pi / period)
    img = img * (0.7 + 0.3 * stripes[:, :, None])
    discs = np.zeros_like(img)
    for _ in range(int(rng.integers(5, 30))):
        centre = (int(rng.integers(width)), int(rng.integers(height)))
        radius = int(rng.uniform(0.02, 0.1) * max(height, width))
        cv2.circle(discs, centre, radius, rng.uniform(0, 255, 3).tolist(), -1, cv2.LINE_AA)
    discs = cv2.GaussianBlur(discs, (0, 0), 2.0)
    return np.clip(0.7 * img + 0.3 * discs, 0, 255).astype(np.uint8)


def random_background(rng: np.random.Generator, height: int, width: int,
                      photo_prob: float = 0.7) -> np.ndarray:
    """An HxWx3 uint8 RGB background: a photo crop (probability `photo_prob`) or a texture."""
    photos = sample_photos()
    if photos and rng.random() < photo_prob:
        return _photo_crop(rng, photos[rng.integers(len(photos))], height, width)
    return _texture(rng, height, width)
