"""Breast ultrasound (2D B-mode) with speckle, acoustic shadowing and lesion masks.

Tissue layers (skin, subcutaneous fat with Cooper's ligaments, fibroglandular tissue,
retromammary fat, pectoral muscle) set the mean backscatter. Scatterers are complex
Gaussian (so the envelope is Rayleigh-distributed: fully developed, multiplicative
speckle), attenuated along each beam by the tissue they cross, compensated by the
time-gain curve for average tissue only, convolved with the beam's point-spread function,
envelope-detected and log-compressed to 8 bits. A lesion that attenuates more than
tissue therefore casts a shadow; a cyst that attenuates less brightens what lies behind.

Classes follow the BI-RADS descriptors that separate them:

- ``benign``: oval, wider than tall, circumscribed (smooth), homogeneous; some are
  anechoic cysts with posterior enhancement.
- ``malignant``: irregular, spiculated or microlobulated, often taller than wide,
  heterogeneous, with an echogenic halo and, in most, posterior shadowing.
- ``normal``: no lesion (empty mask).
"""

from __future__ import annotations

import numpy as np

from medsight.data.synthetic._fields import blur, smooth_noise
from medsight.data.synthetic._shapes import Blob, BlobField, Grid
from medsight.data.synthetic.case import Case
from medsight.data.synthetic.patients import Patient, appearance, make_patient, visit_days
from medsight.image import LPS_TO_RAS, Image

__all__ = ["CLASSES", "LABEL_NAMES", "ultrasound"]

CLASSES = ("normal", "benign", "malignant")
LABEL_NAMES = {1: "lesion"}
_TISSUE_ATTENUATION = 0.04  # Np/mm of amplitude, round trip, at ~7.5 MHz: what the TGC undoes


