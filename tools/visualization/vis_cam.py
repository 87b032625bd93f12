"""Draw a class-activation map (Grad-CAM and relatives) of a prompted ViT.

mmpretrain's own ``tools/visualization/vis_cam.py`` (not in its wheel)
cannot read a prompted model: on the prompt neck's fast path the last
block's first norm runs twice per forward, and on the plain path the token
sequence holds prompt tokens. This tool uses
:class:`vapt_mm.deployment.PromptedViTCAM`, which runs the plain path while
it computes the map and drops the prefix and prompt tokens before laying
the patch tokens out on the grid. The picture it writes shows the image as
the model sees it (after the config's test pipeline) beside the map drawn
over it. docs/deploy.md has the details.

Example:
    python tools/visualization/vis_cam.py \\
        configs/demo/vapt_dinov2-s_digits.py \\
        work_dirs/demo/vapt_dinov2-s_digits/epoch_6.pth \\
        data/demo/digits/images/test/00007.png --out cam.png
"""
import argparse
import sys
from typing import List, Optional

import cv2
import numpy as np
import torch
from mmengine.config import DictAction
from mmengine.logging import MMLogger

from vapt_mm.deployment import (CAM_METHODS, PromptedViTCAM,
                                build_classifier, load_config, overlay_cam)
from vapt_mm.utils.atomic_io import atomic_write
from vapt_mm.utils.user_errors import (ConfigError, DataError,
                                       add_debug_argument, run_tool,
                                       user_message)


def set_log_level(verbose: bool) -> None:
    """mmengine's INFO logs (init_weights reports) only with ``--verbose``."""
    level = 'INFO' if verbose else 'WARNING'
    if MMLogger.check_instance_created('vapt_mm.vis_cam'):
        MMLogger.get_instance('vapt_mm.vis_cam').setLevel(level)
    else:
        MMLogger.get_instance('vapt_mm.vis_cam', log_level=level)


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    """Parse the command line.

    Example:
        >>> parse_args(['cfg.py', 'w.pth', 'img.png', '--out',
        ...             'cam.png']).method
        'gradcam'
    """
    parser = argparse.ArgumentParser(
        description='Write a class-activation map of a prompted ViT.')
    parser.add_argument('config', help='the training config')
    parser.add_argument(
        'weights', help='checkpoint (full or trainable-only)')
    parser.add_argument(
        'img', nargs='+', help='the image(s); the picture shows one pair '
        '(image, map) per image, left to right')
    parser.add_argument(
        '--out', required=True, help='the PNG file to write')
    parser.add_argument(
        '--method',
        default='gradcam',
        choices=list(CAM_METHODS),
        help='CAM method (default: %(default)s)')
    parser.add_argument(
        '--target-layer',
        help='module name to compute the map on (default: the last '
        "block's first norm, e.g. backbone.layers.11.ln1)")
    parser.add_argument(
        '--target-category',
        type=int,
        help='class to explain, for every image (default: the predicted '
        'class of each)')
    parser.add_argument(
        '--eigen-smooth',
        action='store_true',
        help='smooth with the first principal component')
    parser.add_argument(
        '--aug-smooth',
        action='store_true',
        help='average over flipped and rescaled inputs')
    parser.add_argument(
        '--display-height',
        type=int,
        default=224,
        help='height of the written picture in pixels; images are resized '
        'without smoothing (default: %(default)s)')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override settings of the config, as key=value pairs')
    parser.add_argument(
        '--verbose',
        action='store_true',
        help='show mmengine\'s INFO logs (default: warnings only)')
    add_debug_argument(parser)
    args = parser.parse_args(argv)
    if args.display_height < 1:
        parser.error('--display-height must be at least 1')
    return args


