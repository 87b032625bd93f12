"""Write the mmpretrain model index of the VAPT and VPT configs.

Writes ``configs/vapt/metafile.yml``, ``configs/vpt/metafile.yml`` and the
``model-index.yml`` that imports them, in the format of mmpretrain's own
index. One entry per config of ``configs/vapt/`` and ``configs/vpt/``:

* name: ``<method>_<backbone>_<benchmark>-<task>``, e.g.
  ``vapt_vit-b16_vtab-eurosat``, ``vpt-deep_vit-b16-mae_fgvc-cub``;
* ``Metadata``: training data, backbone weights, ``Parameters`` (all) and
  ``Trainable Parameters``, counted from the config's model (built on the
  meta device: no weights are read or allocated);
* ``Results``: the task (Image Classification, which mmpretrain's
  ``inference_model`` needs) and the published test top-1 where the config
  has the published setting: VPT-deep and VPT-shallow on the ImageNet-21k
  ViT-B/16 for the VTAB-1k tasks whose prompt length, batch and learning
  rate are the VPT authors' (sun397, eurosat, dmlab). Other entries carry
  no number (the published ones were obtained with other settings or are
  only published as group means); no entry names weights: prompts are
  trained by the user.

``--check`` (run by the test suite) writes nothing and fails when a
committed file differs from what this script would write.

Example:
    Regenerate after adding configs::

        python tools/misc/generate_metafiles.py

    Verify the committed files::

        python tools/misc/generate_metafiles.py --check
"""
import argparse
import glob
import json
import os.path as osp
import re
import sys
from typing import Dict, List, Optional, Tuple

import yaml

from vapt_mm.protocol.published_results import (PUBLISHED_SOURCE,
                                                PUBLISHED_VTAB1K_PER_TASK)
from vapt_mm.utils.atomic_io import atomic_write
from vapt_mm.utils.user_errors import ConfigError, add_debug_argument, run_tool

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
FOLDERS = ('vapt', 'vpt')
MODEL_INDEX = 'model-index.yml'
#: VTAB-1k tasks whose VPT configs use the VPT authors' published setting
#: (tools/misc/generate_benchmark_configs.py, VPT_PUBLISHED).
VPT_PUBLISHED_SETTING_TASKS = ('sun397', 'eurosat', 'dmlab')

COLLECTIONS = {
    'vapt': [
        dict(
            Name='VAPT',
            Metadata={
                'Training Data': ['VTAB-1k', 'FGVC'],
                'Training Techniques': ['SGD with Momentum',
                                        'Visual Adaptive Prompt Tuning'],
                'Architecture': ['Vision Transformer', 'VAPTNeck'],
            },
            Paper=dict(
                Title='Adaptive Prompt: Unlocking the Power of Visual '
                'Prompt Tuning',
                URL='https://arxiv.org/abs/2501.18936'),
            README='configs/vapt/README.md',
            Code=dict(URL='vapt_mm/models/necks/vapt_neck.py',
                      Version='v0.1.0'),
        )
    ],
    'vpt': [
        dict(
            Name=name,
            Metadata={
                'Training Data': ['VTAB-1k', 'FGVC'],
                'Training Techniques': ['SGD with Momentum',
                                        'Visual Prompt Tuning'],
                'Architecture': ['Vision Transformer', 'VPTNeck'],
            },
            Paper=dict(Title='Visual Prompt Tuning',
                       URL='https://arxiv.org/abs/2203.12119'),
            README='configs/vpt/README.md',
            Code=dict(URL='vapt_mm/models/necks/vpt_neck.py',
                      Version='v0.1.0'),
        ) for name in ('VPT-deep', 'VPT-shallow')
    ],
}

BACKBONES = {
    'vit-b16': 'ViT-B/16, ImageNet-21k supervised',
    'vit-b16-mae': 'ViT-B/16, MAE (self-supervised, ImageNet-1k)',
    'vit-b16-mocov3': 'ViT-B/16, MoCo v3 (self-supervised, ImageNet-1k)',
}
_NAME = re.compile(r'^(?P<backbone>vit-b16(?:-mae|-mocov3)?)'
                   r'(?:-(?P<depth>deep|shallow))?_'
                   r'(?P<benchmark>vtab|fgvc)-(?P<task>\w+)\.py$')


def parse_config_name(folder: str,
                      filename: str) -> Tuple[str, str, str, str, str]:
    """(model name, collection, backbone, benchmark, task) of a config.

    Example:
        >>> parse_config_name('vpt', 'vit-b16-mae-deep_fgvc-cub.py')[:2]
        ('vpt-deep_vit-b16-mae_fgvc-cub', 'VPT-deep')
    """
    match = _NAME.match(filename)
    if match is None or (folder == 'vpt') != bool(match['depth']):
        raise ConfigError(f'configs/{folder}/{filename}: not a '
                          '<backbone>[-deep|-shallow]_<benchmark>-<task>.py '
                          'name this script knows.')
    backbone, benchmark, task = (match['backbone'], match['benchmark'],
                                 match['task'])
    if folder == 'vapt':
        method, collection = 'vapt', 'VAPT'
    else:
        method = f'vpt-{match["depth"]}'
        collection = f'VPT-{match["depth"]}'
    name = f'{method}_{backbone}_{benchmark}-{task}'
    return name, collection, backbone, benchmark, task


