"""Augmentation moves image, mask and boxes together, reproducibly, in 2D and 3D."""

import itertools
import json
import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import torch.nn.functional as F

from medsight.data.augment import (
    Batch,
    Contrast,
    Elastic,
    Flip,
    Gamma,
    GaussianBlur,
    GaussianNoise,
    Pipeline,
    Rotate,
    Scale,
    ScaleIntensity,
    ShiftIntensity,
    Translate,
    default_augmentation,
)
from medsight.data.augment._resample import _sampling_matrix, sampling_grid
from medsight.errors import GeometryError

SHAPES = {2: (64, 80), 3: (40, 48, 44)}  # no two sides alike: axis mix-ups show


def phantom(shape, objects, *, kind="ellipsoid"):
    """One image channel per label (1 inside) and the label mask, as (1, L, ...) and (1, 1, ...).

    `objects` are ``(label, lo, hi)`` boxes; the object is the ellipsoid inscribed in
    the box, or the box itself. Voxel v is inside when its centre v + 0.5 is.
    """
    centres = np.meshgrid(*[np.arange(n) + 0.5 for n in shape], indexing="ij")
    mask = np.zeros(shape, np.int64)
    for label, lo, hi in objects:
        mid, half = (np.add(lo, hi) / 2), (np.subtract(hi, lo) / 2)
        if kind == "ellipsoid":
            inside = sum(((c - m) / r) ** 2 for c, m, r in zip(centres, mid, half)) <= 1
        else:
            inside = np.logical_and.reduce([(c > a) & (c < b) for c, a, b in zip(centres, lo, hi)])
        mask[inside] = label
    labels = sorted({label for label, _, _ in objects})
    image = np.stack([(mask == label).astype(np.float64) for label in labels])
    return torch.from_numpy(image)[None], torch.from_numpy(mask)[None, None]


def objects_for(ndim):
    if ndim == 2:
        return [(1, (14, 20), (30, 38)), (2, (34, 40), (50, 62)), (3, (20, 46), (30, 60))]
    return [(1, (7, 8, 8), (21, 22, 22)), (2, (20, 22, 22), (34, 38, 36)), (3, (8, 28, 6), (20, 42, 18))]


def dice(a, b):
    return 2 * (a & b).sum().item() / max(a.sum().item() + b.sum().item(), 1)


def box_of(mask):
    """[lo, hi) bounds of a boolean (spatial) mask."""
    where = mask.nonzero()
    return torch.cat([where.amin(0), where.amax(0) + 1]).double()


def iou(a, b):
    ndim = len(a) // 2
    inter = (torch.minimum(a[ndim:], b[ndim:]) - torch.maximum(a[:ndim], b[:ndim])).clamp(min=0).prod()
    volume = lambda box: (box[ndim:] - box[:ndim]).prod()  # noqa: E731
    return (inter / (volume(a) + volume(b) - inter)).item()


def spatial_pipeline(elastic=False):
    steps = [Flip(), Rotate(30), Scale((0.8, 1.25), isotropic=False), Translate(4)]
    if elastic:
        steps.append(Elastic(2.0, control_points=4))
    return Pipeline(steps, padding="zeros")


# -- masks and boxes follow the image ---------------------------------------------


@pytest.mark.parametrize("ndim", [2, 3])
@pytest.mark.parametrize("elastic", [False, True])
def test_mask_stays_aligned_with_the_image(ndim, elastic):
    objects = objects_for(ndim)
    image, mask = phantom(SHAPES[ndim], objects)
    batch = Batch(image.repeat(3, 1, *[1] * ndim), mask=mask.repeat(3, 1, *[1] * ndim))
    out, record = spatial_pipeline(elastic)(batch, generator=7)
    assert len({json.dumps(r) for r in record}) == 3  # every item moved its own way
    assert set(out.mask.unique().tolist()) <= {0, 1, 2, 3}
    for b in range(3):
        for channel, (label, _, _) in enumerate(objects):
            from_image = out.image[b, channel] > 0.5
            from_mask = out.mask[b, 0] == label
            assert from_mask.sum() > 0.5 * (mask == label).sum()  # the object is still in view
            assert dice(from_image, from_mask) > 0.95, (b, label)
    assert not torch.equal(out.mask[0], out.mask[1])


