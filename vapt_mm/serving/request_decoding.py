"""A request's base64 image -> the tensor the config's test pipeline makes.

The image goes through exactly what ``tools/infer.py`` (mmpretrain's
``ImageClassificationInferencer``) does to an image file: decoded with
``mmcv.imfrombytes`` (BGR, as ``LoadImageFromFile``), then the base
config's test pipeline without its ``LoadImageFromFile``. Bad input raises
:class:`RequestError` with the HTTP status a server answers.
"""
import base64
import binascii
import io
import warnings
from typing import List, NamedTuple, Optional, Sequence

import mmcv
import numpy as np
import torch
from mmcv.transforms import Compose
from mmengine.config import Config
from mmpretrain.datasets import remove_transform
from mmpretrain.registry import TRANSFORMS
from PIL import Image

from ..utils.user_errors import ConfigError, user_message
from .task_specs import DOCS

__all__ = [
    'RequestError', 'DecodedImage', 'ImageDecoder', 'inference_pipeline',
    'MAX_IMAGE_PIXELS'
]

#: Largest image (width x height) a request may hold. A small compressed
#: file can decode to gigabytes; its size is read from the file's header
#: and checked before the image is decoded.
MAX_IMAGE_PIXELS = 40_000_000


class RequestError(Exception):
    """A request the server refuses, with the HTTP status to answer.

    Args:
        status (int): The HTTP status code (4xx).
        detail (str): What is wrong, for the client.
        **extra: More JSON fields of the answer (e.g. ``known_tasks``).

    Example:
        >>> error = RequestError(422, 'Unknown task', known_tasks=['a'])
        >>> error.status, error.body()
        (422, {'detail': 'Unknown task', 'known_tasks': ['a']})
    """

    def __init__(self, status: int, detail: str, **extra) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.extra = extra

    def body(self) -> dict:
        """The JSON answer: ``detail`` plus the extra fields."""
        return dict(detail=self.detail, **self.extra)


class DecodedImage(NamedTuple):
    """A request ready for the model: its task and its image tensor (the
    pipeline's ``inputs``, before the data preprocessor)."""
    task: str
    inputs: torch.Tensor


def inference_pipeline(cfg: Config) -> List[dict]:
    """The base config's test pipeline without ``LoadImageFromFile``.

    Args:
        cfg (Config): The base config.

    Returns:
        list[dict]: The transform configs.

    Raises:
        ConfigError: The config has no ``test_dataloader.dataset.pipeline``.

    Example:
        >>> from mmengine.config import Config
        >>> cfg = Config.fromfile('configs/vapt/vit-b16_vtab-eurosat.py')
        >>> [t['type'] for t in inference_pipeline(cfg)]
        ['Resize', 'PackInputs']
    """
    loader = cfg.get('test_dataloader') or {}
    pipeline = (loader.get('dataset') or {}).get('pipeline')
    if not pipeline:
        raise ConfigError(
            user_message(
                'The base config has no test_dataloader.dataset.pipeline, '
                'which prepares the images.',
                where=cfg.filename,
                fix='use the training config of the backbone, or add a '
                'test_dataloader.',
                docs=DOCS))
    return remove_transform(list(pipeline), 'LoadImageFromFile')


