"""Brain MRI (3D, T1-weighted-like) with tissue labels of exact volume and atrophy over time.

The head is a set of nested star-shaped solids sharing one centre: scalp, skull (outer and
inner tables), the brain surface and the white-matter surface (both folded by the same
gyral waves, the white matter more deeply), so every tissue is the shell between two of
them and its volume is a difference of exact volumes. Two lateral ventricles and two
hippocampi are ellipsoids inside the white matter. Label maps are volume-preserving (see
`medsight.data.synthetic._shapes`), so label volumes equal ``truth["volumes_ml"]``
to within one voxel.

Atrophy: each patient has annual rates, recorded in ``truth["rates_per_year"]``; between
visits grey matter and hippocampi shrink and ventricles grow exponentially,
``V(t) = V(0) * (1 + rate) ** years``. External CSF fills what the brain gives up.

The T1 signal mixes tissue values by each voxel's partial volume, then adds a smooth bias
field, the site's gain, contrast and blur, and Rician noise; values are int16, as stored.
"""

from __future__ import annotations

import numpy as np

from medsight.data.synthetic._fields import blur, smooth_noise
from medsight.data.synthetic._shapes import Blob, BlobField, Grid, rotation
from medsight.data.synthetic.case import Case
from medsight.data.synthetic.patients import Patient, appearance, make_patient, visit_days
from medsight.image import Image

__all__ = ["LABEL_NAMES", "MAX_DAYS", "brain_mri"]

LABEL_NAMES = {
    1: "scalp",
    2: "skull",
    3: "csf",
    4: "grey_matter",
    5: "white_matter",
    6: "ventricles",
    7: "hippocampus_left",
    8: "hippocampus_right",
}
# T1 signal relative to white matter (ventricles are CSF, hippocampi grey matter).
_T1 = {"scalp": 0.85, "skull": 0.12, "diploe": 0.5, "csf": 0.22, "gm": 0.62, "wm": 1.0}
_LPS = np.diag([-1.0, -1.0, 1.0])  # the phantom is built in LPS; flipping x and y gives RAS
MAX_YEARS = 6.0  # the shapes are laid out with room for this much change
MAX_DAYS = MAX_YEARS * 365.25


def brain_mri(
    *,
    seed: int = 0,
    timepoint: int = 0,
    patient: Patient | None = None,
    site_effect: float = 1.0,
    interval_days: float = 365.0,
    shape: tuple[int, int, int] = (88, 104, 80),
    spacing: float = 2.0,
) -> Case:
    """A T1-like head MRI of one patient at one visit, with its tissue label map.

    Parameters
    ----------
    seed : int
        Fixes the patient: anatomy and atrophy rates. Same seed, other `timepoint`:
        the same head later (new position in the scanner, new noise).
    timepoint : int
        Visit number; visits are `interval_days` apart (+-10 %), at most 6 years in all.
    patient : Patient, optional
        Made from `seed` when omitted (ages 50-90).
    site_effect : float
        Strength of the site's appearance (intensity scale, contrast, bias, noise, blur).
    shape, spacing
        Voxel grid (axial, LPS: ``i`` to the left, ``j`` posterior, ``k`` up) and its
        isotropic spacing in mm.

    Returns
    -------
    Case
        ``image``: int16 MR signal. ``mask``: `LABEL_NAMES`. ``truth``: ``volumes_ml``
        (exact, per label name), ``rates_per_year`` (``grey_matter``, ``hippocampus``,
        ``ventricles``: relative volume change per year), ``years``, ``pose`` (the head's
        rotation and shift in mm in the scanner, RAS+).
    """
    patient = patient or make_patient(seed, ages=(50, 90))
    anatomy = np.random.default_rng([seed, 0])
    visit = np.random.default_rng([seed, 2, timepoint])
    days = visit_days(seed, timepoint, interval_days)
    years = days / 365.25
    if years > MAX_YEARS:
        raise ValueError(
            f"timepoint {timepoint} is {years:.1f} years after the first visit; brain_mri models "
            f"at most {MAX_YEARS:g} years (use fewer time points or a shorter interval)"
        )
    look = appearance(patient.site, site_effect)
    grid = Grid.centred(shape, (spacing,) * 3)
    head = _Head(patient, anatomy)

    # Where the head lies in the scanner at this visit.
    turn = rotation(*visit.normal(0, 2.0, 3))
    shift = visit.normal(0, 2.5, 3)
    scales = head.scales(years)
    fields = {}
    for name, blob in head.blobs().items():
        fields[name] = BlobField(blob.moved(turn, shift), grid, max_scale=max(scales[name]))

    # Each label is the shell inside one surface (field, scale), painted outside in.
    surfaces = {
        1: [("head", 0)],
        2: [("head", 1)],
        3: [("head", 2)],
        4: [("brain", 0)],
        5: [("white", 0)],
        6: [("ventricle_left", 0), ("ventricle_right", 0)],
        7: [("hippocampus_left", 0)],
        8: [("hippocampus_right", 0)],
    }
    labels = np.zeros(shape, np.uint8)
    inside, volumes = {}, {}
    for value, parts in surfaces.items():
        inside[value] = np.zeros(shape, np.float32)
        volumes[value] = 0.0
        for name, which in parts:
            scale = scales[name][which]
            labels[fields[name].labels(scale)] = value
            inside[value] += fields[name].full_occupancy(scale)
            volumes[value] += fields[name].blob.volume() * scale**3 / 1000
    # The marrow (diploe) between the skull's two tables.
    marrow = fields["head"].full_occupancy(scales["head"][3]) - fields["head"].full_occupancy(
        scales["head"][4]
    )

    image = _t1_signal(inside, marrow, anatomy, visit, look, spacing)
    affine = np.diag([-spacing, -spacing, spacing, 1.0])  # LPS axes as RAS+
    affine[:3, 3] = [-grid.origin[0], -grid.origin[1], grid.origin[2]]
    # A shell's volume is the volume inside its surface less the next surface in.
    exact = {LABEL_NAMES[v]: volumes[v] - volumes.get(v + 1, 0.0) for v in (1, 2, 3, 4)}
    exact["white_matter"] = volumes[5] - volumes[6] - volumes[7] - volumes[8]
    exact.update({LABEL_NAMES[v]: volumes[v] for v in (6, 7, 8)})
    truth = {
        "volumes_ml": {k: round(v, 4) for k, v in exact.items()},
        "intracranial_volume_ml": round(volumes[3], 4),
        "rates_per_year": {k: round(v, 5) for k, v in head.rates.items()},
        "years": round(years, 4),
        # The head's rigid motion in the scanner (RAS+), from where it would lie unmoved.
        "pose": {
            "rotation": np.round(_LPS @ turn @ _LPS, 5).tolist(),
            "shift_mm": np.round(_LPS @ shift, 3).tolist(),
        },
    }
    meta = {"modality": "MR", "body_part": "HEAD", "sequence": "T1-weighted 3D gradient echo"}
    mr = Image(image[None], affine, metadata=meta)
    return Case(
        image=mr,
        patient=patient,
        timepoint=timepoint,
        days=days,
        mask=mr.with_array(labels[None], kind="label"),
        label_names=dict(LABEL_NAMES),
        truth=truth,
    )