def load_image(cfg, model: torch.nn.Module, img: str):
    """Run the config's test pipeline and data preprocessor on one image.

    Returns:
        tuple: ``(normalised inputs (1, 3, H, W), the pipeline's image as
        an (H, W, 3) uint8 array in its channel order)``.
    """
    from mmcv.transforms import Compose
    from mmengine.dataset import pseudo_collate
    from mmpretrain.registry import TRANSFORMS

    loader = cfg.get('test_dataloader') or cfg.get('val_dataloader')
    if not loader:
        raise ConfigError(
            user_message(
                'the config has no test_dataloader or val_dataloader whose '
                'pipeline prepares an image',
                where=cfg.filename))
    pipeline = Compose(
        [TRANSFORMS.build(t) for t in loader['dataset']['pipeline']])
    try:
        data = pipeline(dict(img_path=img))
    except (FileNotFoundError, OSError) as error:
        raise DataError(
            user_message(
                f'the image cannot be read ({error})',
                where=img,
                fix='pass an image file')) from error
    if data is None:
        raise DataError(user_message('the pipeline dropped the image',
                                     where=img))
    picture = data['inputs'].permute(1, 2, 0).numpy().astype(np.uint8)
    batch = model.data_preprocessor(pseudo_collate([data]), False)
    return batch['inputs'], picture


def side_by_side(picture: np.ndarray, overlay: np.ndarray,
                 height: int) -> np.ndarray:
    """The image and its map next to each other, ``height`` pixels high.

    Example:
        >>> side_by_side(np.zeros((2, 2, 3), np.uint8),
        ...              np.zeros((2, 2, 3), np.uint8), 4).shape
        (4, 8, 3)
    """
    both = np.concatenate([picture, overlay], axis=1)
    width = round(both.shape[1] * height / both.shape[0])
    return cv2.resize(both, (width, height), interpolation=cv2.INTER_NEAREST)


def explain(model: torch.nn.Module, cam: PromptedViTCAM, cfg, img: str,
            args: argparse.Namespace) -> dict:
    """Predict one image and compute its map.

    Returns:
        dict: ``img``, ``predicted`` (class index), ``score`` (its softmax
        probability), ``category`` (the class explained), ``map`` (the
        (H, W) map in [0, 1]) and ``picture`` (image and map side by side).
    """
    inputs, picture = load_image(cfg, model, img)
    with torch.no_grad():
        scores = model(inputs, mode='tensor').softmax(dim=-1)[0]
    predicted = int(scores.argmax())
    category = (predicted
                if args.target_category is None else args.target_category)
    if not 0 <= category < scores.numel():
        raise ConfigError(
            user_message(
                f'class {category} does not exist; the model has '
                f'{scores.numel()} classes',
                where='--target-category'))
    cam_map = cam(
        inputs, [category],
        eigen_smooth=args.eigen_smooth,
        aug_smooth=args.aug_smooth)[0]
    return dict(
        img=img,
        predicted=predicted,
        score=float(scores[predicted]),
        category=category,
        map=cam_map,
        picture=side_by_side(picture, overlay_cam(picture, cam_map),
                             args.display_height))


def main(argv: Optional[List[str]] = None) -> List[dict]:
    """Compute the maps, write the picture and print the predictions.

    Returns:
        list[dict]: One :func:`explain` result per image.

    Example:
        >>> main(['cfg.py', 'epoch_6.pth', 'digit.png', '--out', 'cam.png'])
        ... # doctest: +SKIP
    """
    args = parse_args(argv)
    set_log_level(args.verbose)
    cfg = load_config(args.config, args.cfg_options)
    model = build_classifier(cfg, args.weights)
    cam = PromptedViTCAM(model, args.method, args.target_layer)
    results = [explain(model, cam, cfg, img, args) for img in args.img]
    picture = np.concatenate([r['picture'] for r in results], axis=1)
    ok, png = cv2.imencode('.png', picture)
    if not ok:
        raise RuntimeError('OpenCV could not encode the picture as PNG')
    with atomic_write(args.out, 'wb') as file:
        file.write(png.tobytes())
    for r in results:
        print(f'{r["img"]}: predicted class {r["predicted"]} '
              f'(p={r["score"]:.3f}); {args.method} map of class '
              f'{r["category"]}')
    print(f'maps on {cam.target_layer_name} ({cam.grid[0]}x{cam.grid[1]} '
          f'patch grid) written to {args.out}')
    return results


if __name__ == '__main__':
    sys.exit(run_tool(main, 'vis_cam.py'))
