"""FGVC: JSON split files, class-id remapping and build-time errors."""
import json
import os
import os.path as osp
import re
import shutil

import pytest
from mmpretrain.registry import DATASETS

from vapt_mm.datasets import FGVC, FGVC_DATASETS, FGVC_NUM_CLASSES
from vapt_mm.utils.user_errors import DataError

DOCS = r'see docs/datasets\.md'


def flowers_dir(root):
    return osp.join(root, 'OxfordFlower')


def load_json(root, split):
    with open(osp.join(flowers_dir(root), f'{split}.json')) as f:
        return json.load(f)


def dump_json(root, split, content):
    with open(osp.join(flowers_dir(root), f'{split}.json'), 'w') as f:
        json.dump(content, f)


def test_class_counts():
    assert FGVC_NUM_CLASSES == dict(cub=200,
                                    nabirds=555,
                                    oxfordflower=102,
                                    stanforddogs=120,
                                    stanfordcars=196)
    assert set(FGVC_DATASETS) == set(FGVC_NUM_CLASSES)


@pytest.mark.parametrize('split,size', [('train', 204), ('val', 102),
                                        ('test', 102), ('trainval', 306)])
def test_lengths_paths_and_contiguous_labels(fgvc_root, split, size):
    ds = DATASETS.build(
        dict(type='FGVC',
             data_root=fgvc_root,
             dataset='oxfordflower',
             split=split))
    assert isinstance(ds, FGVC)
    assert len(ds) == size
    # reference: ids in the files are 1, 3, 5, ...; sorted -> 0, 1, 2, ...
    expected = []
    for name in ('train', 'val') if split == 'trainval' else (split, ):
        for path, cid in load_json(fgvc_root, name).items():
            expected.append((osp.join(flowers_dir(fgvc_root),
                                      path), (cid - 1) // 2))
    got = [(ds.get_data_info(i)['img_path'], ds.get_data_info(i)['gt_label'])
           for i in range(len(ds))]
    assert got == expected
    assert ds.class_ids == list(range(1, 204, 2))
    assert ds.metainfo['classes'] == tuple(str(i) for i in range(1, 204, 2))


def test_mapping_is_shared_by_splits_missing_a_class(fgvc_root):
    # val lacks the class with id 1; its labels must still match train's
    val = load_json(fgvc_root, 'val')
    dump_json(fgvc_root, 'val', {p: c for p, c in val.items() if c != 1})
    val_ds = FGVC(fgvc_root, 'oxfordflower', 'val')
    train_ds = FGVC(fgvc_root, 'oxfordflower', 'train')
    assert len(val_ds) == 101
    assert val_ds.get_data_info(0)['img_path'].endswith('class_001/val_00.jpg')
    assert val_ds.get_data_info(0)['gt_label'] == 1
    assert train_ds.get_data_info(2)['img_path'].endswith(
        'class_001/train_00.jpg')
    assert train_ds.get_data_info(2)['gt_label'] == 1


def test_dataset_dir_and_image_dir_overrides(fgvc_root):
    os.rename(flowers_dir(fgvc_root), osp.join(fgvc_root, 'flowers102'))
    ds = FGVC(fgvc_root, 'oxfordflower', 'test', dataset_dir='flowers102')
    assert len(ds) == 102
    assert ds.get_data_info(0)['img_path'] == osp.join(fgvc_root, 'flowers102',
                                                       'class_000',
                                                       'test_00.jpg')
    # json paths relative to a sub-folder
    ds_dir = osp.join(fgvc_root, 'flowers102')
    os.makedirs(osp.join(ds_dir, 'jpg'))
    for name in os.listdir(ds_dir):
        if name.startswith('class_'):
            shutil.move(osp.join(ds_dir, name), osp.join(ds_dir, 'jpg'))
    ds = FGVC(fgvc_root,
              'oxfordflower',
              'test',
              dataset_dir='flowers102',
              image_dir='jpg')
    assert ds.get_data_info(0)['img_path'] == osp.join(ds_dir, 'jpg',
                                                       'class_000',
                                                       'test_00.jpg')


def test_error_data_root_missing(tmp_path):
    root = str(tmp_path / 'nowhere')
    pattern = (rf"FGVC data root '{re.escape(root)}' does not exist.*"
               rf'CUB_200_2011 for .cub.*{DOCS}')
    with pytest.raises(FileNotFoundError, match=pattern):
        FGVC(root, 'cub', 'test')


def test_error_unknown_dataset_lists_valid_ones(fgvc_root):
    pattern = (r"Unknown FGVC dataset 'flowers'; expected one of: cub, "
               rf'nabirds, oxfordflower, stanforddogs, stanfordcars.*{DOCS}')
    with pytest.raises(ValueError, match=pattern):
        FGVC(fgvc_root, 'flowers', 'test')


def test_error_unknown_split(fgvc_root):
    with pytest.raises(
            ValueError,
            match=r"Unknown FGVC split 'train800'; expected one of: train, "
            r'val, trainval, test'):
        FGVC(fgvc_root, 'oxfordflower', 'train800')


def test_error_dataset_folder_missing(fgvc_root):
    folder = re.escape(osp.join(fgvc_root, 'StanfordCars'))
    pattern = rf"FGVC folder of 'stanfordcars' .*'{folder}' does not exist"
    with pytest.raises(FileNotFoundError, match=pattern):
        FGVC(fgvc_root, 'stanfordcars', 'test')


def test_error_split_file_missing(fgvc_root):
    path = osp.join(flowers_dir(fgvc_root), 'val.json')
    os.remove(path)
    pattern = (rf"split file for split 'trainval' of 'oxfordflower' "
               rf"'{re.escape(path)}' is missing.*{DOCS}")
    with pytest.raises(FileNotFoundError, match=pattern):
        FGVC(fgvc_root, 'oxfordflower', 'trainval')
    # the other splits still build: train.json and test.json hold all ids
    assert len(FGVC(fgvc_root, 'oxfordflower', 'train')) == 204


def test_error_json_does_not_parse(fgvc_root):
    path = osp.join(flowers_dir(fgvc_root), 'test.json')
    with open(path, 'w') as f:
        f.write('{\n  "class_000/test_00.jpg": 1,\n  "class_001/x.jpg" 3\n}')
    pattern = rf'{re.escape(path)}, line 3: cannot parse JSON.*{DOCS}'
    with pytest.raises(ValueError, match=pattern):
        FGVC(fgvc_root, 'oxfordflower', 'train')


def test_error_class_id_not_an_integer(fgvc_root):
    test = load_json(fgvc_root, 'test')
    test['class_000/test_00.jpg'] = 'one'
    dump_json(fgvc_root, 'test', test)
    pattern = r"class id of 'class_000/test_00.jpg' is 'one'; expected"
    with pytest.raises(ValueError, match=pattern):
        FGVC(fgvc_root, 'oxfordflower', 'test')


def test_error_wrong_number_of_class_ids(fgvc_root):
    for split in ('train', 'val', 'test'):
        content = load_json(fgvc_root, split)
        dump_json(fgvc_root, split, {
            p: c
            for p, c in content.items() if c != 5
        })
    pattern = (r"split files of 'oxfordflower' .*\(train.json, val.json, "
               r'test.json\) hold 101 distinct class ids; expected 102 for '
               rf'Oxford Flowers.*{DOCS}')
    with pytest.raises(ValueError, match=pattern):
        FGVC(fgvc_root, 'oxfordflower', 'test')


def test_error_images_missing(fgvc_root):
    image = osp.join(flowers_dir(fgvc_root), 'class_004', 'val_00.jpg')
    os.remove(image)
    with pytest.raises(FileNotFoundError) as info:
        FGVC(fgvc_root, 'oxfordflower', 'val')
    msg = str(info.value)
    assert '1 of 102 images listed in' in msg
    assert 'val.json' in msg and repr(image) in msg
    assert 'see docs/datasets.md' in msg


def test_error_trainval_lists_an_image_twice(fgvc_root):
    val = load_json(fgvc_root, 'val')
    val['class_000/train_00.jpg'] = 1
    dump_json(fgvc_root, 'val', val)
    pattern = (r"'class_000/train_00.jpg' is listed in both train.json and "
               r'val.json.*expected disjoint splits')
    with pytest.raises(ValueError, match=pattern):
        FGVC(fgvc_root, 'oxfordflower', 'trainval')


def test_error_empty_split_file_names_it(fgvc_root):
    dump_json(fgvc_root, 'test', {})
    path = osp.join(flowers_dir(fgvc_root), 'test.json')
    with pytest.raises(DataError,
                       match=rf"Annotation file '{re.escape(path)}' lists no "
                       r'images.*docs/errors\.md#empty-annotation-file'):
        FGVC(fgvc_root, 'oxfordflower', 'test')