@pytest.mark.parametrize("ndim", [2, 3])
def test_boxes_follow_their_objects_under_rotation_and_scaling(ndim):
    objects = objects_for(ndim)
    image, mask = phantom(SHAPES[ndim], objects, kind="box")
    boxes = torch.tensor([list(lo) + list(hi) for _, lo, hi in objects], dtype=torch.float64)
    batch = Batch(image.repeat(2, 1, *[1] * ndim), mask=mask.repeat(2, 1, *[1] * ndim), boxes=[boxes, boxes])
    pipeline = Pipeline([Rotate(25), Scale((0.85, 1.2))], padding="zeros")
    params = pipeline.sample(2, SHAPES[ndim], torch.Generator().manual_seed(3))
    out = pipeline.apply(batch, params)
    for b in range(2):
        expected = _rotated_scaled_boxes(
            boxes, params[0]["degrees"][b], params[1]["factors"][b], SHAPES[ndim]
        )
        torch.testing.assert_close(out.boxes[b], expected, rtol=0, atol=1e-9)
        for k, (label, _, _) in enumerate(objects):
            # Boxes are cuboids, so the box of the rotated corners is the box of the object.
            assert iou(out.boxes[b][k], box_of(out.mask[b, 0] == label)) > 0.8, (b, label)
    assert not torch.equal(out.boxes[0], out.boxes[1])


def _rotated_scaled_boxes(boxes, degrees, factors, shape):
    """Independent numpy version of the documented convention: rotate planes, then scale."""
    ndim = len(shape)
    planes = [(0, 1)] if ndim == 2 else [(1, 2), (0, 2), (0, 1)]
    forward = np.eye(ndim)
    for angle, (p, q) in zip(np.deg2rad(degrees.numpy()), planes):
        rotation = np.eye(ndim)
        rotation[[p, p, q, q], [p, q, p, q]] = [np.cos(angle), -np.sin(angle), np.sin(angle), np.cos(angle)]
        forward = rotation @ forward
    forward = np.diag(factors.numpy()) @ forward
    centre = np.array(shape) / 2
    out = []
    for box in boxes.numpy():
        corners = np.array(list(itertools.product(*zip(box[:ndim], box[ndim:]))))
        moved = (corners - centre) @ forward.T + centre
        out.append(np.concatenate([np.clip(moved.min(0), 0, shape), np.clip(moved.max(0), 0, shape)]))
    return torch.tensor(np.array(out))


@pytest.mark.parametrize("ndim", [2, 3])
def test_boxes_follow_an_elastic_warp(ndim):
    shape = SHAPES[ndim]
    starts = [(10, 12, 10), (26, 30, 24), (12, 30, 28)]
    objects = [(k + 1, s[:ndim], tuple(a + 6 for a in s[:ndim])) for k, s in enumerate(starts)]
    image, mask = phantom(shape, objects, kind="box")
    boxes = torch.tensor([list(lo) + list(hi) for _, lo, hi in objects], dtype=torch.float64)
    pipeline = Pipeline([Elastic(3.0, control_points=4)], padding="zeros")
    params = pipeline.sample(1, shape, torch.Generator().manual_seed(8))
    out = pipeline.apply(Batch(image, mask=mask, boxes=[boxes]), params)
    for k, (label, _, _) in enumerate(objects):
        box, moved = out.boxes[0][k], (out.mask[0, 0] == label).nonzero().double() + 0.5
        centre = (box[:ndim] + box[ndim:]) / 2
        assert (centre - moved.mean(0)).abs().max() < 1.0, label  # displacements are ~3 voxels
        assert iou(box, box_of(out.mask[0, 0] == label)) > 0.6


@pytest.mark.parametrize("ndim", [2, 3])
def test_flips_are_exact_for_image_mask_and_boxes(ndim):
    image, mask = phantom(SHAPES[ndim], objects_for(ndim))
    boxes = torch.tensor([[1.0, 2.0, 3.0][:ndim] + [9.0, 10.0, 11.0][:ndim]])
    shape = torch.tensor(SHAPES[ndim], dtype=torch.float64)
    for axes in itertools.chain.from_iterable(
        itertools.combinations(range(ndim), k) for k in range(1, ndim + 1)
    ):
        flip = Flip(axes, axis_probability=1.0)
        params = flip.sample(1, SHAPES[ndim], torch.Generator().manual_seed(0))
        out = flip.apply(Batch(image, mask=mask, boxes=[boxes]), params)
        dims = [2 + a for a in axes]
        assert torch.equal(out.image, torch.flip(image, dims))
        assert torch.equal(out.mask, torch.flip(mask, dims))
        expected = boxes.clone()
        for a in axes:
            expected[0, a], expected[0, ndim + a] = shape[a] - boxes[0, ndim + a], shape[a] - boxes[0, a]
        assert torch.equal(out.boxes[0], expected)


