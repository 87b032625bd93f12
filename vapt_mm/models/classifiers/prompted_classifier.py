"""An mmpretrain ImageClassifier whose neck is a prompt neck."""
import re
from typing import List, Optional, Sequence, Union

import torch
import torch.nn as nn
from mmengine.logging import print_log
from mmpretrain.models.classifiers import ImageClassifier
from mmpretrain.registry import MODELS

from ...utils.user_errors import ConfigError
from ..utils import check_pretrained_checkpoint
from . import exact_loading
from ..backbones import build_backbone_adapter
from ..necks import build_prompt_neck
from ..utils.prompt_kv_attention import StaticPromptKVCache
from ..utils.prompted_forward import run_backbone


@MODELS.register_module()
class PromptedClassifier(ImageClassifier):
    """Image classifier that prompt-tunes a frozen ViT backbone.

    When built it (1) builds the backbone, an unmodified registered
    mmpretrain ViT, and refuses backbones prompts cannot attach to; (2)
    freezes every backbone parameter except those matching
    ``frozen_exclude``; (3) builds the prompt neck with the backbone's
    geometry (width, depth, patch size, patch grid). The neck runs the
    backbone's modules with its prompts inserted (see
    :class:`BasePromptNeck`); the head is any mmpretrain classification
    head. Freezing happens here, before the Runner wraps the model in DDP or
    builds the optimizer.

    While ``freeze_backbone`` is set, ``model.train()`` leaves the backbone
    in eval mode (no backbone dropout or drop-path), as the published
    protocol trains; the neck and head follow the requested mode.

    ``neck=None`` gives a linear probe on the frozen backbone. To mix prompts
    into an existing mmpretrain classifier config, set
    ``model.type='PromptedClassifier'`` and add a prompt neck.

    The classifier knows no backbone class by name: the backbone adapter
    (:func:`~vapt_mm.models.backbones.build_backbone_adapter`) states each
    family's quirks. ``docs/architecture.md`` shows how the parts fit.

    Args:
        backbone (dict | nn.Module): Backbone config or module.
        neck (dict | BasePromptNeck, optional): Prompt neck config (its
            geometry arguments are filled in from the backbone) or module.
        head (dict | nn.Module, optional): Classification head.
        freeze_backbone (bool): Freeze the backbone. Defaults to True.
        frozen_exclude (Sequence[str]): Regular expressions (``re.search``)
            over backbone parameter names (without ``backbone.``) that stay
            trainable, e.g. ``['^ln1\\.']`` for the final norm. Each must
            match at least one parameter. Defaults to ().
        adapter_cfg (dict, optional): Options of the backbone adapter, e.g.
            ``dict(out_pool='cls')`` to pool the token outputs of a timm
            ViT for the head. Defaults to None.
        pretrained (str, optional): Checkpoint of the whole classifier, as
            in ``ImageClassifier``.
        train_cfg (dict, optional): Batch augments, as in
            ``ImageClassifier``.
        data_preprocessor (dict | nn.Module, optional): As in
            ``ImageClassifier``.
        init_cfg (dict, optional): Initialization config.
        allow_other_backbone_weights (bool): Load a trainable-only
            checkpoint even if the backbone weights differ from the ones it
            was trained on (a warning instead of an error). Loading is
            otherwise exact or refused in every path (``load_state_dict``,
            mmengine's ``load_checkpoint``): see
            :mod:`~vapt_mm.models.classifiers.exact_loading`. Defaults to
            False.

    Example:
        >>> import torch
        >>> model = PromptedClassifier(
        ...     backbone=dict(type='VisionTransformer', arch='deit-tiny',
        ...                   img_size=32, patch_size=8),
        ...     neck=dict(type='VAPTNeck', num_tokens=4),
        ...     head=dict(type='LinearClsHead', num_classes=10,
        ...               in_channels=192))
        >>> model(torch.rand(2, 3, 32, 32)).shape
        torch.Size([2, 10])
        >>> any(p.requires_grad for p in model.backbone.parameters())
        False
    """

    def __init__(self,
                 backbone: Union[dict, nn.Module],
                 neck: Optional[Union[dict, nn.Module]] = None,
                 head: Optional[Union[dict, nn.Module]] = None,
                 freeze_backbone: bool = True,
                 frozen_exclude: Sequence[str] = (),
                 adapter_cfg: Optional[dict] = None,
                 pretrained: Optional[str] = None,
                 train_cfg: Optional[dict] = None,
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None,
                 allow_other_backbone_weights: bool = False) -> None:
        super().__init__(
            backbone=backbone,
            neck=None,
            head=head,
            pretrained=pretrained,
            train_cfg=train_cfg,
            data_preprocessor=data_preprocessor,
            init_cfg=init_cfg)
        # The neck is built first: it carries the deprecated spelling of an
        # adapter option (out_pool), and needs only the adapter's geometry.
        adapter_cfg = dict(adapter_cfg or {})
        self.backbone_adapter = build_backbone_adapter(self.backbone,
                                                       **adapter_cfg)
        self.neck = self._build_neck(neck)
        deprecated_pool = getattr(self.neck, 'out_pool', None)
        if deprecated_pool is not None:
            if adapter_cfg.get('out_pool', deprecated_pool) != deprecated_pool:
                raise ConfigError(
                    f'PromptedClassifier: adapter_cfg.out_pool='
                    f'{adapter_cfg["out_pool"]!r} and the deprecated '
                    f'neck.out_pool={deprecated_pool!r} disagree; keep only '
                    'adapter_cfg.out_pool.')
            adapter_cfg['out_pool'] = deprecated_pool
            # Not an nn.Module: it only points at the backbone's modules,
            # so it adds nothing to the state dict.
            self.backbone_adapter = build_backbone_adapter(
                self.backbone, **adapter_cfg)
        #: Keys and values of static prompts at inference; cleared whenever
        #: the weights may have changed (see StaticPromptKVCache).
        self.prompt_kv_cache = StaticPromptKVCache()
        self._register_load_state_dict_pre_hook(self._clear_prompt_kv_cache)
        self.freeze_backbone = freeze_backbone
        self.frozen_exclude = list(frozen_exclude)
        if freeze_backbone:
            self._freeze_backbone()
        elif self.frozen_exclude:
            raise ConfigError(
                'PromptedClassifier: frozen_exclude '
                f'{self.frozen_exclude} only applies with '
                'freeze_backbone=True.')
        # Loading is exact or refused (exact_loading): a trainable-only
        # state dict is completed from the pretrained backbone.
        self.allow_other_backbone_weights = bool(allow_other_backbone_weights)
        exact_loading.install_exact_loading(self)

    def _build_neck(
            self, neck: Optional[Union[dict,
                                       nn.Module]]) -> Optional[nn.Module]:
        if neck is None:
            return None
        return build_prompt_neck(neck, self.backbone_adapter,
                                 'PromptedClassifier')

    def _freeze_backbone(self) -> None:
        patterns = [re.compile(p) for p in self.frozen_exclude]
        matched = {p.pattern: [] for p in patterns}
        for name, param in self.backbone.named_parameters():
            hits = [p for p in patterns if p.search(name)]
            for p in hits:
                matched[p.pattern].append(name)
            param.requires_grad = bool(hits)
        unmatched = [key for key, names in matched.items() if not names]
        if unmatched:
            raise ConfigError(
                f'PromptedClassifier: frozen_exclude patterns {unmatched} '
                f'match no parameter of {type(self.backbone).__name__} '
                "(names look like 'layers.11.ln1.weight', 'ln1.bias').")
        kept = sorted(n for names in matched.values() for n in names)
        if kept:
            print_log(
                f'Backbone parameters left trainable: {kept}',
                logger='current')

    def init_weights(self) -> None:
        """Initialise weights, first checking a pretrained backbone file.

        mmengine only warns when a ``Pretrained`` checkpoint is missing keys
        or has other shapes, which would silently prompt-tune a partly random
        backbone. The file named by the backbone's ``init_cfg`` is checked
        first and a clear error names the path, the missing keys and the
        shape mismatches.
        """
        init_cfg = getattr(self.backbone, 'init_cfg', None)
        pretrained = (isinstance(init_cfg, dict)
                      and init_cfg.get('type') == 'Pretrained')
        if pretrained:
            check_pretrained_checkpoint(self.backbone, init_cfg['checkpoint'],
                                        init_cfg.get('prefix'))
        super().init_weights()
        self.backbone_adapter.after_init_weights()
        self.prompt_kv_cache.clear()

    def _clear_prompt_kv_cache(self, *args, **kwargs) -> None:
        cache = getattr(self, 'prompt_kv_cache', None)
        if cache is not None:
            cache.clear()

    def _apply(self, fn, *args, **kwargs):
        # .to(), .cuda(), .half(), ... move or convert the weights.
        self._clear_prompt_kv_cache()
        return super()._apply(fn, *args, **kwargs)

    def train(self, mode: bool = True) -> 'PromptedClassifier':
        """Set train/eval mode; a frozen backbone always stays in eval."""
        super().train(mode)
        if self.freeze_backbone:
            self.backbone.eval()
        self._clear_prompt_kv_cache()
        return self

    @property
    def trainable_parameter_names(self) -> List[str]:
        """Names of the parameters that train (neck, head, excluded ones)."""
        return [n for n, p in self.named_parameters() if p.requires_grad]

    def extract_feat(self, inputs: torch.Tensor, stage: str = 'neck'):
        """Features of ``inputs`` at ``stage``, computed with prompts.

        Args:
            inputs (Tensor): Images ``(B, 3, H, W)``.
            stage (str): 'backbone' (the prompted backbone's outputs, same
                shapes as the bare backbone's), 'neck' (the same: a prompt
                neck is the identity after the backbone) or 'pre_logits'.

        Returns:
            tuple | Tensor: The features.
        """
        if stage not in ('backbone', 'neck', 'pre_logits'):
            raise ConfigError(
                f"Invalid output stage {stage!r}, please choose from "
                "'backbone', 'neck' and 'pre_logits'.")
        # Also without a neck the backbone runs through its adapter: that is
        # its plain forward (MAEViT's own forward would mask patches).
        x = run_backbone(self.backbone_adapter, inputs, self.neck,
                         self.prompt_kv_cache)
        if stage == 'backbone':
            return x
        if self.with_neck:
            x = self.neck(x)
        if stage == 'neck':
            return x
        return self.head.pre_logits(x)

    # --- the checkpoint's record of the backbone (see exact_loading) ---

    def get_extra_state(self) -> torch.Tensor:
        """The record stored as ``_extra_state`` in every state dict: the
        fingerprint and file of the frozen backbone weights (a uint8 tensor
        of JSON, see ``exact_loading.backbone_record``)."""
        return exact_loading.encode_record(exact_loading.backbone_record(self))

    def set_extra_state(self, state: Optional[torch.Tensor]) -> None:
        """Check a loaded record; the loading hooks act on it."""
        exact_loading.read_backbone_record(state)
