"""vapt_mm.serving.request_decoding: images are decoded as
LoadImageFromFile decodes them; images too large to decode are refused
from their header, before decoding."""
import io

import mmcv
import numpy as np
import pytest
from PIL import Image

from vapt_mm.serving.request_decoding import (MAX_IMAGE_PIXELS,
                                              ImageDecoder, RequestError)


def _png(width: int, height: int) -> bytes:
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format='PNG')
    return buffer.getvalue()


def test_an_image_is_decoded_as_load_image_from_file_does():
    data = _png(40, 30)
    image = ImageDecoder.load_image(data)
    assert image.shape == (30, 40, 3)
    np.testing.assert_array_equal(image, mmcv.imfrombytes(data))


def test_an_image_over_the_pixel_limit_is_refused_before_decoding(
        monkeypatch):
    decoded = []
    monkeypatch.setattr(mmcv, 'imfrombytes',
                        lambda *args, **kwargs: decoded.append(1))
    with pytest.raises(RequestError) as error:
        ImageDecoder.load_image(_png(100, 60), max_pixels=5_999)
    assert error.value.status == 413
    assert '6,000 pixels, more than the 5,999' in error.value.detail
    assert decoded == []  # refused from the header alone
    assert MAX_IMAGE_PIXELS >= 8000 * 5000  # a large photo still passes


def test_bytes_that_are_no_image_are_refused():
    with pytest.raises(RequestError) as error:
        ImageDecoder.load_image(b'this is not an image')
    assert error.value.status == 422
    assert 'no image that can be decoded' in error.value.detail