def _header_pixels(data: bytes) -> Optional[int]:
    """Width x height from an image file's header (not decoded), or None
    when Pillow cannot read it (OpenCV then decides); a size Pillow itself
    refuses as a decompression bomb counts as too large."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter('ignore', Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                width, height = image.size
    except Image.DecompressionBombError:
        return 2**62
    except Exception:  # not an image Pillow knows
        return None
    return width * height


class ImageDecoder:
    """Turn ``{"task", "image"}`` requests into :class:`DecodedImage`.

    Args:
        pipeline (Sequence[dict]): Transforms after image loading (see
            :func:`inference_pipeline`), ending with ``PackInputs``.
        tasks (Sequence[str]): The tasks served.

    Example:
        >>> decoder = ImageDecoder(inference_pipeline(cfg), ['eurosat'])
        ... # doctest: +SKIP
        >>> with open('img.png', 'rb') as f:  # doctest: +SKIP
        ...     text = base64.b64encode(f.read()).decode()
        >>> decoder('eurosat', text).inputs.shape  # doctest: +SKIP
        torch.Size([3, 224, 224])
    """

    def __init__(self, pipeline: Sequence[dict],
                 tasks: Sequence[str]) -> None:
        self.pipeline = Compose([TRANSFORMS.build(t) for t in pipeline])
        self.tasks = list(tasks)

    def check_task(self, task: object) -> str:
        """The task name, or a 422 error naming the tasks served.

        Args:
            task (str): The requested task.

        Example:
            >>> decoder.check_task('nope')  # doctest: +SKIP
            Traceback (most recent call last):
            ...
            RequestError: Unknown task 'nope': this server holds eurosat.
        """
        if task not in self.tasks:
            raise RequestError(
                422,
                f'Unknown task {task!r}: this server holds '
                f'{", ".join(self.tasks)}.',
                known_tasks=self.tasks)
        return task

    @staticmethod
    def image_bytes(text: str) -> bytes:
        """The bytes of a base64 text (a ``data:...;base64,`` prefix and
        white space are allowed), or a 400 error.

        Args:
            text (str): The request's ``image`` field.

        Example:
            >>> ImageDecoder.image_bytes('data:image/png;base64,aGk=')
            b'hi'
        """
        if text.startswith('data:') and ';base64,' in text[:100]:
            text = text.split(';base64,', 1)[1]
        try:
            data = base64.b64decode(''.join(text.split()), validate=True)
        except (binascii.Error, ValueError):
            raise RequestError(400, 'The "image" field is not valid base64.')
        if not data:
            raise RequestError(400, 'The "image" field is empty.')
        return data

    @staticmethod
    def load_image(data: bytes,
                   max_pixels: int = MAX_IMAGE_PIXELS) -> np.ndarray:
        """The decoded image (BGR, HxWx3 uint8, as ``LoadImageFromFile``),
        or a 422 error (413 for an image over ``max_pixels``).

        Args:
            data (bytes): The bytes of an image file.
            max_pixels (int): Largest width x height, checked on the file's
                header before decoding. Defaults to
                :data:`MAX_IMAGE_PIXELS`.

        Example:
            >>> ImageDecoder.load_image(b'hi')
            Traceback (most recent call last):
            ...
            vapt_mm.serving.request_decoding.RequestError: The "image" ...
        """
        pixels = _header_pixels(data)
        if pixels is not None and pixels > max_pixels:
            raise RequestError(
                413, f'The image has {pixels:,} pixels, more than the '
                f'{max_pixels:,} this server decodes.')
        image = mmcv.imfrombytes(data, flag='color')
        if image is None:
            raise RequestError(
                422, 'The "image" field holds no image that can be decoded '
                '(send the base64 of a PNG, JPEG, BMP, TIFF or WebP file).')
        return image

    def __call__(self, task: object, text: object) -> DecodedImage:
        """Decode one request.

        Args:
            task (str): The task name.
            text (str): The base64 of an image file.

        Returns:
            DecodedImage: The task and the pipeline's image tensor.

        Raises:
            RequestError: Unknown task (422), invalid base64 (400), not an
                image or an image the pipeline cannot prepare (422), an
                image over :data:`MAX_IMAGE_PIXELS` (413).
        """
        task = self.check_task(task)
        if not isinstance(text, str):
            raise RequestError(422, 'The "image" field must be a string.')
        image = self.load_image(self.image_bytes(text))
        try:
            packed = self.pipeline(
                dict(img=image, img_shape=image.shape[:2],
                     ori_shape=image.shape[:2]))
        except Exception as error:  # a transform refusing this image
            raise RequestError(
                422, f'The image could not be prepared: {error}') from error
        return DecodedImage(task, packed['inputs'])