class _Head:
    """One patient's head: shapes at the first visit and how they change with time."""

    def __init__(self, patient: Patient, rng: np.random.Generator):
        size = (1.03 if patient.sex == "M" else 0.97) * rng.uniform(0.97, 1.03)
        self.axes = np.array([79.0, 96.0, 71.0]) * size * rng.uniform(0.98, 1.02, 3)
        self.rotation = rotation(*rng.normal(0, 1.5, 3))
        mean_radius = float(np.mean(self.axes))
        self.scalp = 1 - 5.0 / mean_radius
        self.skull = self.scalp - 6.0 / mean_radius  # inner table
        # Gyri: plane waves on the sphere of directions, about 15-20 mm apart on the cortex. They
        # fold the white matter deeply and the brain surface a little (sulci hold CSF).
        directions = rng.normal(size=(8, 3))
        directions /= np.linalg.norm(directions, axis=1, keepdims=True)
        self.gyri = np.column_stack(
            [np.ones(8), rng.uniform(14, 22, 8), rng.uniform(0, 2 * np.pi, 8), directions]
        )
        self.fold = {"brain": 0.004, "white": 0.025}  # amplitude per wave, as a fraction of radius
        # Older brains start smaller; faster decliners lose tissue faster (rates per year).
        decline = float(rng.beta(1.2, 2.5))
        ageing = 1 + 0.01 * (patient.age - 65)
        self.rates = {
            "grey_matter": -(0.004 + 0.012 * decline) * ageing,
            "hippocampus": -(0.006 + 0.035 * decline) * ageing,
            "ventricles": (0.01 + 0.05 * decline) * ageing,
        }
        self.ventricle_scale = (1 + 0.012 * (patient.age - 50)) ** (1 / 3) * rng.uniform(0.9, 1.1)
        largest = self.ventricle_scale * (1 + self.rates["ventricles"]) ** (MAX_YEARS / 3)
        ventricle = np.array([7.0, 26.0, 10.0]) * rng.uniform(0.9, 1.1, 3) * size
        # Side by side, a septum of at least 3 mm between them at their largest.
        self.ventricles = {
            side: Blob(
                [sign * (ventricle[0] * largest + 1.5), -2.0 + rng.normal(0, 1.5), 14.0],
                ventricle,
                rotation(-10.0, 0.0, 0.0),
            )
            for side, sign in (("left", 1), ("right", -1))
        }
        hippocampus = np.array([6.5, 17.0, 7.5]) * rng.uniform(0.9, 1.1, 3) * size
        self.hippocampi = {
            side: Blob([sign * 28.0, 10.0, -20.0], hippocampus, rotation(-20.0, 0.0, -sign * 12.0))
            for side, sign in (("left", 1), ("right", -1))
        }
        brain_fraction = 0.84 - 0.003 * (patient.age - 50) + rng.normal(0, 0.01)
        self._fit_brain(brain_fraction)

    def _blob(self, fold: float = 0.0) -> Blob:
        waves = self.gyri * [fold, 1, 1, 1, 1, 1] if fold else ()
        return Blob(np.zeros(3), self.axes, self.rotation, waves)

    def _fit_brain(self, brain_fraction: float) -> None:
        """Brain and white-matter scales, with CSF over the cortex at every later visit."""
        head, brain, white = self._blob(), self._blob(self.fold["brain"]), self._blob(self.fold["white"])
        margin = 2.5 / float(np.mean(self.axes))  # CSF over the cortex, as a fraction of the radius
        self._brain_volume, self._white_volume = brain.volume(), white.volume()
        icv = head.volume() * self.skull**3
        self.brain0 = min(
            (brain_fraction * icv / self._brain_volume) ** (1 / 3),
            (self.skull - margin) / brain.radius_range()[1],
        )
        # White matter fills ~45 % of the brain and must stay inside it as the cortex thins.
        u = np.random.default_rng(0).normal(size=(4000, 3))
        u /= np.linalg.norm(u, axis=1, keepdims=True)
        reach = float(np.max(white.radius(u) / brain.radius(u)))
        self.white = (0.45 * self._brain_volume / self._white_volume) ** (1 / 3) * self.brain0
        for _ in range(20):
            self._grey0 = self._brain_volume * self.brain0**3 - self._white_volume * self.white**3
            if self.white * reach <= self.scales(MAX_YEARS)["brain"][0] - margin:
                break
            self.white *= 0.99

    def scales(self, years: float) -> dict[str, tuple[float, ...]]:
        """Scale of each blob's surfaces after `years`; the head has five (see `blobs`)."""
        grey = self._grey0 * (1 + self.rates["grey_matter"]) ** years
        brain = ((self._white_volume * self.white**3 + grey) / self._brain_volume) ** (1 / 3)
        ventricles = self.ventricle_scale * (1 + self.rates["ventricles"]) ** (years / 3)
        hippocampi = (1 + self.rates["hippocampus"]) ** (years / 3)
        middle, half = (self.scalp + self.skull) / 2, 1.2 / float(np.mean(self.axes))
        return {
            # scalp surface, outer table, inner table, and the marrow between the tables
            "head": (1.0, self.scalp, self.skull, middle + half, middle - half),
            "brain": (brain,),
            "white": (self.white,),
            "ventricle_left": (ventricles,),
            "ventricle_right": (ventricles,),
            "hippocampus_left": (hippocampi,),
            "hippocampus_right": (hippocampi,),
        }

    def blobs(self) -> dict[str, Blob]:
        return {
            "head": self._blob(),
            "brain": self._blob(self.fold["brain"]),
            "white": self._blob(self.fold["white"]),
            "ventricle_left": self.ventricles["left"],
            "ventricle_right": self.ventricles["right"],
            "hippocampus_left": self.hippocampi["left"],
            "hippocampus_right": self.hippocampi["right"],
        }


