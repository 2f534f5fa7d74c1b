"""Chest radiographs (PA, DX-like): an analytic thorax projected onto a detector.

Each organ is a solid whose path length along the beam (posterior to anterior) is
known in closed form: ellipsoids for the lungs, heart, hila and breasts, cylinders for
the body, spine, ribs and clavicles. The line integral of attenuation becomes a detector
signal with scatter and quantum noise, then a processed 12-bit image (log, dynamic-range
compression, edge enhancement), as a DR system stores "for presentation" images.

Classes: ``normal``; ``consolidation`` (patchy air-space opacity confined to one or both
lungs, pneumonia-like); ``nodule`` (1-3 solid spheres, 8-24 mm across, in the lung fields
wherever they stand out enough for a reader to box them, over ribs included).

Frame: ``i`` runs across the image from the patient's right to left (PA view: the
patient's right is on the viewer's left), ``j`` from head to feet; the patient's
coordinates ``x`` (to the left), ``z`` (up) are in mm from mid-thorax.
"""

from __future__ import annotations

import copy

import numpy as np

from medsight.data.synthetic._fields import blur, smooth_noise
from medsight.data.synthetic._shapes import Blob, BlobField, Grid
from medsight.data.synthetic.case import Case
from medsight.data.synthetic.patients import Patient, appearance, make_patient, visit_days
from medsight.image import Image

__all__ = ["CLASSES", "LABEL_NAMES", "chest_xray"]

CLASSES = ("normal", "consolidation", "nodule")
LABEL_NAMES = {1: "lung_right", 2: "lung_left", 3: "heart", 4: "consolidation", 5: "nodule"}
_MU_TISSUE = 0.02  # 1/mm: soft tissue at an effective ~60 keV
_MU_BONE = 0.04  # 1/mm: what bone attenuates beyond the soft tissue it replaces
_LUNG_AIR = 0.8  # fraction of aerated lung that is air
_MAX_VALUE = 4095  # 12-bit detector
# A nodule's band-passed signal over the clutter around it (`_conspicuity`): under 1 most
# nodules were invisible to the eye on crops of the films; readers would not have boxed them.
_MIN_CONSPICUITY = 1.0
_PLACEMENT_TRIES = 12