@pytest.mark.parametrize("ndim", [2, 3])
def test_scaling_and_translation_move_boxes_exactly(ndim):
    shape = SHAPES[ndim]
    boxes = torch.tensor([[10.0] * ndim + [20.0] * ndim], dtype=torch.float64)
    image = torch.zeros(1, 1, *shape)
    factors = torch.tensor([[1.25, 0.8, 1.1][:ndim]], dtype=torch.float64)
    shift = torch.tensor([[3.0, -2.0, 1.5][:ndim]], dtype=torch.float64)
    pipeline = Pipeline([Scale(), Translate()])
    params = [
        {"applied": torch.tensor([True]), "factors": factors},
        {"applied": torch.tensor([True]), "shift": shift},
    ]
    out = pipeline.apply(Batch(image, boxes=[boxes]), params)
    centre = torch.tensor(shape, dtype=torch.float64) / 2
    lo, hi = (
        (boxes[:, :ndim] - centre) * factors + centre + shift,
        (boxes[:, ndim:] - centre) * factors + centre + shift,
    )
    torch.testing.assert_close(out.boxes[0], torch.cat([lo, hi], 1), rtol=0, atol=1e-12)


def test_boxes_that_leave_the_image_are_dropped_with_their_labels():
    image = torch.zeros(2, 1, 40, 50)
    boxes = torch.tensor([[2.0, 2.0, 6.0, 8.0], [20.0, 20.0, 30.0, 30.0]])
    batch = Batch(image, boxes=[boxes, boxes], labels=[torch.tensor([4, 7]), torch.tensor([4, 7])])
    shift = torch.tensor([[-10.0, 0.0], [0.0, 0.0]], dtype=torch.float64)  # item 0 pushes box 0 out
    pipeline = Pipeline([Translate(), ShiftIntensity(), Translate()])
    params = [
        {"applied": torch.tensor([True, False]), "shift": shift},
        {"applied": torch.tensor([True, True]), "offset": torch.zeros(2, dtype=torch.float64)},
        {
            "applied": torch.tensor([True, True]),
            "shift": torch.tensor([[0.0, 30.0], [0.0, 0.0]], dtype=torch.float64),
        },
    ]
    out = pipeline.apply(batch, params)
    # The first run drops box 0 of item 0, the second run box 1.
    assert out.labels[0].tolist() == [] and out.keep[0].tolist() == [False, False]
    assert out.boxes[0].shape == (0, 4)
    assert out.labels[1].tolist() == [4, 7] and out.keep[1].tolist() == [True, True]
    torch.testing.assert_close(out.boxes[1], boxes, rtol=0, atol=1e-12)
    one_run = Pipeline([Translate()]).apply(batch, params[:1])
    assert one_run.keep[0].tolist() == [False, True] and one_run.labels[0].tolist() == [7]
    torch.testing.assert_close(one_run.boxes[0], torch.tensor([[10.0, 20.0, 20.0, 30.0]]), rtol=0, atol=1e-6)


# -- reproducibility and records ---------------------------------------------------


def full_pipeline(ndim):
    """Every transform, each always drawn."""
    steps = [Flip(), Rotate(20), Scale(), Translate(3), Elastic(1.5, control_points=4), GaussianNoise(0.1),
             GaussianBlur(), ScaleIntensity(), ShiftIntensity(), Contrast(), Gamma()]  # fmt: skip
    return Pipeline(steps)


def without_noise(params):
    return [{**p, "std": torch.zeros_like(p["std"])} if "std" in p else p for p in params]


