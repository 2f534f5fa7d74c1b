"""Abdominal CT (portal venous phase, HU, int16) with organ labels and liver tumours over time.

Organs that lie wholly inside the scan (liver, spleen, kidneys, tumours) are star-shaped
solids (`Blob`) with exact volumes. Structures that run through the scan along its axis
(body, aorta, inferior vena cava, spine) are defined slice by slice: an ellipse per slice,
so their exact volume is the sum of the slice areas times the slice spacing. Labels are
volume-preserving (see `medsight.data.synthetic._shapes`): label volumes equal
``truth["volumes_ml"]`` to within one voxel.

Not labelled (part of ``body``): fat, muscle, ribs and vertebral arches, bowel with gas
and fluid, the lung bases around the liver dome, vessels inside the liver.

Over time the patient's anatomy stays; its position on the table changes by a few mm, and
each tumour's volume follows ``V(t) = V(0) * 2 ** (days / doubling_time_days)``
(a negative doubling time is a halving time: the tumour responds).
"""

from __future__ import annotations

import numpy as np

from medsight.data.synthetic._fields import blur, smooth_noise
from medsight.data.synthetic._shapes import Blob, BlobField, Grid, rotation, select_top
from medsight.data.synthetic.case import Case
from medsight.data.synthetic.patients import Patient, appearance, make_patient, visit_days
from medsight.image import Image

__all__ = ["HU", "LABEL_NAMES", "MAX_DAYS", "body_ct"]

LABEL_NAMES = {
    1: "body",
    2: "liver",
    3: "spleen",
    4: "kidney_right",
    5: "kidney_left",
    6: "aorta",
    7: "inferior_vena_cava",
    8: "spine",
    9: "tumour",
}
# Mean HU in the portal venous phase.
HU = {
    "air": -1000, "lung": -860, "fat": -100, "muscle": 50, "bone": 650, "marrow": 220,
    "liver": 105, "spleen": 115, "kidney_cortex": 170, "kidney_medulla": 110, "aorta": 165,
    "inferior_vena_cava": 125, "tumour": 35, "tumour_rim": 80, "necrosis": 20, "gas": -900, "bowel": 35,
}  # fmt: skip
MAX_DAYS = 400  # tumours are placed with room to grow this long


