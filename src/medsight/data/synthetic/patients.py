"""Synthetic patients and the sites that scan them, with a configurable site effect.

Every phantom belongs to a `Patient`: sex, age, site, and the dates that place each visit
in time. Each site scans with its own (fictional) scanner, and its images look a little
different: brighter or darker, more or less contrast, noise and blur. `site_effect`
scales those differences (0: every site looks alike; 1: the default; 2: twice as strong),
so a bias audit has a real, known effect to find.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass

import numpy as np

__all__ = ["SITES", "Appearance", "Patient", "Site", "appearance", "make_patient", "visit_days"]


@dataclass(frozen=True)
class Appearance:
    """How a site's images differ from the reference, at site effect 1.

    Parameters
    ----------
    gain : float
        Multiplies stored intensities (MR, radiograph, ultrasound brightness).
    contrast : float
        Stretches differences from the mean tissue level.
    noise : float
        Multiplies the noise standard deviation.
    blur : float
        Extra Gaussian blur, in voxels (resolution, reconstruction kernel, focusing).
    offset : float
        Added to CT numbers, in HU (calibration drift).
    """

    gain: float = 1.0
    contrast: float = 1.0
    noise: float = 1.0
    blur: float = 0.0
    offset: float = 0.0


@dataclass(frozen=True)
class Site:
    """A hospital: its name, its scanner per modality, how its images look, how many it sends."""

    name: str
    institution: str
    address: str
    scanners: dict[str, tuple[str, str]]  # modality -> (manufacturer, model)
    appearance: Appearance
    weight: float


SITES: dict[str, Site] = {
    site.name: site
    for site in (
        Site(
            "A",
            "Riverside University Hospital",
            "12 Harbour Road, Riverton RV1 4AB",
            {
                "DX": ("Aster Medical", "Aster DR 500"),
                "MR": ("Aster Medical", "Aster MR 3T"),
                "CT": ("Aster Medical", "Aster CT 128"),
                "US": ("Aster Medical", "Aster Sono 9"),
            },
            Appearance(),
            0.45,
        ),
        Site(
            "B",
            "St. Columba General Hospital",
            "401 Abbey Lane, Kilmartin KM4 7XZ",
            {
                "DX": ("Borealis Imaging", "NorthView 2"),
                "MR": ("Borealis Imaging", "Polaris 1.5T"),
                "CT": ("Borealis Imaging", "Helix 64"),
                "US": ("Borealis Imaging", "EchoLine 3"),
            },
            Appearance(gain=1.3, contrast=0.8, noise=1.6, blur=0.4, offset=12.0),
            0.35,
        ),
        Site(
            "C",
            "Meadowbrook Community Clinic",
            "7 Mill Street, Fairhaven FH2 9QP",
            {
                "DX": ("Cinder Systems", "CS-DR Flex"),
                "MR": ("Cinder Systems", "CS-MR 1.5T Open"),
                "CT": ("Cinder Systems", "CS-CT 16"),
                "US": ("Cinder Systems", "CS-Sono Lite"),
            },
            Appearance(gain=0.8, contrast=1.15, noise=0.8, blur=1.0, offset=-8.0),
            0.20,
        ),
    )
}


def appearance(site: str, strength: float) -> Appearance:
    """The site's appearance with its differences from the reference scaled by `strength`."""
    if not np.isfinite(strength) or strength < 0:
        raise ValueError(f"site_effect must be a number >= 0, not {strength!r}")
    base = SITES[site].appearance
    return Appearance(
        gain=1 + strength * (base.gain - 1),
        contrast=1 + strength * (base.contrast - 1),
        noise=1 + strength * (base.noise - 1),
        blur=strength * base.blur,
        offset=strength * base.offset,
    )


@dataclass(frozen=True)
class Patient:
    """Who is scanned, where, and when the first visit (timepoint 0) took place.

    ``age`` is in whole years at the first visit; `age_at` gives it at a later one.
    """

    patient_id: str
    sex: str  # "F" or "M"
    age: int
    site: str
    birth_date: _dt.date
    baseline: _dt.date

    def scanner(self, modality: str) -> str:
        manufacturer, model = SITES[self.site].scanners[modality]
        return f"{manufacturer} {model}"

    def date_at(self, days: int) -> _dt.date:
        return self.baseline + _dt.timedelta(days=int(days))

    def age_at(self, days: int) -> int:
        """Whole years of age on the day `days` after the first visit."""
        d, b = self.date_at(days), self.birth_date
        return d.year - b.year - ((d.month, d.day) < (b.month, b.day))

    def attributes(self, modality: str, days: int = 0) -> dict:
        """The subgroup attributes a manifest sample carries."""
        return {
            "sex": self.sex,
            "age": self.age_at(days),
            "site": self.site,
            "scanner": self.scanner(modality),
        }


def make_patient(
    seed: int,
    *,
    patient_id: str | None = None,
    ages: tuple[int, int] = (20, 90),
    sex: str | None = None,
    age: int | None = None,
    site: str | None = None,
) -> Patient:
    """A random patient, deterministic by `seed`; any attribute may be fixed instead.

    `ages` is the (low, high) range of ages at the first visit, in years.
    """
    rng = np.random.default_rng([int(seed), 7])
    drawn_sex = "F" if rng.random() < 0.5 else "M"
    drawn_age = int(rng.integers(ages[0], ages[1] + 1))
    names = list(SITES)
    weights = np.array([SITES[n].weight for n in names])
    drawn_site = names[int(rng.choice(len(names), p=weights / weights.sum()))]
    baseline = _dt.date(2016, 1, 4) + _dt.timedelta(days=int(rng.integers(0, 6 * 365)))
    age = drawn_age if age is None else int(age)
    # A birthday somewhere in the year before the age was reached, so age_at(0) == age.
    birth = baseline - _dt.timedelta(days=int(age * 365.25 + rng.integers(1, 364)))
    if site is not None and site not in SITES:
        raise ValueError(f"site must be one of {', '.join(SITES)}, not {site!r}")
    if sex is not None and sex not in ("F", "M"):
        raise ValueError(f"sex must be 'F' or 'M', not {sex!r}")
    patient = Patient(
        patient_id=patient_id or f"SYN{int(seed):06d}",
        sex=sex or drawn_sex,
        age=age,
        site=site or drawn_site,
        birth_date=birth,
        baseline=baseline,
    )
    # The leap-day arithmetic above can land a day off: fix the birth date, not the age.
    if patient.age_at(0) != age:
        shift = _dt.timedelta(days=1 if patient.age_at(0) > age else -1)
        patient = Patient(**{**patient.__dict__, "birth_date": birth + shift})
    return patient


def visit_days(seed: int, timepoint: int, interval_days: float) -> int:
    """Days from the first visit to `timepoint`: the interval with +-10 % scheduling jitter."""
    if timepoint < 0:
        raise ValueError(f"timepoint must be >= 0, not {timepoint}")
    if timepoint == 0:
        return 0
    jitter = np.random.default_rng([int(seed), 8, int(timepoint)]).uniform(-0.1, 0.1)
    return int(round(interval_days * (timepoint + jitter)))