@pytest.mark.parametrize("ndim", [2, 3])
def test_a_seed_reproduces_and_a_record_replays_exactly(ndim):
    image, mask = phantom(SHAPES[ndim], objects_for(ndim))
    image = image.float().repeat(2, 1, *[1] * ndim)
    mask = mask.repeat(2, 1, *[1] * ndim)
    boxes = [torch.tensor([list(lo) + list(hi) for _, lo, hi in objects_for(ndim)], dtype=torch.float32)] * 2
    batch = Batch(image, mask=mask, boxes=boxes)
    pipeline = full_pipeline(ndim)
    out, record = pipeline(batch, generator=torch.Generator().manual_seed(11))
    same, same_record = pipeline(batch, generator=11)
    other, other_record = pipeline(batch, generator=12)
    assert torch.equal(out.image, same.image) and torch.equal(out.mask, same.mask) and record == same_record
    assert all(torch.equal(a, b) for a, b in zip(out.boxes, same.boxes))
    assert not torch.equal(out.image, other.image) and record != other_record
    assert [e["transform"] for e in record[0]] == [t.name for t, _ in pipeline.steps]
    replayed = pipeline.replay(batch, json.loads(json.dumps(record)))
    assert torch.equal(out.image, replayed.image) and torch.equal(out.mask, replayed.mask)
    assert all(torch.equal(a, b) for a, b in zip(out.boxes, replayed.boxes))
    assert torch.equal(batch.image, image)  # the input was not modified


def test_steps_not_drawn_leave_items_unchanged_and_are_not_recorded():
    image = torch.rand(6, 2, 20, 24, dtype=torch.float64)
    batch = Batch(image, mask=(image[:, :1] > 0.5).long())
    pipeline = Pipeline([(Rotate(30), 0.5), (Gamma(), 0.5), (GaussianNoise(0.2), 0.5)])
    out, record = pipeline(batch, generator=5)
    drawn = [{e["transform"] for e in item} for item in record]
    assert set().union(*drawn) == {"Rotate", "Gamma", "GaussianNoise"} and set() in drawn  # a mix
    for b, names in enumerate(drawn):
        assert torch.equal(out.image[b], image[b]) == (not names)
        assert torch.equal(out.mask[b], batch.mask[b]) == ("Rotate" not in names)
    assert torch.equal(pipeline.replay(batch, record).image, out.image)
    nothing, empty = Pipeline([(Rotate(30), 0.0), (Gamma(), 0.0)])(batch, generator=5)
    assert empty == [[]] * 6 and nothing.image is image


@pytest.mark.parametrize("ndim", [2, 3])
def test_identity_parameters_give_identical_output(ndim):
    image = torch.rand(2, 1, *SHAPES[ndim])
    mask = (image > 0.7).to(torch.uint8)
    boxes = [torch.tensor([[1.0] * ndim + [5.0] * ndim])] * 2
    batch = Batch(image, mask=mask, boxes=boxes)
    one = torch.ones(2, dtype=torch.float64)
    params = {
        Flip(): {"flip": torch.zeros(2, ndim, dtype=torch.bool)},
        Rotate(): {"degrees": torch.zeros(2, 1 if ndim == 2 else 3, dtype=torch.float64)},
        Scale(): {"factors": torch.ones(2, ndim, dtype=torch.float64)},
        Translate(): {"shift": torch.zeros(2, ndim, dtype=torch.float64)},
        Elastic(): {"displacement": torch.zeros(2, ndim, *[3] * ndim, dtype=torch.float64)},
        ScaleIntensity(): {"factor": one},
        ShiftIntensity(): {"offset": 0 * one},
        Contrast(): {"factor": one},
        GaussianNoise(): {"std": 0 * one, "seed": torch.tensor([1, 2])},
        GaussianBlur(): {"sigma": 0 * one},
    }
    for transform, values in params.items():
        out = transform.apply(batch, values)
        assert torch.equal(out.image, image) and torch.equal(out.mask, mask), transform.name
        assert all(torch.equal(a, b) for a, b in zip(out.boxes, boxes)), transform.name
    # Gamma 1 goes through (x - lo) / span and back: equal up to rounding only.
    torch.testing.assert_close(Gamma().apply(batch, {"gamma": one}).image, image)


def test_batched_items_equal_items_augmented_alone():
    image, mask = phantom(SHAPES[3], objects_for(3))
    image = torch.cat([image, image.flip(2), image.flip(3)]).float()
    mask = torch.cat([mask, mask.flip(2), mask.flip(3)])
    pipeline = full_pipeline(3)
    params = pipeline.sample(3, SHAPES[3], torch.Generator().manual_seed(2))
    out = pipeline.apply(Batch(image, mask=mask), params)
    for b in range(3):
        alone = pipeline.apply(
            Batch(image[b : b + 1], mask=mask[b : b + 1]),
            [{k: v[b : b + 1] for k, v in p.items()} for p in params],
        )
        torch.testing.assert_close(out.image[b : b + 1], alone.image, rtol=1e-5, atol=1e-5)
        assert (out.mask[b : b + 1] != alone.mask).float().mean() < 1e-3  # nearest ties may round apart
    assert not torch.equal(out.image[0], out.image[1])


