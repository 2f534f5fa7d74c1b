"""MONAI's RetinaNetDetector set up from the plan; boxes as tensors; the training loss.

The network (the only part with weights) is what the training loop, checkpoints and
bundles hold. `make_detector` wraps it in MONAI's ``RetinaNetDetector``: anchors of the
planned shapes (``AnchorGeneratorWithAnchorShape``), ATSS matching, hard-negative sampling,
and box selection (score threshold, top-k, NMS) at inference.

The loop moves ``(inputs, targets)`` tensors, so the boxes of a batch travel as one padded
tensor ``(B, N_max, 2 * ndim + 1)``: corners, then the class index; rows with class -1 are
padding (`encode_targets` / `decode_targets`).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence

import numpy as np

from medsight.errors import UnsupportedError

__all__ = [
    "decode_targets",
    "detect",
    "detect_views",
    "detection_loss",
    "encode_targets",
    "fuse_views",
    "inference_precision",
    "make_detector",
]


# Mirrored views' boxes that AP50 would call one finding are fused into one. At the plan's NMS
# overlap (0.3) instead, false positives beside a finding joined its cluster and diluted it:
# val AP50 of the four fused views, Kvasir 0.839 at 0.3, 0.858 at 0.5, 0.855 at 0.55 (WBF's
# default); chest phantom 0.621 at 0.3, 0.661 at 0.5. Unmirrored: 0.848 and 0.669.
FUSION_IOU = 0.5


@functools.cache
def _detector_class():
    import torch
    from monai.apps.detection.networks.retinanet_detector import RetinaNetDetector

    class Detector(RetinaNetDetector):
        """MONAI's detector; anchor matching is MONAI's ATSS path without the check for
        torchvision's Matcher, which imports torchvision (not a MedSight dependency)."""

        def compute_anchor_matched_idxs(self, anchors, targets, num_anchor_locs_per_level):
            matched = []
            for anchors_per_image, target in zip(anchors, targets):
                boxes = target[self.target_box_key]
                if boxes.numel() == 0:  # a true negative: every anchor is background
                    n = anchors_per_image.size(0)
                    matched.append(torch.full((n,), -1, dtype=torch.int64, device=anchors_per_image.device))
                    continue
                _, idxs = self.proposal_matcher(
                    boxes.to(anchors_per_image.device),
                    anchors_per_image,
                    num_anchor_locs_per_level,
                    self.num_anchors_per_loc,
                )
                matched.append(idxs)
            return matched

    return Detector


def make_detector(network, plan: dict):
    """A ``RetinaNetDetector`` around `network` with the plan's anchors, matcher, sampler and selector."""
    from monai.apps.detection.utils.anchor_utils import AnchorGeneratorWithAnchorShape

    anchors = plan["anchors"]
    generator = AnchorGeneratorWithAnchorShape(
        feature_map_scales=anchors["feature_map_scales"],
        base_anchor_shapes=[tuple(float(v) for v in shape) for shape in anchors["base_shapes"]],
    )
    detector = _detector_class()(network=network, anchor_generator=generator)
    matcher = plan["matcher"]
    detector.set_atss_matcher(num_candidates=matcher["num_candidates"], center_in_gt=matcher["center_in_gt"])
    sampler = plan["sampler"]
    detector.set_hard_negative_sampler(
        batch_size_per_image=sampler["batch_size_per_image"],
        positive_fraction=sampler["positive_fraction"],
        min_neg=sampler["min_neg"],
        pool_size=sampler["pool_size"],
    )
    box_loss = plan["loss"].get("box", "smooth_l1")  # plans written before the choice kept MONAI's
    if box_loss == "giou":  # the overlap itself, on decoded boxes, as nnDetection trains
        from monai.losses.giou_loss import BoxGIoULoss

        detector.set_box_regression_loss(BoxGIoULoss(reduction="mean"), encode_gt=False, decode_pred=True)
    elif box_loss != "smooth_l1":
        raise UnsupportedError(f"box loss {box_loss!r} is not offered", hint="Use smooth_l1 or giou")
    selector = plan["box_selector"]
    detector.set_box_selector_parameters(
        score_thresh=selector["score_thresh"],
        topk_candidates_per_level=selector["topk_candidates_per_level"],
        nms_thresh=selector["nms_thresh"],
        detections_per_img=selector["detections_per_img"],
    )
    return detector


def encode_targets(
    boxes: Sequence[np.ndarray], labels: Sequence[Sequence[int]], *, ndim: int, rows: int | None = None
):
    """Per-image boxes ``(N_i, 2 * ndim)`` and class indices -> one float tensor
    ``(B, N_max, 2 * ndim + 1)``; `rows` sets ``N_max`` (at least the most boxes of an image)."""
    import torch

    width = 2 * ndim
    rows = max([len(b) for b in boxes] + [1, rows or 1])
    out = torch.zeros((len(boxes), rows, width + 1), dtype=torch.float32)
    out[..., width] = -1
    for i, (b, lab) in enumerate(zip(boxes, labels)):
        if len(b):
            out[i, : len(b), :width] = torch.as_tensor(np.asarray(b, np.float32).reshape(-1, width))
            out[i, : len(b), width] = torch.as_tensor(np.asarray(lab, np.float32))
    return out


