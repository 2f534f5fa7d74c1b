"""`Image`: a channel-first array that knows where it is in the patient.

Conventions (those of nibabel and TorchIO):

- ``array`` has shape ``(C, I, J)`` for 2D or ``(C, I, J, K)`` for 3D images.
- ``affine`` is a 4x4 matrix mapping the voxel index ``(i, j, k, 1)`` to RAS+
  millimetres: +x points to the patient's right, +y anterior, +z superior.
  DICOM and ITK use LPS+; readers convert once, at the IO boundary.
- A 2D image still has a 4x4 affine; its third column is the unit normal of the
  image plane, so a radiograph knows its orientation too.

SimpleITK and nibabel are imported only by the methods that need them.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np

from medsight.errors import GeometryError

__all__ = ["LPS_TO_RAS", "Image", "Kind"]

Kind = Literal["intensity", "label"]

# Flips x and y: converts LPS+ coordinates to RAS+ and back (it is its own inverse).
LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])


class Image:
    """A medical image: voxels, geometry in RAS+ mm, kind and metadata.

    Parameters
    ----------
    array : array_like, shape (C, I, J) or (C, I, J, K)
        Channel-first voxel data. It is kept as given (no copy, no rescaling).
    affine : array_like, shape (4, 4), optional
        Voxel index to RAS+ mm. Identity (1 mm voxels at the origin) if omitted.
    kind : {"intensity", "label"}
        Labels are resampled with nearest neighbour, intensities linearly.
    metadata : dict, optional
        Free metadata (modality, patient id, UIDs, ...), copied.
    """

    def __init__(
        self,
        array: Any,
        affine: Any = None,
        *,
        kind: Kind = "intensity",
        metadata: dict | None = None,
    ):
        array = np.asarray(array)
        if array.ndim not in (3, 4):
            raise GeometryError(
                f"an Image array must be channel-first (C, I, J) or (C, I, J, K), got shape {array.shape}",
                hint="Add a channel axis, e.g. array[None]",
            )
        affine = np.eye(4) if affine is None else np.array(affine, dtype=float)
        if affine.shape != (4, 4) or not np.all(np.isfinite(affine)):
            raise GeometryError(f"affine must be a finite 4x4 matrix, got {affine.shape}")
        if abs(np.linalg.det(affine[:3, :3])) < 1e-12:
            raise GeometryError("affine is singular: a voxel axis has zero length or two axes coincide")
        if kind not in ("intensity", "label"):
            raise ValueError(f"kind must be 'intensity' or 'label', not {kind!r}")
        self.array = array
        self.affine = affine
        self.kind: Kind = kind
        self.metadata: dict = dict(metadata or {})

    # -- shape and geometry -------------------------------------------------

    @property
    def num_channels(self) -> int:
        return self.array.shape[0]

    @property
    def spatial_shape(self) -> tuple[int, ...]:
        """Voxel counts along ``i, j[, k]``."""
        return tuple(int(n) for n in self.array.shape[1:])

    @property
    def ndim(self) -> int:
        """Number of spatial dimensions: 2 or 3."""
        return self.array.ndim - 1

    @property
    def spacing(self) -> tuple[float, ...]:
        """Voxel size in mm along ``i, j[, k]``."""
        norms = np.linalg.norm(self.affine[:3, :3], axis=0)
        return tuple(float(s) for s in norms[: self.ndim])

    @property
    def origin(self) -> tuple[float, float, float]:
        """RAS+ mm position of the centre of voxel ``(0, 0, 0)``."""
        return tuple(float(v) for v in self.affine[:3, 3])

    @property
    def direction(self) -> np.ndarray:
        """3x3 matrix whose columns are the RAS+ unit vectors of the ``i, j, k`` axes."""
        m = self.affine[:3, :3]
        return m / np.linalg.norm(m, axis=0)

    @property
    def orientation(self) -> str:
        """Axis codes: the patient direction each voxel axis points to, e.g. ``"LPS"``.

        Only the spatial axes are named, so a 2D radiograph reads e.g. ``"LS"``.
        """
        import nibabel.orientations as nio

        return "".join(nio.aff2axcodes(self.affine))[: self.ndim]

    @property
    def voxel_volume(self) -> float:
        """Volume of one voxel in mm^3 (area in mm^2 for 2D images)."""
        return float(np.prod(self.spacing))

    def __repr__(self) -> str:
        spacing = ", ".join(f"{s:.3g}" for s in self.spacing)
        origin = ", ".join(f"{o:.1f}" for o in self.origin)
        extra = f", modality={self.metadata['modality']}" if self.metadata.get("modality") else ""
        return (
            f"Image({self.kind}, shape={tuple(self.array.shape)}, spacing=({spacing}) mm, "
            f"origin=({origin}) mm, orientation={self.orientation}, dtype={self.array.dtype}{extra})"
        )

    def with_array(self, array: Any, *, kind: Kind | None = None) -> Image:
        """A new Image on the same grid with other voxels (e.g. a prediction)."""
        array = np.asarray(array)
        if tuple(array.shape[1:]) != self.spatial_shape:
            raise GeometryError(
                f"new array spatial shape {array.shape[1:]} differs from the image's {self.spatial_shape}"
            )
        return Image(array, self.affine, kind=kind or self.kind, metadata=self.metadata)

    def same_grid(self, other: Image, *, atol: float = 1e-3) -> bool:
        """Whether both images have the same spatial shape and affine (within `atol` mm)."""
        return self.spatial_shape == other.spatial_shape and np.allclose(self.affine, other.affine, atol=atol)

    # -- SimpleITK ----------------------------------------------------------

    def to_sitk(self):
        """Convert to a ``SimpleITK.Image`` (LPS+ geometry; channels as vector components).

        A 2D image whose plane is not the x-y plane becomes a one-slice 3D image,
        because a 2D ITK image cannot hold an oblique plane.
        """
        import SimpleITK as sitk

        lps = LPS_TO_RAS @ self.affine
        spacing = np.linalg.norm(lps[:3, :3], axis=0)
        direction = lps[:3, :3] / spacing
        data = self.array
        if self.ndim == 2:
            in_plane = np.allclose(direction[2, :2], 0) and np.allclose(direction[:2, 2], 0)
            if in_plane and np.isclose(lps[2, 3], 0):
                spacing, direction, origin = spacing[:2], direction[:2, :2], lps[:2, 3]
            else:
                data, origin = data[..., None], lps[:3, 3]
        else:
            origin = lps[:3, 3]
        # ITK arrays are indexed (k, j, i[, c]): reverse the spatial axes.
        if data.shape[0] == 1:
            itk = sitk.GetImageFromArray(np.ascontiguousarray(data[0].T))
        else:
            arr = np.moveaxis(data, 0, -1)  # (I, J[, K], C)
            axes = tuple(reversed(range(arr.ndim - 1))) + (arr.ndim - 1,)
            itk = sitk.GetImageFromArray(np.ascontiguousarray(arr.transpose(axes)), isVector=True)
        itk.SetSpacing([float(s) for s in spacing])
        itk.SetOrigin([float(o) for o in origin])
        itk.SetDirection([float(d) for d in np.asarray(direction).ravel()])
        return itk

    @classmethod
    def from_sitk(cls, itk, *, kind: Kind = "intensity", metadata: dict | None = None) -> Image:
        """Build an Image from a ``SimpleITK.Image`` (2D or 3D, scalar or vector)."""
        import SimpleITK as sitk

        dim = itk.GetDimension()
        if dim not in (2, 3):
            raise GeometryError(f"only 2D and 3D images are supported, got a {dim}D SimpleITK image")
        arr = sitk.GetArrayFromImage(itk)  # (k, j, i[, c])
        if itk.GetNumberOfComponentsPerPixel() == 1:
            array = arr.T[None]
        else:
            axes = (arr.ndim - 1,) + tuple(reversed(range(arr.ndim - 1)))
            array = arr.transpose(axes)
        lps = np.eye(4)
        direction = np.array(itk.GetDirection()).reshape(dim, dim)
        lps[:dim, :dim] = direction * np.array(itk.GetSpacing())
        lps[:dim, 3] = itk.GetOrigin()
        return cls(array, LPS_TO_RAS @ lps, kind=kind, metadata=metadata)

    # -- nibabel ------------------------------------------------------------

    def to_nibabel(self):
        """Convert to a ``nibabel.Nifti1Image`` (channels on the 4th axis)."""
        import nibabel as nib

        data = self.array[0] if self.num_channels == 1 else np.moveaxis(self.array, 0, -1)
        if self.ndim == 2:  # NIfTI is at least 3D: add a unit k axis before channels
            data = data[:, :, None] if self.num_channels == 1 else data[:, :, None, :]
        img = nib.Nifti1Image(data, self.affine)
        img.set_qform(self.affine, code=1)
        img.set_sform(self.affine, code=1)
        img.header.set_xyzt_units("mm", "sec")
        return img

    @classmethod
    def from_nibabel(cls, img, *, kind: Kind = "intensity", metadata: dict | None = None) -> Image:
        """Build an Image from a nibabel spatial image (3D, or 4D/5D with channels)."""
        data = np.asanyarray(img.dataobj)
        if data.ndim == 2:
            data = data[:, :, None]
        if data.ndim == 3:
            array = data[None]
        elif data.ndim == 4:
            array = np.moveaxis(data, -1, 0)
        elif data.ndim == 5 and data.shape[3] == 1:  # NIfTI vector images: (I, J, K, 1, C)
            array = np.moveaxis(data[:, :, :, 0], -1, 0)
        else:
            raise GeometryError(f"cannot map a NIfTI array of shape {data.shape} to channels")
        return cls(array, img.affine, kind=kind, metadata=metadata)

    # -- resampling and reorientation ---------------------------------------

    def resample(
        self, spacing: float | tuple[float, ...] | None = None, *, like: Image | None = None
    ) -> Image:
        """Resample to a voxel `spacing` in mm, or onto the grid of image `like`.

        Intensities are interpolated linearly (as float32 unless the input is float64),
        labels with nearest neighbour. Points outside the input get 0.
        """
        import SimpleITK as sitk

        if (spacing is None) == (like is None):
            raise ValueError("give exactly one of spacing= or like=")
        src = self.to_sitk()
        if like is not None:
            if like.ndim != self.ndim:
                raise GeometryError(f"cannot resample a {self.ndim}D image onto a {like.ndim}D grid")
            ref = like.to_sitk()
        else:
            old_spacing = np.array(src.GetSpacing())
            new_spacing = np.broadcast_to(np.asarray(spacing, dtype=float), (self.ndim,))
            # An oblique 2D plane travels through ITK as one 3D slice: keep its k spacing.
            new_spacing = np.concatenate([new_spacing, old_spacing[self.ndim :]])
            if np.any(new_spacing <= 0):
                raise GeometryError(f"spacing must be positive, got {tuple(new_spacing)}")
            size = np.maximum(1, np.round(np.array(src.GetSize()) * old_spacing / new_spacing))
            ref = sitk.Image([int(s) for s in size], sitk.sitkUInt8)
            ref.SetSpacing([float(s) for s in new_spacing])
            ref.SetDirection(src.GetDirection())
            # Keep the physical extent centred: shift the origin by half the spacing change.
            d = np.array(src.GetDirection()).reshape(src.GetDimension(), -1)
            ref.SetOrigin(tuple(np.array(src.GetOrigin()) + d @ ((new_spacing - old_spacing) / 2)))
        is_label = self.kind == "label"
        if not is_label and self.array.dtype != np.float64:
            src = sitk.Cast(src, sitk.sitkVectorFloat32 if self.num_channels > 1 else sitk.sitkFloat32)
        out = sitk.Resample(
            src, ref, sitk.Transform(), sitk.sitkNearestNeighbor if is_label else sitk.sitkLinear, 0.0
        )
        result = Image.from_sitk(out, kind=self.kind, metadata=self.metadata)
        if result.ndim != self.ndim:  # an oblique 2D plane went through ITK as one slice
            result = Image(result.array[..., 0], result.affine, kind=self.kind, metadata=self.metadata)
        return result

    def reorient(self, orientation: str = "RAS") -> Image:
        """Permute and flip axes (no interpolation) so they point as `orientation` says.

        ``reorient("RAS")`` gives the canonical (closest to RAS+) orientation.
        """
        import nibabel.orientations as nio

        codes = tuple(orientation.upper())
        if len(codes) != 3:
            raise ValueError(f"orientation needs three axis codes such as 'RAS', got {orientation!r}")
        current = nio.io_orientation(self.affine)
        target = nio.axcodes2ornt(codes)
        transform = nio.ornt_transform(current, target)
        array = self.array if self.ndim == 3 else self.array[..., None]
        shape = array.shape[1:]
        new = np.stack([nio.apply_orientation(c, transform) for c in array])
        affine = self.affine @ nio.inv_ornt_aff(transform, shape)
        if self.ndim == 2:
            if new.shape[-1] != 1:
                raise GeometryError(
                    f"reorienting this 2D image to {orientation} would move its plane; "
                    "choose an orientation that keeps the third axis last"
                )
            new = new[..., 0]
        return Image(new, affine, kind=self.kind, metadata=self.metadata)
