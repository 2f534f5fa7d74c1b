"""A small body CT phantom in Hounsfield units, with its organ label map."""

from __future__ import annotations

import numpy as np

from medsight.image import Image

# label -> (name, mean HU)
ORGANS = {
    1: ("body", 30),
    2: ("lung_left", -850),
    3: ("lung_right", -850),
    4: ("liver", 60),
    5: ("spine", 700),
    6: ("aorta", 180),
}


def body_ct(
    shape: tuple[int, int, int] = (96, 80, 40),
    spacing: tuple[float, float, float] = (4.0, 4.0, 5.0),
    *,
    noise_hu: float = 15.0,
    seed: int = 0,
) -> tuple[Image, Image]:
    """An axial body CT (int16 HU) and its label map, in LPS-like scanner orientation.

    Ellipsoids stand for the body, lungs, liver, spine and aorta; Gaussian noise of
    `noise_hu` is added. Returns ``(ct, labels)`` on the same grid, centred on the origin.
    """
    rng = np.random.default_rng(seed)
    ni, nj, nk = shape
    # Voxel centres in mm, patient x to the left, y posterior (DICOM's usual axial layout).
    x = (np.arange(ni) - (ni - 1) / 2) * spacing[0]
    y = (np.arange(nj) - (nj - 1) / 2) * spacing[1]
    z = (np.arange(nk) - (nk - 1) / 2) * spacing[2]
    X, Y, Z = np.meshgrid(x, y, z, indexing="ij")
    half_x, half_y, half_z = x[-1], y[-1], z[-1]

    def ellipsoid(cx, cy, cz, rx, ry, rz):
        return ((X - cx) / rx) ** 2 + ((Y - cy) / ry) ** 2 + ((Z - cz) / rz) ** 2 <= 1

    labels = np.zeros(shape, np.uint8)
    labels[ellipsoid(0, 0, 0, 0.9 * half_x, 0.8 * half_y, 4 * half_z)] = 1
    upper = -0.1 * half_z < Z
    labels[
        ellipsoid(0.4 * half_x, -0.05 * half_y, 0.3 * half_z, 0.3 * half_x, 0.5 * half_y, 0.7 * half_z)
        & upper
    ] = 2
    labels[
        ellipsoid(-0.4 * half_x, -0.05 * half_y, 0.3 * half_z, 0.3 * half_x, 0.5 * half_y, 0.7 * half_z)
        & upper
    ] = 3
    labels[ellipsoid(-0.3 * half_x, 0.0, -0.5 * half_z, 0.4 * half_x, 0.45 * half_y, 0.45 * half_z)] = 4
    labels[ellipsoid(0, 0.6 * half_y, 0, 0.1 * half_x, 0.1 * half_y, 4 * half_z)] = 5
    labels[ellipsoid(0.08 * half_x, 0.35 * half_y, 0, 0.06 * half_x, 0.06 * half_y, 4 * half_z)] = 6
    hu = np.full(shape, -1000.0)
    for value, (_, mean) in ORGANS.items():
        hu[labels == value] = mean
    hu += rng.normal(0, noise_hu, shape)
    ct = np.clip(np.round(hu), -1024, 3071).astype(np.int16)

    # LPS axes (i -> left, j -> posterior, k -> superior) expressed as a RAS+ affine.
    affine = np.diag([-spacing[0], -spacing[1], spacing[2], 1.0])
    affine[:3, 3] = [-x[0], -y[0], z[0]]
    meta = {"modality": "CT", "body_part": "ABDOMEN", "label_names": {k: v[0] for k, v in ORGANS.items()}}
    return (
        Image(ct[None], affine, kind="intensity", metadata=meta),
        Image(labels[None], affine, kind="label", metadata={"label_names": meta["label_names"]}),
    )