def ultrasound(
    *,
    label: str = "benign",
    seed: int = 0,
    patient: Patient | None = None,
    timepoint: int = 0,
    site_effect: float = 1.0,
    shape: tuple[int, int] = (128, 128),
    spacing: float = 0.3,
) -> Case:
    """A breast B-mode image of class `label`, with the lesion's mask and box.

    Parameters
    ----------
    label : {"normal", "benign", "malignant"}
    seed : int
        Fixes the patient's tissue and lesion; the same seed with another `timepoint` is
        another view of it weeks later (new probe position and speckle).
    patient : Patient, optional
        Made from `seed` when omitted (women aged 25-85).
    site_effect : float
        Strength of the site's appearance (gain, dynamic range, noise floor, focusing).
    shape, spacing
        Pixels across (``i``, lateral) and down (``j``, depth), and their size in mm.

    Returns
    -------
    Case
        ``image``: uint8 B-mode, modality US. ``mask``: 1 = lesion. ``boxes``: the
        lesion's. ``truth``: ``area_mm2`` (exact), ``width_mm``, ``height_mm``,
        ``taller_than_wide``, ``circularity`` (4 pi area / perimeter^2 of the true
        outline), ``margin``, ``echo_pattern``, ``posterior`` ("shadowing",
        "enhancement", "none"), ``depth_mm`` of the centre.
    """
    if label not in CLASSES:
        raise ValueError(f"label must be one of {', '.join(CLASSES)}, not {label!r}")
    patient = patient or make_patient(seed, ages=(25, 85), sex="F")
    anatomy = np.random.default_rng([seed, 0])
    lesion_rng = np.random.default_rng([seed, 1])
    visit = np.random.default_rng([seed, 2, timepoint])
    days = visit_days(seed, timepoint, 42)
    look = appearance(patient.site, site_effect)
    grid = Grid(tuple(shape), (spacing, spacing), (0.0, 0.0))
    depth = grid.axes()[1]
    width_mm, depth_mm = shape[0] * spacing, shape[1] * spacing

    # The probe lands a few mm elsewhere at each visit: the tissue (made wider than the
    # image) and the lesion slide sideways together, by whole pixels.
    margin = int(np.ceil(6.0 / spacing))
    offset = int(np.clip(np.round(visit.normal(0, 2.0) / spacing), -margin, margin))
    slide = offset * spacing
    echo, attenuation = _layers(anatomy, shape[0] + 2 * margin, depth, spacing)
    echo, attenuation = (a[margin + offset : margin + offset + shape[0]] for a in (echo, attenuation))
    mask = np.zeros(shape, bool)
    truth: dict = {}
    boxes: list[dict] = []
    if label != "normal":
        lesion, truth = _lesion(lesion_rng, label, width_mm, depth_mm, slide)
        field = BlobField(lesion["blob"], grid)
        inside = field.full_occupancy()
        mask = field.labels()
        halo = np.clip(field.full_occupancy(1.25) - inside, 0, 1) * lesion["halo"]
        texture = 1 + lesion["heterogeneity"] * smooth_noise(lesion_rng, shape, 1.5)
        echo = echo * (1 - inside) + inside * lesion["echo"] * np.clip(texture, 0.2, None) + halo * 1.5
        attenuation = attenuation * (1 - inside) + inside * lesion["attenuation"]
        where = np.argwhere(mask)
        boxes = [{"box": [float(v) for v in (*where.min(0), *(where.max(0) + 1))], "label": label}]
        truth["area_mm2"] = round(float(lesion["blob"].volume()), 4)

    # Round-trip attenuation along each beam (j is depth), with the TGC undoing tissue's.
    path = np.cumsum(attenuation, axis=1) * spacing
    gain = np.exp(-(path - _TISSUE_ATTENUATION * depth[None, :]))
    scatterers = visit.standard_normal(shape, np.float32) + 1j * visit.standard_normal(shape, np.float32)
    scatterers *= np.sqrt(np.maximum(echo, 0)) * gain
    # Beam: narrowest at the focus (~15 mm), wider above and below; axial resolution is finer.
    beam = _psf(scatterers, spacing, look.blur)
    noise = 0.02 * look.noise * (visit.standard_normal(shape) + 1j * visit.standard_normal(shape))
    envelope = np.abs(beam + noise)
    dynamic_range = 45.0 / look.contrast  # dB shown from black to white
    decibels = 20 * np.log10(np.maximum(envelope, 1e-6) / 6.0) + 20 * np.log10(look.gain)
    pixels = np.round(255 * np.clip(1 + decibels / dynamic_range, 0, 1)).astype(np.uint8)

    affine = LPS_TO_RAS @ np.diag([spacing, spacing, 1.0, 1.0])  # no patient frame: ITK's default
    meta = {"modality": "US", "body_part": "BREAST", "frequency_mhz": 7.5}
    image = Image(pixels[None], affine, metadata=meta)
    return Case(
        image=image,
        patient=patient,
        timepoint=timepoint,
        days=days,
        mask=image.with_array(mask.astype(np.uint8)[None], kind="label"),
        label=label,
        boxes=boxes,
        label_names=dict(LABEL_NAMES),
        truth=truth,
    )


def _layers(rng, n_i, depth, spacing) -> tuple[np.ndarray, np.ndarray]:
    """Mean backscatter and attenuation (Np/mm) of the breast's layers, `n_i` beams wide."""
    n_j = depth.size
    lateral = np.arange(n_i) * spacing
    wobble = smooth_noise(rng, (n_i,), 20.0 / spacing)
    fat_bottom = rng.uniform(3, 8) + 1.2 * wobble
    gland_bottom = fat_bottom + rng.uniform(12, 20) + 2.0 * smooth_noise(rng, (n_i,), 25.0 / spacing)
    muscle_top = gland_bottom + rng.uniform(2, 5)
    d = depth[None, :]
    fat = (d < fat_bottom[:, None]) | ((d >= gland_bottom[:, None]) & (d < muscle_top[:, None]))
    gland = (d >= fat_bottom[:, None]) & (d < gland_bottom[:, None])
    muscle = d >= muscle_top[:, None]
    texture = smooth_noise(rng, (n_i, n_j), 1.2 / spacing)
    echo = np.where(fat, 0.08, 0.0) + np.where(gland, 1.0 + 0.4 * texture, 0.0) + np.where(muscle, 0.2, 0.0)
    # Cooper's ligaments in the fat and striations in the muscle: thin bright lines.
    ligaments = np.abs(smooth_noise(rng, (n_i, n_j), 2.5 / spacing)) < 0.06
    fibres = np.cos(2 * np.pi * (0.35 * lateral[:, None] + d) / 2.2) > 0.85
    echo = echo + 0.8 * (fat & ligaments) + 0.5 * (muscle & fibres)
    echo = echo + 3.0 * (d < 0.9)  # skin
    attenuation = np.full((n_i, n_j), _TISSUE_ATTENUATION, np.float32)
    return np.clip(echo, 0.01, None).astype(np.float32), attenuation