def body_ct(
    *,
    seed: int = 0,
    timepoint: int = 0,
    patient: Patient | None = None,
    site_effect: float = 1.0,
    interval_days: float = 90.0,
    shape: tuple[int, int, int] = (128, 104, 72),
    spacing: tuple[float, float, float] = (3.0, 3.0, 3.0),
    tumours: bool = True,
) -> Case:
    """An abdominal CT of one patient at one visit, with its organ label map.

    Parameters
    ----------
    seed : int
        Fixes the patient: anatomy, tumours and their growth. Same seed, other
        `timepoint`: the same patient later (tumours changed, new table position, noise).
    timepoint : int
        Visit number; visits are `interval_days` apart (+-10 %), within 400 days in all.
    patient : Patient, optional
        Made from `seed` when omitted (ages 30-85).
    site_effect : float
        Strength of the site's appearance (HU offset, noise, reconstruction blur).
    shape, spacing
        Axial grid in LPS order (``i`` to the left, ``j`` posterior, ``k`` up) and voxel
        size in mm.
    tumours : bool
        Whether the liver holds 1-3 tumours.

    Returns
    -------
    Case
        ``image``: int16 HU. ``mask``: `LABEL_NAMES`. ``boxes``: one 3D box per tumour.
        ``truth``: ``volumes_ml`` (exact, per label name), ``tumours`` (``id``,
        ``centre_mm`` in RAS, ``volume_ml``, ``baseline_volume_ml``, ``diameter_mm`` of
        the sphere of that volume), ``doubling_time_days`` (None when stable),
        ``growth_rate_per_day``, ``response`` ("progression", "stable", "response"),
        ``shift_mm`` (table position, RAS).
    """
    patient = patient or make_patient(seed, ages=(30, 85))
    anatomy = np.random.default_rng([seed, 0])
    visit = np.random.default_rng([seed, 2, timepoint])
    days = visit_days(seed, timepoint, interval_days)
    if days > MAX_DAYS:
        raise ValueError(
            f"timepoint {timepoint} is {days} days after the first visit; body_ct models at most "
            f"{MAX_DAYS} days (use fewer time points or a shorter interval)"
        )
    look = appearance(patient.site, site_effect)
    grid = Grid.centred(shape, spacing)
    body = _Abdomen(patient, anatomy, tumours)
    # The patient's position on the table (LPS mm); float32 keeps the grids float32.
    shift = visit.normal(0, [4.0, 3.0, 6.0]).astype(np.float32)
    growth = 2 ** (days / body.doubling) if body.doubling else 1.0

    labels = np.zeros(shape, np.uint8)
    hu = np.full(shape, float(HU["air"]), np.float32)
    volumes: dict[str, float] = {}

    def paint(value, mask, volume_ml, name):
        labels[mask] = value
        volumes[name] = volumes.get(name, 0.0) + volume_ml

    # Slice-wise structures, outside in; then the solid organs; then the tumours inside the liver.
    x, y = grid.axes()[:2]
    z = grid.axes()[2] - shift[2]
    outline = _Sections(grid, shift, body.outline(z))
    paint(1, outline.labels(), outline.volume_ml, "body")
    # Fat under the skin, the muscle wall, fat inside: thinner layers where the body is narrower.
    _draw(hu, outline.occupancy(), HU["fat"])
    _draw(hu, outline.occupancy(1 - body.fat / body.depth), HU["muscle"])
    _draw(hu, outline.occupancy(1 - (body.fat + body.muscle) / body.depth), HU["fat"])
    texture = smooth_noise(anatomy, shape, 1.5)
    _draw(hu, *body.bowel(grid, shift, texture))
    for side in ("right", "left"):
        _draw(hu, _Sections(grid, shift, body.lung(z, side)).occupancy(), HU["lung"])
    _draw(hu, body.arches(x[:, None, None] - shift[0], y[None, :, None] - shift[1], z), HU["bone"])
    for value, name in ((6, "aorta"), (7, "inferior_vena_cava"), (8, "spine")):
        tube = _Sections(grid, shift, body.tube(z, name))
        paint(value, tube.labels(), tube.volume_ml, name)
        occ = tube.occupancy()
        _draw(hu, occ, HU[name] if name != "spine" else HU["marrow"])
        if name == "spine":  # the cortex: a 2.5 mm shell of dense bone
            _draw(hu, occ - _Sections(grid, shift, body.tube(z, name, inset=2.5)).occupancy(), HU["bone"])
    organs = {}
    for value, name in ((2, "liver"), (3, "spleen"), (4, "kidney_right"), (5, "kidney_left")):
        field = BlobField(body.organs[name].moved(shift=shift), grid)
        organs[name] = field
        occ = field.full_occupancy()
        paint(value, field.labels(), field.blob.volume() / 1000, name)
        if name.startswith("kidney"):
            _draw(hu, occ, HU["kidney_cortex"])
            _draw(hu, field.full_occupancy(0.72), HU["kidney_medulla"])
        else:
            _draw(hu, occ, HU[name] + body.organ_hu[name] + 6 * texture)
    veins = np.abs(texture) < 0.1  # portal and hepatic branches: thin sheets where the texture is 0
    _draw(hu, organs["liver"].full_occupancy(0.92) * veins, HU["inferior_vena_cava"] + 10)

    boxes, tumour_truth = [], []
    for number, tumour in enumerate(body.tumours, start=1):
        field = BlobField(tumour.moved(shift=shift), grid, max_scale=growth ** (1 / 3))
        scale = growth ** (1 / 3)
        occ = field.full_occupancy(scale)
        mask = field.labels(scale)
        paint(9, mask, field.blob.volume() * growth / 1000, "tumour")
        _draw(hu, occ, HU["tumour_rim"])
        _draw(hu, field.full_occupancy(0.88 * scale), HU["tumour"])
        if number == 1 and body.necrotic:
            _draw(hu, field.full_occupancy(0.45 * scale), HU["necrosis"])
        where = np.argwhere(mask)
        boxes.append({"box": [float(v) for v in (*where.min(0), *(where.max(0) + 1))], "label": "tumour"})
        volume = field.blob.volume() * growth / 1000
        tumour_truth.append(
            {
                "id": number,
                "centre_mm": _ras(field.blob.centre),
                "volume_ml": round(volume, 4),
                "baseline_volume_ml": round(field.blob.volume() / 1000, 4),
                "diameter_mm": round(2 * (3 * volume * 1000 / (4 * np.pi)) ** (1 / 3), 3),
            }
        )
    volumes["liver"] -= volumes.get("tumour", 0.0)
    volumes["body"] -= sum(v for k, v in volumes.items() if k != "body")

    # Noise goes in before the reconstruction kernel, which correlates it as in real CT; the
    # factor undoes the std a Gaussian of sigma s removes from white noise, (4 pi s^2)^(-1/4) per axis.
    kernel = 0.7 + look.blur
    noise = visit.standard_normal(shape, dtype=np.float32) * (4 * np.pi * kernel**2) ** 0.75
    hu = blur(hu + 14 * look.noise * noise, kernel) + look.offset
    ct = np.clip(np.round(hu), -1024, 3071).astype(np.int16)

    affine = np.diag([-spacing[0], -spacing[1], spacing[2], 1.0])  # LPS axes as RAS+
    affine[:3, 3] = [-grid.origin[0], -grid.origin[1], grid.origin[2]]
    meta = {"modality": "CT", "body_part": "ABDOMEN", "contrast_phase": "portal venous"}
    truth = {
        "volumes_ml": {LABEL_NAMES[v]: round(volumes.get(LABEL_NAMES[v], 0.0), 4) for v in LABEL_NAMES},
        "tumours": tumour_truth,
        "doubling_time_days": None if not body.doubling else round(body.doubling, 2),
        "growth_rate_per_day": 0.0 if not body.doubling else round(float(np.log(2) / body.doubling), 6),
        "response": body.response,
        "shift_mm": _ras(shift),
    }
    image = Image(ct[None], affine, metadata=meta)
    return Case(
        image=image,
        patient=patient,
        timepoint=timepoint,
        days=days,
        mask=image.with_array(labels[None], kind="label"),
        boxes=boxes,
        label_names=dict(LABEL_NAMES),
        truth=truth,
    )