def count_parameters(config_path: str,
                     cache: Dict[str, Tuple[int, int]]) -> Tuple[int, int]:
    """(all, trainable) parameters of the config's model, built on the meta
    device; models equal up to ``init_cfg`` are built once."""
    import torch
    from mmengine.config import Config
    from mmengine.registry import DefaultScope
    from mmpretrain.registry import MODELS

    cfg = Config.fromfile(config_path)
    model_cfg = cfg.model.to_dict()
    model_cfg.get('backbone', {}).pop('init_cfg', None)
    key = json.dumps(model_cfg, sort_keys=True, default=str)
    if key not in cache:
        with DefaultScope.overwrite_default_scope('mmpretrain'), \
                torch.device('meta'):
            model = MODELS.build(cfg.model)
        params = list(model.parameters())
        cache[key] = (sum(p.numel() for p in params),
                      sum(p.numel() for p in params if p.requires_grad))
    return cache[key]


def published_top1(collection: str, backbone: str, benchmark: str,
                   task: str) -> Optional[float]:
    """The published test top-1 a config reproduces, if there is one."""
    if (collection in ('VPT-deep', 'VPT-shallow') and backbone == 'vit-b16'
            and benchmark == 'vtab' and task in VPT_PUBLISHED_SETTING_TASKS):
        return PUBLISHED_VTAB1K_PER_TASK[collection][task]
    return None


def model_entry(folder: str, filename: str,
                cache: Dict[str, Tuple[int, int]]) -> dict:
    """The metafile entry of ``configs/<folder>/<filename>``."""
    name, collection, backbone, benchmark, task = parse_config_name(
        folder, filename)
    config = f'configs/{folder}/{filename}'
    total, trainable = count_parameters(osp.join(ROOT, config), cache)
    dataset = f'{"VTAB-1k" if benchmark == "vtab" else "FGVC"} {task}'
    top1 = published_top1(collection, backbone, benchmark, task)
    return {
        'Name': name,
        'In Collection': collection,
        'Config': config,
        'Metadata': {
            'Training Data': dataset,
            'Backbone Weights': BACKBONES[backbone],
            'Parameters': total,
            'Trainable Parameters': trainable,
        },
        'Results': [{
            'Task': 'Image Classification',
            'Dataset': dataset,
            'Metrics': {} if top1 is None else {'Top 1 Accuracy': top1},
        }],
    }


def expected_files() -> Dict[str, str]:
    """Relative path -> content of every file this script writes."""
    cache: Dict[str, Tuple[int, int]] = {}
    files = {}
    for folder in FOLDERS:
        names = sorted(
            osp.basename(p)
            for p in glob.glob(osp.join(ROOT, 'configs', folder, '*.py')))
        data = dict(
            Collections=COLLECTIONS[folder],
            Models=[model_entry(folder, name, cache) for name in names])
        header = (f'# Generated by tools/misc/generate_metafiles.py from '
                  f'configs/{folder}/*.py.\n# Published numbers: '
                  f'{PUBLISHED_SOURCE}.\n')
        files[f'configs/{folder}/metafile.yml'] = header + yaml.safe_dump(
            data, sort_keys=False, width=79)
    files[MODEL_INDEX] = yaml.safe_dump(
        dict(Import=[f'configs/{folder}/metafile.yml'
                     for folder in FOLDERS]),
        sort_keys=False)
    return files


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument(
        '--check',
        action='store_true',
        help='write nothing; exit 1 if a committed file differs or is '
        'missing')
    add_debug_argument(parser)
    args = parser.parse_args(argv)
    import vapt_mm  # noqa: F401  (registers the models)
    stale = []
    for rel, content in sorted(expected_files().items()):
        path = osp.join(ROOT, rel)
        current = open(path).read() if osp.isfile(path) else None
        if current == content:
            continue
        stale.append(rel)
        if not args.check:
            with atomic_write(path, 'w') as f:
                f.write(content)
    if args.check and stale:
        print(f'{len(stale)} model-index files differ from '
              f'tools/misc/generate_metafiles.py: {", ".join(stale)}; '
              'rerun it.')
        return 1
    print(f'model index: {len(stale)} file(s) '
          f'{"differ" if args.check else "written"}.')
    return 0


if __name__ == '__main__':
    sys.exit(run_tool(main, 'generate_metafiles.py'))