def chest_xray(
    *,
    label: str = "normal",
    seed: int = 0,
    patient: Patient | None = None,
    timepoint: int = 0,
    site_effect: float = 1.0,
    shape: tuple[int, int] = (128, 128),
    field_of_view: float = 384.0,
) -> Case:
    """A PA chest radiograph of class `label`, with lung, heart and lesion masks.

    Parameters
    ----------
    label : {"normal", "consolidation", "nodule"}
    seed : int
        Fixes the patient's anatomy and disease; the same seed with another `timepoint`
        is a follow-up film of the same patient (new pose, exposure and noise).
    patient : Patient, optional
        Made from `seed` when omitted (ages 18-90).
    timepoint : int
        Visit number; follow-ups are about 30 days apart.
    site_effect : float
        Strength of the site's appearance (gain, contrast, noise, detector blur); 0 is off.
    shape : (int, int)
        Pixels along ``i`` (across) and ``j`` (down); 128 x 128 or 256 x 256 are typical.
    field_of_view : float
        Width in mm of the detector along ``i``; pixels are square.

    Returns
    -------
    Case
        ``image``: uint16 values 0-4095 (high = attenuating, MONOCHROME2), modality DX.
        ``mask``: `LABEL_NAMES` (lungs without the heart's shadow, heart, consolidation,
        nodules). ``boxes``: one per nodule (label ``nodule``) and one per consolidated
        lung (label ``consolidation``). ``truth``: ``nodules`` (centre in mm and pixels,
        ``diameter_mm``, exact ``area_mm2`` of the mask, ``conspicuity``), ``consolidation_fraction`` (of
        the lung fields), ``cardiothoracic_ratio``, ``pose``.
    """
    if label not in CLASSES:
        raise ValueError(f"label must be one of {', '.join(CLASSES)}, not {label!r}")
    patient = patient or make_patient(seed, ages=(18, 90))
    anatomy = np.random.default_rng([seed, 0])
    disease = np.random.default_rng([seed, 1])
    visit = np.random.default_rng([seed, 2, timepoint])
    days = visit_days(seed, timepoint, 30)
    look = appearance(patient.site, site_effect)
    spacing = field_of_view / shape[0]
    grid = Grid.centred(shape, (spacing, spacing))
    across, down = np.meshgrid(*grid.axes(), indexing="ij")

    # Pose: the patient is never placed exactly the same way twice.
    tilt = np.radians(visit.normal(0, 2.0))
    shift = visit.normal(0, [8.0, 6.0])
    inspiration = visit.uniform(0.93, 1.05)
    x = np.cos(tilt) * (across - shift[0]) - np.sin(tilt) * (-down - shift[1])
    z = np.sin(tilt) * (across - shift[0]) + np.cos(tilt) * (-down - shift[1])

    parts = _thorax(x, z, patient, anatomy, inspiration, spacing)
    air = parts["air"]
    opacity = np.zeros_like(air)
    nodules: list[dict] = []
    if label == "consolidation":
        opacity = _consolidation(x, z, parts, disease, spacing)
        air = air * (1 - opacity)

    def film(air):  # the same exposure and quantum noise for every rendering of this visit
        line = _MU_TISSUE * (parts["tissue"] - _LUNG_AIR * air) + _MU_BONE * parts["bone"]
        return _detector(line, copy.deepcopy(visit), look, spacing)

    if label == "nodule":
        nodules = _place_nodules(disease, parts, grid, film)
        for nodule in nodules:
            air = _with_nodule(air, nodule, across, down)
    pixels = film(air)

    affine = np.zeros((4, 4))
    # RAS+: i to the patient's left (-x), j to the feet (-z), the normal posterior (-y).
    affine[:3, 0], affine[:3, 1], affine[:3, 2] = [-spacing, 0, 0], [0, 0, -spacing], [0, -1.0, 0]
    affine[:3, 3] = [-grid.origin[0], 0.0, -grid.origin[1]]
    affine[3, 3] = 1
    labels = np.zeros(shape, np.uint8)
    labels[parts["air_right"] > 2] = 1
    labels[parts["air_left"] > 2] = 2
    labels[parts["heart"] > 2] = 3
    lungs = (parts["air_right"] > 2) | (parts["air_left"] > 2)
    labels[(opacity > 0.2) & lungs] = 4
    boxes, truth_nodules = [], []
    for nodule in nodules:
        disk = BlobField(Blob(nodule["grid_centre"], [nodule["radius"]] * 2), grid).labels()
        labels[disk] = 5
        boxes.append({"box": _box(disk), "label": "nodule"})
        truth_nodules.append(
            {
                "centre_mm": [round(float(v), 2) for v in (affine @ [*nodule["index"], 0, 1])[:3]],
                "centre_index": [round(float(v), 2) for v in nodule["index"]],
                "diameter_mm": round(2 * nodule["radius"], 2),
                "area_mm2": round(float(disk.sum() * spacing**2), 2),
                "conspicuity": round(nodule["conspicuity"], 2),
            }
        )
    for side in ("air_right", "air_left"):  # one box per consolidated lung
        region = (labels == 4) & (parts[side] > 2)
        if region.sum() >= 4:
            boxes.append({"box": _box(region), "label": "consolidation"})

    meta = {"modality": "DX", "body_part": "CHEST", "view": "PA", "photometric": "MONOCHROME2"}
    meta.update(window_center=_MAX_VALUE / 2, window_width=_MAX_VALUE + 1)
    image = Image(pixels[None], affine, metadata=meta)
    # Cardiothoracic ratio as a reader measures it: the heart's widest extent over the chest's.
    heart_width = np.ptp(np.nonzero(labels == 3)[0]) + 1
    chest_width = np.ptp(np.nonzero(lungs | (labels == 3))[0]) + 1
    truth = {
        "nodules": truth_nodules,
        "consolidation_fraction": round(float((labels == 4).sum() / max(lungs.sum(), 1)), 4),
        "cardiothoracic_ratio": round(float(heart_width / chest_width), 4),
        "pose": {
            "tilt_deg": round(float(np.degrees(tilt)), 2),
            "shift_mm": [round(float(v), 2) for v in shift],
        },
    }
    return Case(
        image=image,
        patient=patient,
        timepoint=timepoint,
        days=days,
        mask=image.with_array(labels[None], kind="label"),
        label=label,
        boxes=boxes,
        label_names=dict(LABEL_NAMES),
        truth=truth,
    )