def _ras(lps) -> list[float]:
    return [round(float(v), 3) for v in (-lps[0], -lps[1], lps[2])]


def _draw(hu: np.ndarray, occupancy, value) -> None:
    """Paint `value` (a number or an array) over `hu` in proportion to each voxel's occupancy."""
    occupancy = np.clip(occupancy, 0, 1)
    hu += occupancy * (value - hu)


class _Sections:
    """One ellipse per slice, sampled on the grid: occupancy at any scale, labels, exact volume.

    `ellipses` is ``(cx, cy, ax, ay)`` in mm (patient frame), scalars or arrays over
    slices. The exact volume is the sum of the slice areas times the slice spacing.
    """

    def __init__(self, grid: Grid, shift, ellipses):
        self.grid = grid
        cx, cy, ax, ay = (np.broadcast_to(np.asarray(v, np.float32), (grid.shape[2],)) for v in ellipses)
        present = (ax > 1e-2) & (ay > 1e-2)
        self.areas = np.where(present, np.pi * ax * ay, 0.0) / (grid.spacing[0] * grid.spacing[1])
        if not present.any():  # the structure lies outside this field of view: nothing to draw
            self.crop = (slice(0, 0),) * 3
            self.rho = self.step = np.zeros((0, 0, 0), np.float32)
            return
        lo = (np.min((cx - ax)[present]) + shift[0], np.min((cy - ay)[present]) + shift[1], 0.0)
        hi = (np.max((cx + ax)[present]) + shift[0], np.max((cy + ay)[present]) + shift[1], 0.0)
        crop = grid.crop(lo, hi)
        ks = np.flatnonzero(present)
        self.crop = (*crop[:2], slice(int(ks[0]), int(ks[-1]) + 1))
        x, y, _ = grid.axes(self.crop)
        k = self.crop[2]
        a_x, a_y = np.maximum(ax[k], 1e-3), np.maximum(ay[k], 1e-3)
        dx = (x[:, None, None] - np.float32(shift[0]) - cx[k]) / a_x
        dy = (y[None, :, None] - np.float32(shift[1]) - cy[k]) / a_y
        self.rho = np.sqrt(dx * dx + dy * dy)
        gx, gy = np.gradient(self.rho, axis=(0, 1))  # in-plane only: each slice stands alone
        self.step = np.maximum(np.hypot(gx, gy), 1e-6)

    @property
    def volume_ml(self) -> float:
        return float(np.sum(self.areas) * self.grid.voxel_volume / 1000)

    def occupancy(self, scale: float = 1.0) -> np.ndarray:
        """Full-grid occupancy of the sections scaled by `scale` about their centres."""
        out = np.zeros(self.grid.shape, np.float32)
        out[self.crop] = np.clip(0.5 - (self.rho - scale) / self.step, 0, 1)
        return out

    def labels(self) -> np.ndarray:
        """Volume-preserving mask: each slice's rounding carried into the next (exact to one voxel)."""
        counts = np.diff(np.round(np.concatenate([[0.0], np.cumsum(self.areas)])).astype(int))
        occupancy = np.clip(0.5 - (self.rho - 1) / self.step, 0, 1)
        mask = np.zeros(self.grid.shape, bool)
        for index, k in enumerate(range(self.crop[2].start, self.crop[2].stop)):
            mask[self.crop[0], self.crop[1], k] = select_top(occupancy[:, :, index], counts[k])
        return mask