def _t1_signal(inside, marrow, anatomy, visit, look, spacing) -> np.ndarray:
    """Partial-volume T1 signal with texture, bias field, site appearance and Rician noise.

    `inside` maps each label value to the occupancy of the surface that bounds it.
    """
    parts = {
        "scalp": inside[1] - inside[2],
        "skull": inside[2] - inside[3] - marrow,
        "diploe": marrow,
        "csf": inside[3] - inside[4] + inside[6],
        "gm": inside[4] - inside[5] + inside[7] + inside[8],
        "wm": inside[5] - inside[6] - inside[7] - inside[8],
    }
    signal = sum(_T1[name] * np.clip(fraction, 0, 1) for name, fraction in parts.items())
    shape = signal.shape
    signal = signal * (1 + 0.03 * smooth_noise(anatomy, shape, 1.0))
    bias = _bias_field(visit, shape, spacing, strength=0.08 + 0.06 * (look.noise - 1))
    signal = np.maximum(blur(signal * bias, 0.5 + look.blur), 0) ** look.contrast
    sigma = 0.03 * look.noise
    real = signal + sigma * visit.standard_normal(shape, dtype=np.float32)
    imaginary = sigma * visit.standard_normal(shape, dtype=np.float32)
    return np.round(600 * look.gain * np.hypot(real, imaginary)).astype(np.int16)


def _bias_field(rng, shape, spacing, *, strength: float) -> np.ndarray:
    """A smooth multiplicative field (coil sensitivity): a few waves 150-300 mm long."""
    axes = [((np.arange(n) - (n - 1) / 2) * spacing).astype(np.float32) for n in shape]
    log_field = np.zeros(shape, np.float32)
    for _ in range(3):
        direction = rng.normal(size=3)
        direction *= 2 * np.pi / rng.uniform(150, 300) / np.linalg.norm(direction)
        phase = sum(
            d * a.reshape([-1 if b == n else 1 for b in range(3)])
            for n, (d, a) in enumerate(zip(direction.tolist(), axes))
        )
        log_field += np.cos(phase + float(rng.uniform(0, 2 * np.pi)))
    return np.exp(strength / np.sqrt(1.5) * log_field)