def _ellipsoid_chord(x, z, cx, cz, ax, az, depth, angle=0.0, power=2.0):
    """Path length (mm) along the beam through an ellipsoid (a rounder box for powers above 2)."""
    c, s = np.cos(angle), np.sin(angle)
    u, v = c * (x - cx) + s * (z - cz), -s * (x - cx) + c * (z - cz)
    return 2 * depth * np.sqrt(np.maximum(1 - np.abs(u / ax) ** power - np.abs(v / az) ** power, 0))


def _bar(distance, radius, cortex=1.5):
    """Bone path length through a tube of `radius` at `distance` from its axis: bright rim."""
    outer = np.sqrt(np.maximum(radius**2 - distance**2, 0))
    inner = np.sqrt(np.maximum((radius - cortex) ** 2 - distance**2, 0))
    return 2 * (outer - 0.55 * inner)


def _sigmoid(t):
    return 1 / (1 + np.exp(-np.clip(t, -30, 30)))


def _thorax(x, z, patient, rng, inspiration, spacing) -> dict:
    """Path lengths of soft tissue, bone and lung air, per side, with the heart's shadow."""
    width = (160.0 if patient.sex == "M" else 146.0) * rng.uniform(0.95, 1.05)
    depth = 0.68 * width
    heart_size = (1 + 0.004 * (patient.age - 50)) * rng.uniform(0.92, 1.08)
    bone_density = (1 - 0.004 * max(patient.age - 40, 0)) * rng.uniform(0.9, 1.1)

    half_width = width + 12 * np.exp(-(((z - 150) / 25) ** 2))  # shoulders
    half_width = half_width - (half_width - 55) * _sigmoid((z - 178) / 5)  # the neck
    tissue = 2 * depth * np.sqrt(np.maximum(1 - (x / half_width) ** 2, 0))

    lung_height = 128 * inspiration * rng.uniform(0.95, 1.05)
    apex = 140.0
    air = {}
    for side, sign, size, dome_drop in (("right", -1, 1.0, 0.0), ("left", 1, 0.94, 14.0)):
        cx, ax = sign * 0.46 * width, 0.37 * width * size
        cz = apex - lung_height
        chord = _ellipsoid_chord(x, z, cx, cz, ax, lung_height, 0.8 * depth, power=2.6)
        dome = cz - 0.5 * lung_height - dome_drop - 40 * ((x - cx + sign * 0.2 * ax) / ax) ** 2
        air[side] = chord * _sigmoid((z - dome) / 2.0)
    heart_cz = apex - 1.55 * lung_height
    heart = _ellipsoid_chord(
        x, z, 0.16 * width, heart_cz, 0.38 * width * heart_size, 0.29 * width * heart_size, 0.5 * depth, -0.45
    )
    top_of_heart = heart_cz + 0.30 * width * heart_size
    mediastinum = 2 * 0.45 * depth * np.sqrt(np.maximum(1 - (x / (0.16 * width)) ** 2, 0))
    mediastinum *= _sigmoid((z - top_of_heart + 10) / 8)
    knob = _ellipsoid_chord(x, z, 0.16 * width, top_of_heart + 22, 0.09 * width, 0.09 * width, 30.0)
    hila = sum(_ellipsoid_chord(x, z, s * 0.2 * width, top_of_heart - 5, 16.0, 26.0, 40.0) for s in (-1, 1))
    for side in air:
        air[side] = np.maximum(air[side] - heart - mediastinum - knob - 0.6 * hila, 0)
    # Vessels branching from the hila: a fine texture that thins out towards the periphery.
    markings = np.abs(smooth_noise(rng, x.shape, 3.0 / spacing))
    texture = 1 - 0.08 * markings * np.exp(-np.hypot(np.abs(x) - 0.2 * width, z - top_of_heart) / 120)
    air = {side: a * texture for side, a in air.items()}

    carina = top_of_heart + 45
    trachea = 2 * np.sqrt(np.maximum(64 - x**2, 0)) * _sigmoid((z - carina) / 3)
    stomach_cz = apex - 2.05 * lung_height - 14
    stomach = _ellipsoid_chord(x, z, 0.42 * width, stomach_cz, 24.0, 12.0, 12.0) * _sigmoid(
        (stomach_cz - z) / 2
    )
    breasts = 0.0
    if patient.sex == "F":
        size = rng.uniform(0.6, 1.2)
        breasts = sum(
            _ellipsoid_chord(x, z, s * 0.52 * width, heart_cz - 25, 0.4 * width, 60.0, 15.0 * size)
            * _sigmoid((heart_cz - 25 - z) / 10 + 1.5)
            for s in (-1, 1)
        )

    bone = 0.55 * _bar(np.abs(x), 17.0, 3.0) * (1 - 0.35 * np.maximum(np.cos(2 * np.pi * z / 27), 0) ** 8)
    lateral = np.abs(x)
    for n in range(10):  # posterior ribs: arcs rising from the spine, then curving down
        level = apex + 8 - n * 0.19 * lung_height
        arc = level + 0.25 * lateral - 0.004 * lateral**2
        slope = 0.25 - 0.008 * lateral
        bone += _bar((z - arc) / np.sqrt(1 + slope**2), 4.5) * (lateral > 12) * (lateral < 0.95 * width)
    for n in range(6):  # anterior ribs: fainter, sloping down towards the sternum
        level = apex - 25 - n * 0.24 * lung_height
        line = level + 0.35 * (lateral - 0.9 * width)
        bone += (
            0.6 * _bar((z - line) / np.sqrt(1 + 0.35**2), 4.0) * (lateral > 0.25 * width) * (lateral < width)
        )
    clavicle = apex + 2 + 0.12 * (lateral - 25)
    bone += _bar(z - clavicle, 6.0) * (lateral > 20) * (lateral < 0.85 * width)
    bone *= bone_density * (tissue > 0)

    return {
        "tissue": tissue + breasts - trachea / _LUNG_AIR - stomach / _LUNG_AIR,
        "bone": bone,
        "air": air["right"] + air["left"],
        "air_right": air["right"],
        "air_left": air["left"],
        "heart": heart,
    }