@pytest.mark.parametrize("ndim", [2, 3])
def test_float32_and_float64_agree_and_keep_their_dtype(ndim):
    image, mask = phantom(SHAPES[ndim], objects_for(ndim))
    pipeline = full_pipeline(ndim)
    params = pipeline.sample(1, SHAPES[ndim], torch.Generator().manual_seed(4))
    double = pipeline.apply(Batch(image, mask=mask), params)
    single = pipeline.apply(Batch(image.float(), mask=mask), params)
    assert double.image.dtype == torch.float64 and single.image.dtype == torch.float32
    assert double.mask.dtype == mask.dtype == single.mask.dtype
    # Noise fields differ between dtypes; the rest agrees to float32 precision.
    no_noise = without_noise(params)
    double = pipeline.apply(Batch(image, mask=mask), no_noise)
    single = pipeline.apply(Batch(image.float(), mask=mask), no_noise)
    torch.testing.assert_close(single.image.double(), double.image, rtol=1e-4, atol=1e-4)


# -- the pieces -------------------------------------------------------------------


@pytest.mark.parametrize("ndim", [2, 3])
def test_sampling_grid_equals_affine_grid(ndim):
    shape = SHAPES[ndim]
    matrix = Pipeline([Rotate(40), Scale(), Translate(5)]).sample(3, shape, torch.Generator().manual_seed(1))
    forward = torch.stack([torch.eye(ndim + 1, dtype=torch.float64)] * 3)
    for transform, params in zip([Rotate(40), Scale(), Translate(5)], matrix):
        forward = transform.matrix(params, shape) @ forward
    theta = _sampling_matrix(forward, shape)
    reversed_axes = theta[:, :ndim, :ndim].flip(1).flip(2)
    affine = torch.cat([reversed_axes, theta[:, :ndim, ndim:].flip(1)], dim=2)
    expected = F.affine_grid(affine, [3, 1, *shape], align_corners=False)
    ours = sampling_grid(theta, shape, None, dtype=torch.float64, device=torch.device("cpu"))
    torch.testing.assert_close(ours, expected, rtol=0, atol=1e-12)


def test_a_run_of_spatial_transforms_is_resampled_once_and_keeps_its_place():
    image = torch.rand(1, 1, 30, 34, dtype=torch.float64)
    degrees = torch.tensor([[23.0]], dtype=torch.float64)
    there_and_back = Pipeline([Rotate(), Rotate()]).apply(
        Batch(image), [{"applied": torch.tensor([True]), "degrees": d} for d in (degrees, -degrees)]
    )
    assert torch.equal(there_and_back.image, image)  # one identity map, no interpolation at all
    twice = Rotate().apply(Rotate().apply(Batch(image), {"degrees": degrees}), {"degrees": -degrees})
    assert not torch.allclose(twice.image, image, atol=1e-3)
    # Spatial, then intensity: the padding is shifted too. The other way round it is not.
    shift = {"applied": torch.tensor([True]), "shift": torch.tensor([[10.0, 0.0]], dtype=torch.float64)}
    offset = {"applied": torch.tensor([True]), "offset": torch.tensor([5.0], dtype=torch.float64)}
    first = Pipeline([Translate(), ShiftIntensity()], padding="zeros").apply(Batch(image), [shift, offset])
    last = Pipeline([ShiftIntensity(), Translate()], padding="zeros").apply(Batch(image), [offset, shift])
    torch.testing.assert_close(first.image[0, 0, :10], torch.full((10, 34), 5.0, dtype=torch.float64))
    torch.testing.assert_close(last.image[0, 0, :10], torch.zeros(10, 34, dtype=torch.float64))
    torch.testing.assert_close(first.image[0, 0, 10:], image[0, 0, :-10] + 5)


