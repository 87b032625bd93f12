"""The best labels of one image, with their class names when known."""
from typing import Dict, List, Optional, Sequence

import numpy as np

__all__ = ['top_k']


def top_k(scores: np.ndarray, k: int,
          classes: Optional[Sequence[str]]) -> List[Dict[str, object]]:
    """The ``k`` best labels of one image, best first (ties: lower label).

    The JSON of ``tools/infer.py`` and of ``tools/serve.py``: ``label`` is
    the index of the class in the task's head (its training label),
    ``class`` its name when the weights record class names, ``score`` the
    softmax probability.

    Args:
        scores (np.ndarray): The image's class scores, 1-D.
        k (int): How many labels (fewer when the task has fewer classes).
        classes (Sequence[str], optional): Class names in label order.

    Returns:
        list[dict]: ``{'label': int, 'class': str, 'score': float}`` per
        label, ``class`` only with ``classes``.

    Example:
        >>> best = top_k(np.array([0.1, 0.7, 0.2]), 2, ['a', 'b', 'c'])
        >>> [(e['label'], e['class'], e['score']) for e in best]
        [(1, 'b', 0.7), (2, 'c', 0.2)]
    """
    order = np.argsort(-scores, kind='stable')[:k]
    return [
        dict(
            label=int(i),
            **({'class': str(classes[i])} if classes else {}),
            score=float(scores[i])) for i in order
    ]