def _lesion(rng, label, width_mm, depth_mm, slide) -> tuple[dict, dict]:
    """A lesion's shape and acoustics, and its BI-RADS-style descriptors."""
    size = rng.uniform(3.5, 7.5)
    if label == "benign":
        wide, tall = size, size * rng.uniform(0.5, 0.8)
        waves = [
            [rng.uniform(0, 0.02), rng.uniform(2, 4), rng.uniform(0, 6.3), *_unit(rng)] for _ in range(2)
        ]
        spikes: list = []
        cyst = bool(rng.random() < 0.35)
        echo, attenuation = (0.002, 0.004) if cyst else (rng.uniform(0.03, 0.08), rng.uniform(0.02, 0.05))
        heterogeneity, halo = (0.0 if cyst else 0.1), 0.0
        margin, pattern = "circumscribed", ("anechoic" if cyst else "hypoechoic")
    else:
        wide = size * rng.uniform(0.7, 0.9)
        tall = wide * rng.uniform(1.05, 1.5)
        waves = [
            [rng.uniform(0.05, 0.1), rng.uniform(5, 9), rng.uniform(0, 6.3), *_unit(rng)] for _ in range(3)
        ]
        count = int(rng.integers(6, 14))
        spikes = [[rng.uniform(0.2, 0.5), rng.uniform(20, 80), *_unit(rng)] for _ in range(count)]
        shadow = rng.random() < 0.7
        echo = rng.uniform(0.02, 0.06)
        attenuation = rng.uniform(0.1, 0.2) if shadow else rng.uniform(0.04, 0.07)
        heterogeneity, halo = 0.35, rng.uniform(0.3, 0.8)
        margin, pattern = "spiculated", "heterogeneous"
    reach = max(wide, tall) * 1.8
    centre = [
        float(np.clip(width_mm / 2 + rng.normal(0, width_mm / 8) - slide, reach, width_mm - reach)),
        float(np.clip(rng.uniform(9, 20), reach, depth_mm - reach)),
    ]
    blob = Blob(centre, [wide, tall], None, waves, spikes)
    outline = blob.surface_points()
    perimeter = float(np.sum(np.linalg.norm(np.diff(outline, axis=0, append=outline[:1]), axis=1)))
    extent = outline.max(0) - outline.min(0)
    posterior = "shadowing" if attenuation >= 0.1 else "enhancement" if attenuation < 0.02 else "none"
    truth = {
        "width_mm": round(float(extent[0]), 3),
        "height_mm": round(float(extent[1]), 3),
        "taller_than_wide": bool(extent[1] > extent[0]),
        "circularity": round(4 * np.pi * blob.volume() / perimeter**2, 4),
        "margin": margin,
        "echo_pattern": pattern,
        "posterior": posterior,
        "depth_mm": round(centre[1], 3),
    }
    acoustics = {"blob": blob, "echo": echo, "attenuation": attenuation, "heterogeneity": heterogeneity}
    acoustics["halo"] = halo
    return acoustics, truth


def _psf(field: np.ndarray, spacing: float, extra_blur: float) -> np.ndarray:
    """Convolve complex scatterers with the beam: lateral width grows away from the focus."""
    axial = 0.25 / spacing
    beams = []
    for lateral in (0.45 / spacing + extra_blur, 0.7 / spacing + extra_blur):
        # Scaled to keep the mean echo amplitude: a Gaussian's energy is 1 / (4 pi sx sy).
        energy = np.sqrt(4 * np.pi * lateral * axial)
        beams.append(energy * (blur(field.real, (lateral, axial)) + 1j * blur(field.imag, (lateral, axial))))
    near, far = beams
    depth = np.arange(field.shape[1]) * spacing
    defocus = np.clip(np.abs(depth - 15.0) / 15.0, 0, 1)[None, :]
    return (1 - defocus) * near + defocus * far


def _unit(rng) -> np.ndarray:
    v = rng.normal(size=2)
    return v / np.linalg.norm(v)