def test_padding_fills_what_comes_from_outside():
    image = torch.full((2, 2, 20, 20), -1000.0)
    image[:, 1] = 3.0
    image[:, :, 10:] += 50  # the border rows are at the minimum, the far rows are not
    shift = torch.tensor([[5.0, 0.0], [0.0, 0.0]], dtype=torch.float64)
    fills = {
        "minimum": ([-1000.0, 3.0], [-1000.0, 3.0]),
        "zeros": ([0.0, 0.0], [0.0, 0.0]),
        "border": ([-1000.0, 3.0], [-950.0, 53.0]),
    }
    for padding, (near, far) in fills.items():
        pipeline = Pipeline([Translate()], padding=padding)
        down = pipeline.apply(Batch(image), [{"applied": torch.tensor([True, False]), "shift": shift}])
        up = pipeline.apply(Batch(image), [{"applied": torch.tensor([True, False]), "shift": -shift}])
        for channel in range(2):
            expected = torch.full((5, 20), near[channel])
            torch.testing.assert_close(down.image[0, channel, :5], expected, rtol=0, atol=1e-2, msg=padding)
            expected = torch.full((5, 20), far[channel])
            torch.testing.assert_close(up.image[0, channel, 15:], expected, rtol=0, atol=1e-2, msg=padding)
        assert torch.equal(down.image[1], image[1])  # not drawn for item 1


def test_intensity_transforms_do_what_they_say():
    image = torch.linspace(-1, 3, 2 * 16 * 16, dtype=torch.float64).view(2, 1, 16, 16)
    batch = Batch(image)
    two = lambda a, b: torch.tensor([a, b], dtype=torch.float64)  # noqa: E731
    out = ScaleIntensity().apply(batch, {"factor": two(2, 0.5)}).image
    torch.testing.assert_close(out, image * two(2, 0.5).view(2, 1, 1, 1))
    out = Contrast().apply(batch, {"factor": two(2, 1)}).image
    mean = image.mean(dim=(2, 3), keepdim=True)
    torch.testing.assert_close(out[0], (mean + 2 * (image - mean))[0])
    out = Gamma().apply(batch, {"gamma": two(2, 0.5)}).image
    assert torch.allclose(out.amin(dim=(2, 3)), image.amin(dim=(2, 3)))  # the range is kept
    assert torch.allclose(out.amax(dim=(2, 3)), image.amax(dim=(2, 3)))
    assert out[0].mean() < image[0].mean() and out[1].mean() > image[1].mean()
    noisy = GaussianNoise().apply(batch, {"std": two(0.5, 0), "seed": torch.tensor([3, 4])}).image
    assert abs((noisy[0] - image[0]).std().item() - 0.5) < 0.1 and torch.equal(noisy[1], image[1])
    delta = torch.zeros(2, 1, 15, 15, 15)
    delta[:, :, 7, 7, 7] = 1
    blurred = GaussianBlur().apply(Batch(delta), {"sigma": two(1.0, 2.0)}).image
    torch.testing.assert_close(blurred.sum(dim=(2, 3, 4)), torch.ones(2, 1))  # the mass stays
    profile = blurred[0, 0, :, 7, 7].double()
    expected = torch.exp(-0.5 * (torch.arange(15.0) - 7).double() ** 2)
    torch.testing.assert_close(profile / profile.max(), expected / expected.max(), atol=1e-3, rtol=0)
    assert blurred[1].max() < blurred[0].max()
    channels = torch.stack([delta[:, 0], 2 * delta[:, 0]], dim=1)  # items and channels do not mix
    per_channel = GaussianBlur().apply(Batch(channels), {"sigma": two(1.0, 2.0)}).image
    torch.testing.assert_close(per_channel, torch.cat([blurred, 2 * blurred], dim=1))
    # 2D (convolution) and 3D (banded products) agree on a one-slice volume, edges included.
    flat = torch.rand(2, 3, 12, 17, dtype=torch.float64)
    blur_2d = GaussianBlur().apply(Batch(flat), {"sigma": two(0.7, 1.8)}).image
    blur_3d = GaussianBlur().apply(Batch(flat[:, :, None]), {"sigma": two(0.7, 1.8)}).image
    torch.testing.assert_close(blur_2d, blur_3d[:, :, 0])
    assert not torch.allclose(blur_2d, flat, atol=1e-2)


