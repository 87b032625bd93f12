"""Classify images with a trained prompt-tuned model.

``WEIGHTS`` is any file a run produces: a full checkpoint, a trainable-only
checkpoint or a prompt file (``tools/model_converters/extract_prompts.py``);
the frozen backbone comes from the config's pretrained file and must be the
one the weights were trained on (checked by fingerprint). Images run
through mmpretrain's ``ImageClassificationInferencer`` with the config's
test pipeline, so the scores are those ``tools/test.py`` computes. Folders
are searched recursively for image files, in sorted order, with a progress
bar. Class names come from the weights file (a prompt file's header, a
checkpoint's ``meta['dataset_meta']``), else the label index is printed.

Example:
    Top-3 labels of every image of a folder, saved as JSON::

        python tools/infer.py configs/vapt/vit-b16_vtab-eurosat.py \\
            eurosat.safetensors data/my_images --topk 3 --out results.json

    ``results.json`` is a list of ``{"image": path, "topk": [{"label": 3,
    "class": "Forest", "score": 0.97}, ...]}``.
"""
import argparse
import json
import os.path as osp
import sys
from typing import List, Optional, Sequence

from mmengine.config import DictAction
from mmengine.utils import scandir

from vapt_mm.engine.preflight import load_config
from vapt_mm.models.classifiers import checkpoint_source
from vapt_mm.serving.top_k import top_k
from vapt_mm.utils.atomic_io import atomic_write
from vapt_mm.utils.user_errors import (ConfigError, DataError,
                                       MissingFileError, add_debug_argument,
                                       run_tool, user_message)

IMG_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.ppm', '.bmp', '.pgm', '.tif',
                  '.tiff', '.webp')
DOCS = 'docs/deploy.md#inference'


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    """Parse the command line.

    Example:
        >>> parse_args(['cfg.py', 'w.safetensors', 'a.png']).topk
        5
    """
    parser = argparse.ArgumentParser(
        description='Classify images with a config and trained weights '
        '(full or trainable-only checkpoint, or prompt file)')
    parser.add_argument('config', help='the training (or base) config')
    parser.add_argument(
        'weights',
        help='checkpoint (.pth) or prompt file (.safetensors)')
    parser.add_argument(
        'inputs', nargs='+', help='image files and/or folders of images')
    parser.add_argument(
        '--topk', type=int, default=5, help='labels per image (default 5)')
    parser.add_argument('--out', help='write the results to this .json file')
    parser.add_argument(
        '--device',
        default=None,
        help="device, e.g. 'cpu' or 'cuda:0' (default: a GPU if there is "
        'one)')
    parser.add_argument(
        '--batch-size', type=int, default=16, help='images per forward pass')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override settings of the config, as key=value pairs')
    add_debug_argument(parser)
    args = parser.parse_args(argv)
    if args.topk < 1:
        parser.error('--topk must be at least 1')
    if args.batch_size < 1:
        parser.error('--batch-size must be at least 1')
    if args.out is not None and not args.out.endswith('.json'):
        parser.error('--out must name a .json file')
    return args


def collect_images(inputs: Sequence[str]) -> List[str]:
    """Image paths of ``inputs``: files as given, folders searched
    recursively for image files (sorted).

    Raises:
        MissingFileError: An input does not exist.
        DataError: A folder holds no image file.

    Example:
        >>> collect_images(['data/eurosat'])[:1]  # doctest: +SKIP
        ['data/eurosat/images/000.png']
    """
    images: List[str] = []
    for item in inputs:
        if osp.isdir(item):
            found = sorted(
                osp.join(item, rel)
                for rel in scandir(item, suffix=IMG_EXTENSIONS,
                                   recursive=True, case_sensitive=False))
            if not found:
                raise DataError(
                    user_message(
                        f'The folder {item} holds no image file.',
                        where=item,
                        fix=f'pass a folder with {"/".join(IMG_EXTENSIONS)} '
                        'files, or image files.',
                        docs=DOCS))
            images += found
        elif osp.isfile(item):
            images.append(item)
        else:
            raise MissingFileError(
                user_message(f'{item} does not exist.', where=item,
                             fix='check the path.', docs=DOCS))
    return images


def build_inferencer(config: str, weights: str, device: Optional[str],
                     cfg_options: Optional[dict]):
    """mmpretrain's ``ImageClassificationInferencer`` for a config and a
    weights file; loading errors name the file.

    Example:
        >>> inferencer = build_inferencer(
        ...     'configs/vapt/vit-b16_vtab-eurosat.py',
        ...     'eurosat.safetensors', 'cpu', None)  # doctest: +SKIP
    """
    from mmpretrain.apis import ImageClassificationInferencer
    if not osp.isfile(weights):
        raise MissingFileError(
            user_message(
                f'Weights file {weights} does not exist.',
                fix='pass a checkpoint written by tools/train.py or a prompt '
                'file written by tools/model_converters/extract_prompts.py.',
                docs=DOCS))
    cfg = load_config(config)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    if cfg.get('test_dataloader') is None:
        raise ConfigError(
            user_message(
                f'The config {config} has no test_dataloader, whose pipeline '
                'prepares the images.',
                where=config,
                fix='use the training config, or add a test_dataloader.',
                docs=DOCS))
    with checkpoint_source(weights):
        return ImageClassificationInferencer(
            model=cfg, pretrained=weights, device=device)


def main(argv: Optional[List[str]] = None) -> List[dict]:
    """Classify the images and print (and save) the top-k labels.

    Returns:
        list[dict]: ``{'image', 'topk'}`` per image.

    Example:
        >>> main(['configs/vapt/vit-b16_vtab-eurosat.py',
        ...       'eurosat.safetensors', 'img.png'])  # doctest: +SKIP
    """
    args = parse_args(argv)
    images = collect_images(args.inputs)
    device = args.device
    if device is None:
        import torch
        device = 'cuda' if torch.cuda.is_available() else 'cpu'
    inferencer = build_inferencer(args.config, args.weights, device,
                                  args.cfg_options)
    classes = inferencer.classes
    predictions = inferencer(images, batch_size=args.batch_size)
    results = []
    for image, prediction in zip(images, predictions):
        best = top_k(prediction['pred_scores'], args.topk, classes)
        results.append(dict(image=image, topk=best))
        shown = ', '.join(
            f'{entry.get("class", entry["label"])} ({entry["score"]:.4f})'
            for entry in best)
        print(f'{image}: {shown}')
    if args.out is not None:
        with atomic_write(args.out, 'w') as f:
            json.dump(results, f, indent=2)
        print(f'Results of {len(results)} image(s) written to {args.out}')
    return results


if __name__ == '__main__':
    sys.exit(run_tool(main, 'infer.py'))