def _consolidation(x, z, parts, rng, spacing) -> np.ndarray:
    """Patchy opacity (0-1, the fraction of air replaced) in one lung zone, or both lungs."""
    opacity = np.zeros_like(x)
    sides = ["right", "left"] if rng.random() < 0.25 else [["right", "left"][int(rng.random() < 0.45)]]
    for side in sides:
        lung = parts[f"air_{side}"] > 2
        if not lung.any():
            continue
        weights = parts[f"air_{side}"][lung]
        pick = rng.choice(weights.size, p=weights / weights.sum())
        cx, cz = x[lung][pick], z[lung][pick]
        extent = rng.uniform(35, 75)
        window = np.exp(-((x - cx) ** 2 + (z - cz) ** 2) / (2 * extent**2))
        patches = _sigmoid((smooth_noise(rng, x.shape, 12.0 / spacing) + 0.6) / 0.35)
        density = rng.uniform(0.4, 0.8)
        opacity = np.maximum(opacity, density * window * patches * lung)
    return np.clip(opacity, 0, 0.95)


def _with_nodule(air, nodule, across, down):
    """Lung air path lengths with a solid sphere in place of aerated lung."""
    d2 = (across - nodule["grid_centre"][0]) ** 2 + (down - nodule["grid_centre"][1]) ** 2
    chord = 2 * np.sqrt(np.maximum(nodule["radius"] ** 2 - d2, 0))
    return air - np.minimum(chord, air)