@pytest.mark.parametrize("ndim", [2, 3])
def test_default_augmentation_runs_in_2d_and_3d(ndim):
    image, mask = phantom(SHAPES[ndim], objects_for(ndim))
    batch = Batch(image.float().repeat(4, 1, *[1] * ndim), mask=mask.repeat(4, 1, *[1] * ndim))
    for strength in ("light", "medium", "strong"):
        out, record = default_augmentation(ndim, strength=strength, elastic=True)(batch, generator=1)
        assert out.image.shape == batch.image.shape and out.image.dtype == torch.float32
        assert set(out.mask.unique().tolist()) <= {0, 1, 2, 3} and len(record) == 4
        assert torch.isfinite(out.image).all()
    with pytest.raises(ValueError, match="strength"):
        default_augmentation(ndim, strength="extreme")
    with pytest.raises(ValueError, match="flip_axes"):
        default_augmentation(ndim, flip_axes=(ndim,))


def test_bad_input_gets_clear_errors():
    image = torch.zeros(2, 1, 8, 8)
    with pytest.raises(GeometryError, match="image must be a tensor"):
        Batch(torch.zeros(8, 8))
    with pytest.raises(TypeError, match="floating point"):
        Batch(torch.zeros(2, 1, 8, 8, dtype=torch.int16))
    with pytest.raises(TypeError, match="integer labels"):
        Batch(image, mask=torch.zeros(2, 1, 8, 8))
    with pytest.raises(GeometryError, match="does not match"):
        Batch(image, mask=torch.zeros(2, 1, 8, 7, dtype=torch.long))
    with pytest.raises(GeometryError, match=r"\(N, 4\)"):
        Batch(image, boxes=[torch.zeros(1, 6), torch.zeros(0, 4)])
    with pytest.raises(GeometryError, match="upper corner"):
        Batch(image, boxes=[torch.tensor([[4.0, 4.0, 2.0, 6.0]]), torch.zeros(0, 4)])
    with pytest.raises(ValueError, match="probability"):
        Pipeline([(Rotate(), 1.5)])
    with pytest.raises(ValueError, match="CPU torch.Generator"):
        Pipeline([Rotate()])(Batch(image), generator="seed")
    with pytest.raises(ValueError, match="three degree ranges"):
        Pipeline([Rotate((0, 0, 10))])(Batch(image), generator=0)
    _, record = Pipeline([Rotate()])(Batch(image), generator=0)
    with pytest.raises(ValueError, match="this pipeline has Scale"):
        Pipeline([Scale()]).replay(Batch(image), record)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_gives_the_cpu_result():
    image, mask = phantom(SHAPES[3], objects_for(3))
    boxes = [torch.tensor([list(lo) + list(hi) for _, lo, hi in objects_for(3)], dtype=torch.float32)]
    batch = Batch(image.float(), mask=mask, boxes=boxes)
    gpu = Batch(image.float().cuda(), mask=mask.cuda(), boxes=[b.cuda() for b in boxes])
    pipeline = full_pipeline(3)
    params = pipeline.sample(1, SHAPES[3], torch.Generator().manual_seed(0))
    params = without_noise(params)  # noise fields differ between devices
    cpu_out, gpu_out = pipeline.apply(batch, params), pipeline.apply(gpu, params)
    assert gpu_out.image.is_cuda and gpu_out.mask.is_cuda and gpu_out.boxes[0].is_cuda
    torch.testing.assert_close(gpu_out.image.cpu(), cpu_out.image, rtol=1e-4, atol=1e-4)
    assert (gpu_out.mask.cpu() != cpu_out.mask).float().mean() < 1e-3
    torch.testing.assert_close(gpu_out.boxes[0].cpu(), cpu_out.boxes[0])
    assert math.isfinite(gpu_out.image.sum().item())


@pytest.mark.parametrize("ndim", [2, 3])
def test_grid_sample_in_slabs_equals_one_call(ndim):
    from medsight.data.augment._resample import grid_sample

    shape = SHAPES[ndim]
    source = torch.rand(2, 3, *shape)
    grid = torch.rand(2, *shape, ndim) * 2.2 - 1.1
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(4)  # two items, two slabs each
        for mode in ("bilinear", "nearest"):
            expected = F.grid_sample(source, grid, mode=mode, align_corners=False)
            assert torch.equal(grid_sample(source, grid, mode=mode, padding="zeros"), expected)
            one = F.grid_sample(source[:1], grid[:1], mode=mode, align_corners=False)
            assert torch.equal(grid_sample(source[:1], grid[:1], mode=mode, padding="zeros"), one)
    finally:
        torch.set_num_threads(threads)