class _Abdomen:
    """One patient's anatomy in the patient frame (LPS mm, origin at the scan's centre)."""

    def __init__(self, patient: Patient, rng: np.random.Generator, with_tumours: bool):
        male = patient.sex == "M"
        self.width = (165.0 if male else 150.0) * rng.uniform(0.93, 1.07)
        self.depth = (112.0 if male else 102.0) * rng.uniform(0.93, 1.07)
        self.fat = (12.0 if male else 20.0) * rng.uniform(0.6, 1.6)  # subcutaneous fat, mm
        self.muscle = 9.0
        self.organ_hu = {"liver": float(rng.normal(0, 8)), "spleen": float(rng.normal(0, 8))}
        size, w, d = rng.uniform(0.92, 1.08), self.width, self.depth
        waves = lambda n, a: [[a, rng.uniform(2, 4), rng.uniform(0, 6.3), *_unit(rng)] for _ in range(n)]  # noqa: E731
        self.organs = {
            "liver": Blob(
                [-0.4 * w, -0.2 * d, 28],
                [0.45 * w * size, 0.5 * d * size, 64 * size],
                rotation(0, 0, -12),
                waves(4, 0.025),
            ),
            "spleen": Blob(
                [0.55 * w, 0.42 * d, 48], np.array([24, 44, 42]) * size, rotation(0, 0, 35), waves(3, 0.04)
            ),
        }
        for side, sign in (("right", -1), ("left", 1)):
            hilum = [[0.25, 6.0, -sign * 0.9, -0.43, 0.0]]  # a notch on the medial side
            self.organs[f"kidney_{side}"] = Blob(
                [sign * 0.45 * w, 62, -50 + (0 if side == "left" else -6)],
                np.array([26, 22, 48]) * rng.uniform(0.92, 1.08),
                rotation(0, sign * 12, sign * 25),
                spikes=[[-h, p, *d] for h, p, *d in hilum],
            )
        self.necrotic = bool(rng.random() < 0.4)
        kind = rng.choice(["progression", "stable", "response"], p=[0.45, 0.2, 0.35])
        self.response = str(kind)
        self.doubling = {
            "progression": rng.uniform(120, 400),
            "stable": None,
            "response": -rng.uniform(60, 200),
        }[self.response]
        self.tumours = self._place_tumours(rng) if with_tumours else []
        if not self.tumours:
            self.response, self.doubling = "stable", None
        self.bowel_seed = int(rng.integers(2**31))

    def _place_tumours(self, rng) -> list[Blob]:
        """1-3 lobulated tumours inside the liver, with room to grow and apart from each other."""
        liver = self.organs["liver"]
        most = 2 ** (MAX_DAYS / self.doubling) if self.doubling and self.doubling > 0 else 1.0
        placed: list[Blob] = []
        for _ in range(int(rng.choice([1, 2, 3], p=[0.5, 0.3, 0.2]))):
            radius = rng.uniform(7, 15) / (most ** (1 / 3)) ** 0.5
            lumps = [[0.06, rng.uniform(3, 5), rng.uniform(0, 6.3), *_unit(rng)] for _ in range(3)]
            for _attempt in range(60):
                centre = liver.centre + rng.uniform(-0.6, 0.6, 3) * liver.axes
                tumour = Blob(centre, [radius] * 3, rotation(*rng.uniform(0, 90, 3)), lumps)
                reach = tumour.surface_points(most ** (1 / 3) * 1.15)
                apart = [
                    np.linalg.norm(o.centre - centre) > 1.3 * (radius + o.axes[0]) * most ** (1 / 3) + 3
                    for o in placed
                ]
                if liver.contains(reach, margin=0.06).all() and all(apart):
                    placed.append(tumour)
                    break
        return placed

    def outline(self, z, inset: float = 0.0):
        """Body cross-section per slice, shrunk by `inset` mm (fat and muscle layers)."""
        swell = 1 + 0.04 * np.cos(z / 120)
        return 0.0, 5.0, self.width * swell - inset, self.depth * swell - inset

    def lung(self, z, side: str):
        """Lung base sections: an ellipsoid whose lower part reaches into the upper slices."""
        sign = -1 if side == "right" else 1
        top, height = (200.0, 115.0) if side == "right" else (195.0, 110.0)
        cut = np.sqrt(np.clip(1 - ((z - top) / height) ** 2, 0, None))
        return sign * 0.5 * self.width, 40.0, 0.42 * self.width * cut, 0.55 * self.depth * cut

    def tube(self, z, name: str, inset: float = 0.0):
        """Vessels and vertebral bodies: centre and radius per slice (they taper and drift)."""
        if name == "aorta":
            radius = 11.5 + 0.01 * z - inset
            return 18 + 0.03 * z, 38 - 0.02 * z, radius, radius
        if name == "inferior_vena_cava":
            return -24 - 0.04 * z, 46.0, 11.0 - inset, 8.5 - inset
        return 0.0, 78 + 0.04 * z, 19.0 - inset, 16.0 - inset  # vertebral bodies

    def arches(self, x, y, z) -> np.ndarray:
        """Occupancy of the vertebral arches and ribs (bone outside the labelled spine)."""
        arch = np.exp(-(((np.abs(x) - 14) / 5) ** 2) - ((y - 100) / 8) ** 2) * 0.9
        spinous = np.exp(-((x / 4) ** 2) - ((y - 118) / 10) ** 2)
        level = np.cos(2 * np.pi * z / 30) > -0.2
        # Ribs: short arcs just inside the muscle wall, in the upper slices, apart from the front.
        section = np.sqrt((x / (self.width - 14)) ** 2 + ((y - 5) / (self.depth - 14)) ** 2)
        angle = np.arctan2(y - 5, x)
        ribs = np.exp(-(((section - 0.9) / 0.03) ** 2)) * (np.cos(7 * angle) > 0.2) * (y > -30)
        ribs = ribs * (np.cos(2 * np.pi * z / 36) > 0.5) * (z > -30)
        return np.clip((arch + spinous) * level + ribs, 0, 1)

    def bowel(self, grid: Grid, shift, texture) -> tuple[np.ndarray, np.ndarray]:
        """Loops of bowel in front of the spine: walls, fluid and pockets of gas."""
        x, y, z = grid.axes()
        x, y = x[:, None, None] - shift[0], y[None, :, None] - shift[1]
        region = ((x / (0.75 * self.width)) ** 2 + ((y + 10) / (0.7 * self.depth)) ** 2 < 1) & (
            z - shift[2] < 10
        )
        occupancy, values = np.zeros(grid.shape, np.float32), np.zeros(grid.shape, np.float32)
        box = tuple(slice(w.min(), w.max() + 1) for w in np.nonzero(region))  # loops only where they lie
        loops = smooth_noise(np.random.default_rng(self.bowel_seed), region[box].shape, 3.0)
        values[box] = np.where(texture[box] > 1.6, HU["gas"], HU["bowel"] + 10 * loops)
        occupancy[box] = region[box] & (np.abs(loops) < 0.9)
        return occupancy, values


def _unit(rng) -> np.ndarray:
    v = rng.normal(size=3)
    return v / np.linalg.norm(v)
