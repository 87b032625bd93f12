"""An independent re-statement of VPT and VAPT for plain ViTs, for tests.

Written as a plain loop over the backbone's blocks with slice assignment and
explicit arithmetic (no conv2d, no nn.Linear calls), so that it shares no
code with the necks it checks.
"""
import torch
import torch.nn.functional as F


def embed_plain_vit(vit, images):
    tokens, hw = vit.patch_embed(images)
    cls = vit.cls_token.expand(tokens.shape[0], -1, -1)
    return torch.cat([cls, tokens], dim=1) + vit.pos_embed, hw


def channel_wise_conv(feature_map, kernel, padding):
    """(B, H, W, d) -> (B, H', W', d), one K x K kernel for all channels."""
    k = kernel.shape[-1]
    padded = F.pad(feature_map.permute(0, 3, 1, 2),
                   (padding, padding, padding, padding)).permute(0, 2, 3, 1)
    out_h = padded.shape[1] - k + 1
    out_w = padded.shape[2] - k + 1
    out = torch.zeros(padded.shape[0], out_h, out_w, padded.shape[3])
    for a in range(k):
        for b in range(k):
            out = out + kernel[0, 0, a, b] * padded[:, a:a + out_h,
                                                    b:b + out_w]
    return out


def vapt_prompts(tokens_without_prompts, hw, generator, projector):
    """Adaptive prompts of one block, from the VAPT spec, step by step."""
    ln = generator.norm
    normed = F.layer_norm(tokens_without_prompts, (ln.normalized_shape[0], ),
                          ln.weight, ln.bias, ln.eps)
    patches = normed[:, 1:]  # drop the CLS token
    batch, _, dims = patches.shape
    feature_map = patches.reshape(batch, hw[0], hw[1], dims)  # raster order
    conv = channel_wise_conv(feature_map, generator.kernel, generator.padding)
    flat = conv.reshape(batch, -1, dims)  # (B, H'W', d)
    weight = generator.token_projector.weight  # (p, H'W')
    bias = generator.token_projector.bias
    prompts = torch.einsum('bnd,pn->bpd', flat, weight) + bias[None, :, None]
    hidden = torch.relu(prompts @ projector.fc1.weight.t())
    return prompts + hidden @ projector.fc2.weight.t()


def reference_logits(model, images, static_prompts, num_static,
                     deep=True, vapt=None):
    """Logits of a PromptedClassifier over a plain VisionTransformer.

    Args:
        model: The classifier (its backbone and head are used).
        images: (B, 3, H, W).
        static_prompts: (S, p, d) static prompt sets.
        num_static: blocks 0..num_static-1 take static prompts (deep) or
            only block 0 does (shallow, ``deep=False``).
        deep: overwrite the prompt slots before every block.
        vapt: (neck) to compute adaptive prompts for the other blocks.
    """
    vit = model.backbone
    x, hw = embed_plain_vit(vit, images)
    batch = x.shape[0]
    p = static_prompts.shape[1]
    has_prompts = False
    for index, layer in enumerate(vit.layers):
        new = None
        if index < num_static and (deep or index == 0):
            new = static_prompts[index].expand(batch, -1, -1)
        elif vapt is not None:
            without = x if not has_prompts else torch.cat(
                [x[:, :1], x[:, 1 + p:]], dim=1)
            adaptive = index - vapt.vpt_depth
            projector = vapt.projectors[
                0 if vapt.share_projector else adaptive]
            new = vapt_prompts(without, hw, vapt.generators[adaptive],
                               projector)
        if new is not None:
            if has_prompts:
                x = x.clone()
                x[:, 1:1 + p] = new
            else:
                x = torch.cat([x[:, :1], new, x[:, 1:]], dim=1)
                has_prompts = True
        x = layer(x)
    x = vit.ln1(x)
    cls = x[:, 0]
    return cls @ model.head.fc.weight.t() + model.head.fc.bias