def decode_targets(targets) -> list[dict]:
    """The padded tensor of `encode_targets` -> per image ``{"boxes": (N, 2d), "labels": (N,) int64}``."""
    import torch

    out = []
    for item in targets:
        real = item[:, -1] >= 0
        out.append({"boxes": item[real, :-1].float(), "labels": item[real, -1].to(torch.int64)})
    return out


def detection_loss(detector, input_size: Sequence[int], *, cls_weight: float = 1.0) -> Callable:
    """``loss_fn(head_outputs, targets) -> scalar``: RetinaNet's classification (on the hard-negative
    sample) plus box-regression loss, for the training loop, which calls ``loss_fn(model(x), y)``.

    The anchors depend on the input's size only, which is the plan's fixed size in training, so
    the image tensor itself is not needed (a shape-only stand-in is passed to the generator).
    """
    import torch

    size = tuple(int(s) for s in input_size)

    def loss_fn(head_outputs, targets):
        stand_in = torch.empty((len(targets), 1, *size), device="meta")
        head, locations = _flat_heads(detector, head_outputs, stand_in)
        losses = detector.compute_loss(head, decode_targets(targets), detector.anchors, locations)
        return cls_weight * losses[detector.cls_key] + losses[detector.box_reg_key].to(
            losses[detector.cls_key].device
        )

    return loss_fn


def inference_precision(plan: dict, device) -> str:
    """The plan's arithmetic for prediction (``inference.precision``); plans without it keep
    float32, the arithmetic they were validated in."""
    from medsight.models.precision import resolve_precision

    return resolve_precision(plan.get("inference", {}).get("precision", "float32"), device)


def detect(detector, inputs, precision: str = "float32", mirror_axes: Sequence[int] = ()) -> list[dict]:
    """Detections of a batch ``(B, C, *size)`` as numpy: per image ``boxes``, ``scores``, ``labels`` (int).

    MONAI's eval path with the network alone under `precision` (resolved, `models.precision`):
    the head maps are float32 before decoding, since MONAI decodes boxes in the maps' type
    (bfloat16 would round a corner near 256 px to 2 px). With `mirror_axes` (spatial, 0-based)
    the batch is also detected mirrored along each combination of them, each view's boxes
    flipped back, and the views fused per image (`fusion.fuse_boxes`), as nnDetection does.
    """
    return fuse_views(detector, detect_views(detector, inputs, precision, mirror_axes))


def detect_views(detector, inputs, precision: str, mirror_axes: Sequence[int]) -> list[list[dict]]:
    """`detect` before fusion: per flip combination of `mirror_axes` (the unflipped view first),
    the detections of each image with their boxes flipped back to `inputs`."""
    from medsight.tasks.mirroring import mirror_flips

    size = np.asarray(inputs.shape[2:], np.float64)
    views = []
    for axes in mirror_flips(mirror_axes):
        found = _detect_view(detector, inputs.flip([2 + a for a in axes]) if axes else inputs, precision)
        for item in found:
            boxes = item["boxes"]
            for a in axes:  # voxel [lo, hi) of a flipped axis of n voxels is [n - hi, n - lo)
                boxes[:, [a, a + len(size)]] = size[a] - boxes[:, [a + len(size), a]]
        views.append(found)
    return views


def fuse_views(detector, views: list[list[dict]]) -> list[dict]:
    """Per image, the views of `detect_views` fused into one set of detections."""
    from medsight.tasks.detect.fusion import fuse_boxes

    if len(views) == 1:
        return views[0]
    limit = detector.box_selector.detections_per_img
    return [fuse_boxes(list(per_image), iou=FUSION_IOU, limit=limit) for per_image in zip(*views)]


def _detect_view(detector, inputs, precision: str) -> list[dict]:
    """`detect` of one view: MONAI's box selection (score threshold, top-k, NMS) on its head maps."""
    import torch
    from monai.apps.detection.utils.detector_utils import preprocess_images

    from medsight.models.precision import autocast

    detector.eval()
    with torch.no_grad():
        images, image_sizes = preprocess_images(inputs, detector.spatial_dims, detector.size_divisible)
        with autocast(inputs.device, precision):
            head = detector.network(images)
        head, locations = _flat_heads(detector, head, images)
        found = detector.postprocess_detections(head, detector.anchors, image_sizes, locations)
    return [
        {
            "boxes": d[detector.target_box_key].float().cpu().numpy().astype(np.float64),
            "scores": d[detector.pred_score_key].float().cpu().numpy().astype(np.float64),
            "labels": d[detector.target_label_key].cpu().numpy().astype(int),
        }
        for d in found
    ]


def _flat_heads(detector, head_outputs: dict, images) -> tuple[dict, list[int]]:
    """The network's head maps in float32 (focal loss, box regression and box decoding need its
    range), flattened as MONAI's detector does, with the anchors for `images` generated; also
    the anchor locations per level."""
    head = {key: [v.float() for v in value] for key, value in head_outputs.items()}
    detector.generate_anchors(images, head)
    locations = [x.shape[2:].numel() for x in head[detector.cls_key]]
    for key in (detector.cls_key, detector.box_reg_key):
        head[key] = detector._reshape_maps(head[key])  # MONAI's own flattening of the level maps
    return head, locations