def _place_nodules(rng, parts, grid, film) -> list[dict]:
    """1-3 spheres in aerated lung (deep enough to hold them), not touching each other, where a
    reader would see them.

    Box labels on real radiographs are what readers saw on the film, so a nodule is placed
    where its signal on the rendered film reaches `_MIN_CONSPICUITY` (see `_conspicuity`):
    random positions are tried in turn, and if none of `_PLACEMENT_TRIES` does, the most
    conspicuous one is kept. Count and sizes are the patient's, drawn before any position.
    """
    count = int(rng.choice([1, 2, 3], p=[0.55, 0.3, 0.15]))
    radii = [float(r) for r in rng.uniform(4.0, 12.0, count)]
    across, down = np.meshgrid(*grid.axes(), indexing="ij")
    spacing = grid.spacing[0]
    ii, jj = np.ogrid[: across.shape[0], : across.shape[1]]
    plain = film(parts["air"])
    nodules: list[dict] = []
    for radius in radii:
        room = parts["air"] > 2 * radius + 10
        for other in nodules:
            room &= (
                np.hypot(ii - other["index"][0], jj - other["index"][1]) * spacing
                > other["radius"] + radius + 6
            )
        candidates = np.argwhere(room)
        if not len(candidates):
            continue
        background = _band(plain, radius / spacing)  # the same for every position tried
        tried = []
        for _ in range(_PLACEMENT_TRIES):
            i, j = candidates[rng.integers(len(candidates))] + rng.uniform(-0.5, 0.5, 2)
            nodule = {
                "radius": radius,
                "index": (float(i), float(j)),
                "grid_centre": (float(grid.origin[0] + i * spacing), float(grid.origin[1] + j * spacing)),
            }
            shown = film(_with_nodule(parts["air"], nodule, across, down))
            nodule["conspicuity"] = _conspicuity(background, shown, nodule["index"], radius / spacing)
            tried.append(nodule)
            if nodule["conspicuity"] >= _MIN_CONSPICUITY:
                break
        nodules.append(max(tried, key=lambda n: n["conspicuity"]))
    return nodules


def _band(film, radius) -> np.ndarray:
    """The film band-passed at a blob's scale: a difference of Gaussians, radius / 2 and 2 radii."""
    film = film.astype(np.float32)
    return blur(film, radius / 2) - blur(film, 2 * radius)


def _conspicuity(background, film, centre, radius) -> float:
    """How far a nodule of `radius` pixels stands out, as a reader's eye looks for a blob of that
    size among ribs, vessels and edges: its signal (the film minus the film without it) over
    the SD of the clutter within three radii, both band-passed at its scale (`_band`;
    `background` is the band-passed film without it)."""
    ii, jj = np.ogrid[: film.shape[0], : film.shape[1]]
    d = np.hypot(ii - centre[0], jj - centre[1])
    signal = _band(film, radius) - background
    return float(signal[d <= 0.5 * radius].mean() / background[d <= 3 * radius].std())


def _detector(line, rng, look, spacing) -> np.ndarray:
    """Line integrals -> noisy detector signal -> processed 12-bit pixels."""
    line = blur(line, 0.4 + look.blur)  # focal spot and scintillator
    flux = 4.0e4 * rng.uniform(0.7, 1.4)
    photons = flux * np.exp(-line)
    photons = photons + 0.35 * blur(photons, 30.0 / spacing)  # scatter
    noisy = photons + np.sqrt(photons) * look.noise * rng.standard_normal(photons.shape, dtype=np.float32)
    measured = np.maximum(-np.log(np.maximum(noisy, 1.0) / (1.35 * flux)), 0)
    # Presentation processing: compress thick regions, sharpen edges, apply the site's LUT.
    thick = blur(measured, 25.0 / spacing) - 2.5
    detail = measured - blur(measured, 1.5)
    processed = measured - 0.4 * np.logaddexp(0, 3 * thick) / 3 + 0.6 * detail
    values = 3400 * look.gain * _sigmoid(look.contrast * (processed - 3.0) / 1.0)
    return np.clip(np.round(values), 0, _MAX_VALUE).astype(np.uint16)


def _box(mask: np.ndarray) -> list[float]:
    """The tight box of a mask: lower corners inclusive, upper exclusive, in voxel indices."""
    where = np.argwhere(mask)
    return [float(v) for v in (*where.min(axis=0), *(where.max(axis=0) + 1))]
