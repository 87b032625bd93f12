"""The base dataset configs: loading, overriding, pipelines, normalisation."""
import os.path as osp

import numpy as np
import pytest
import torch
from mmengine import Config
from mmengine.dataset import pseudo_collate
from mmpretrain.registry import DATASETS, MODELS
from PIL import Image

import vapt_mm  # noqa: F401  (registers VTAB1k / FGVC)

CFG_DIR = osp.join(
    osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))), 'configs',
    '_base_', 'datasets')
# ImageNet statistics, written here in 0-1 units and scaled independently
IMAGENET_MEAN = np.array([0.485, 0.456, 0.406]) * 255
IMAGENET_STD = np.array([0.229, 0.224, 0.225]) * 255


def load(name):
    return Config.fromfile(osp.join(CFG_DIR, name))


def write_rgb(path, height, width, seed):
    """Write random pixels losslessly (PNG content, whatever the name)."""
    pixels = np.random.default_rng(seed).integers(0,
                                                  256,
                                                  size=(height, width, 3),
                                                  dtype=np.uint8)
    Image.fromarray(pixels).save(path, format='PNG')
    return Image.open(path).convert('RGB')


def is_crop_of(crop, image):
    """Whether ``crop`` (3, h, w) is a window of ``image`` (3, H, W)."""
    h, w = crop.shape[1:]
    H, W = image.shape[1:]
    corner = (image[:, :H - h + 1, :W - w + 1] == crop[:, :1, :1]).all(0)
    return any(
        torch.equal(image[:, y:y + h, x:x + w], crop)
        for y, x in corner.nonzero().tolist())


def to_chw_bgr(rgb):
    """PIL RGB image -> uint8 tensor (3, H, W) in BGR, as PackInputs gives."""
    arr = np.asarray(rgb)[..., ::-1]
    return torch.from_numpy(np.ascontiguousarray(arr.transpose(2, 0, 1)))


def build_preprocessor(cfg):
    return MODELS.build(
        dict(type='ClsDataPreprocessor', **cfg.data_preprocessor))


def test_vtab_config_defaults():
    cfg = load('vtab1k_bs64.py')
    for key in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        loader = cfg[key]
        assert loader.batch_size == 64
        assert loader.dataset.type == 'VTAB1k'
        assert loader.dataset.data_root == 'data/vtab-1k'
        assert loader.dataset.task == 'eurosat'
    assert cfg.train_dataloader.dataset.split == 'train800val200'
    assert cfg.val_dataloader.dataset.split == 'test'
    assert cfg.test_dataloader.dataset.split == 'test'
    assert cfg.val_evaluator == dict(type='Accuracy', topk=(1, ))
    assert cfg.data_preprocessor.to_rgb is True


def test_vtab_config_builds_with_overrides_and_resizes_to_224(
        vtab_root, tmp_path):
    cfg = load('vtab1k_bs64.py')
    cfg.merge_from_dict({
        'train_dataloader.dataset.data_root': vtab_root,
        'train_dataloader.dataset.task': 'kitti',
        'test_dataloader.dataset.data_root': vtab_root,
        'test_dataloader.dataset.task': 'kitti',
    })
    # a non-square first image: the resize must not keep the aspect ratio
    first = osp.join(vtab_root, 'kitti', 'images', 'train800', '00000.png')
    rgb = write_rgb(first, 20, 36, seed=1)

    train = DATASETS.build(cfg.train_dataloader.dataset)
    test = DATASETS.build(cfg.test_dataloader.dataset)
    assert (len(train), len(test)) == (17, 7)
    assert train.metainfo['classes'] == ('0', '1', '2', '3')

    sample = train[0]
    assert sample['inputs'].shape == (3, 224, 224)
    assert sample['inputs'].dtype == torch.uint8
    assert sample['data_samples'].gt_label.tolist() == [0]
    reference = rgb.resize((224, 224), Image.BICUBIC)
    assert torch.equal(sample['inputs'], to_chw_bgr(reference))
    assert test[3]['inputs'].shape == (3, 224, 224)

    # data_preprocessor: BGR -> RGB, then (x - mean) / std, ImageNet stats
    pre = build_preprocessor(cfg)
    batch = pre(pseudo_collate([train[0], train[1]]), training=False)
    expected = (np.asarray(reference, dtype=np.float64) -
                IMAGENET_MEAN) / IMAGENET_STD
    expected = torch.from_numpy(expected.transpose(2, 0, 1)).float()
    assert batch['inputs'].shape == (2, 3, 224, 224)
    torch.testing.assert_close(batch['inputs'][0], expected)
    value = (np.asarray(reference)[5, 7, 0] - 123.675) / 58.395
    assert batch['inputs'][0, 0, 5, 7].item() == pytest.approx(value, 1e-5)


def test_fgvc_config_defaults():
    cfg = load('fgvc_bs64.py')
    assert cfg.train_dataloader.dataset.type == 'FGVC'
    assert cfg.train_dataloader.dataset.dataset == 'cub'
    assert cfg.train_dataloader.dataset.split == 'trainval'
    assert cfg.val_dataloader.dataset.split == 'test'
    assert cfg.test_dataloader.dataset.split == 'test'
    assert cfg.train_dataloader.batch_size == 64


def test_fgvc_config_pipelines(fgvc_root):
    cfg = load('fgvc_bs64.py')
    overrides = {}
    for key in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        overrides[f'{key}.dataset.data_root'] = fgvc_root
        overrides[f'{key}.dataset.dataset'] = 'oxfordflower'
    cfg.merge_from_dict(overrides)
    folder = osp.join(fgvc_root, 'OxfordFlower', 'class_000')
    rgb = write_rgb(osp.join(folder, 'test_00.jpg'), 30, 50, seed=2)
    write_rgb(osp.join(folder, 'train_00.jpg'), 30, 50, seed=2)

    train = DATASETS.build(cfg.train_dataloader.dataset)
    val = DATASETS.build(cfg.val_dataloader.dataset)
    assert (len(train), len(val)) == (306, 102)
    assert train[0]['inputs'].shape == (3, 224, 224)
    assert train[0]['inputs'].dtype == torch.uint8

    # test pipeline = torchvision's Resize(256) (short edge, bilinear) then
    # CenterCrop(224): 30x50 -> 256x426, crop offsets round(16), round(101)
    resized = rgb.resize((int(256 * 50 / 30), 256), Image.BILINEAR)
    reference = resized.crop((101, 16, 101 + 224, 16 + 224))
    sample = val[0]
    assert sample['data_samples'].gt_label.tolist() == [0]
    assert torch.equal(sample['inputs'], to_chw_bgr(reference))

    # train pipeline: a random 224 window of the same resized image, flipped
    # horizontally half of the time
    assert train.get_data_info(0)['img_path'].endswith('train_00.jpg')
    resized_bgr = to_chw_bgr(resized)
    np.random.seed(0)
    flips, crops = 0, set()
    for _ in range(20):
        crop = train[0]['inputs']
        crops.add(crop.sum().item())
        if not is_crop_of(crop, resized_bgr):
            assert is_crop_of(crop.flip(-1), resized_bgr)
            flips += 1
    assert 0 < flips < 20
    assert len(crops) > 1
