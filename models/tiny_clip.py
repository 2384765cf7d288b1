"""A small CLIP with the layout of Hugging Face's CLIPModel, in torch.

The vision tower is a ViT (patch convolution without bias, class token,
learned positions, pre-layernorm, pre-LN blocks, post-layernorm on the class
token, projection without bias). The text tower embeds the full CLIP
vocabulary, adds learned positions, runs causal pre-LN blocks that also honour
the padding mask, applies a final layernorm, pools at the first end token and
projects without bias. Both towers return unnormalized embeddings, as
CLIPVisionModelWithProjection and CLIPTextModelWithProjection do.
"""

import math

import torch
from torch import nn

# Token ids of the CLIP vocabulary (49406 = <|startoftext|>,
# 49407 = <|endoftext|>, which is also the padding token).
VOCAB_SIZE = 49408
BOS_TOKEN_ID = 49406
EOS_TOKEN_ID = 49407
PAD_TOKEN_ID = 49407
CONTEXT_LENGTH = 77

# CLIP initializes the temperature at 0.07 and clamps the scale at 100.
LOGIT_SCALE_INIT = math.log(1 / 0.07)
LOGIT_SCALE_MAX = math.log(100.0)

# Added to attention scores of masked positions. A finite value keeps the
# exported softmax free of NaN even where a row would be fully masked.
MASK_BIAS = -1e9

DEFAULT_CONFIG = {
    'projection_dim': 64,
    'vision': {'hidden_size': 96, 'intermediate_size': 384,
               'num_attention_heads': 4, 'num_hidden_layers': 4,
               'image_size': 56, 'patch_size': 14},
    'text': {'hidden_size': 32, 'intermediate_size': 128,
             'num_attention_heads': 4, 'num_hidden_layers': 2},
    'layer_norm_eps': 1e-5,
}


def quick_gelu(x):
    """Apply OpenAI CLIP's GELU approximation x * sigmoid(1.702 x)."""
    return x * torch.sigmoid(1.702 * x)


class Attention(nn.Module):
    """Multi-head self-attention with biased q, k, v and output projections."""

    def __init__(self, width, heads):
        super().__init__()
        if width % heads:
            raise ValueError(f'width {width} is not a multiple of '
                             f'{heads} heads')
        self.heads = heads
        self.head_dim = width // heads
        self.q_proj = nn.Linear(width, width)
        self.k_proj = nn.Linear(width, width)
        self.v_proj = nn.Linear(width, width)
        self.out_proj = nn.Linear(width, width)

    def _split(self, x):
        batch, length, _ = x.shape
        return x.reshape(batch, length, self.heads,
                         self.head_dim).transpose(1, 2)

    def forward(self, x, bias=None):
        batch, length, width = x.shape
        q = self._split(self.q_proj(x)) * (self.head_dim ** -0.5)
        k = self._split(self.k_proj(x))
        v = self._split(self.v_proj(x))
        scores = q @ k.transpose(-1, -2)
        if bias is not None:
            scores = scores + bias
        weights = scores.softmax(dim=-1)
        out = (weights @ v).transpose(1, 2).reshape(batch, length, width)
        return self.out_proj(out)


class Block(nn.Module):
    """A pre-LN transformer block: x + attn(ln(x)), then x + mlp(ln(x))."""

    def __init__(self, width, heads, intermediate, eps):
        super().__init__()
        self.layer_norm1 = nn.LayerNorm(width, eps=eps)
        self.self_attn = Attention(width, heads)
        self.layer_norm2 = nn.LayerNorm(width, eps=eps)
        self.fc1 = nn.Linear(width, intermediate)
        self.fc2 = nn.Linear(intermediate, width)

    def forward(self, x, bias=None):
        x = x + self.self_attn(self.layer_norm1(x), bias)
        return x + self.fc2(quick_gelu(self.fc1(self.layer_norm2(x))))


class VisionTower(nn.Module):
    """ViT image encoder: pixel_values [B, 3, H, W] -> image_embeds [B, P]."""

    def __init__(self, cfg, projection_dim, eps):
        super().__init__()
        width = cfg['hidden_size']
        grid = cfg['image_size'] // cfg['patch_size']
        self.patch_embedding = nn.Conv2d(3, width, cfg['patch_size'],
                                         stride=cfg['patch_size'], bias=False)
        self.class_embedding = nn.Parameter(torch.randn(width) * width ** -0.5)
        self.position_embedding = nn.Parameter(
            torch.randn(grid * grid + 1, width) * 0.02)
        self.pre_layrnorm = nn.LayerNorm(width, eps=eps)
        self.layers = nn.ModuleList(
            Block(width, cfg['num_attention_heads'], cfg['intermediate_size'],
                  eps) for _ in range(cfg['num_hidden_layers']))
        self.post_layernorm = nn.LayerNorm(width, eps=eps)
        self.visual_projection = nn.Linear(width, projection_dim, bias=False)

    def forward(self, pixel_values):
        patches = self.patch_embedding(pixel_values).flatten(2).transpose(1, 2)
        cls = self.class_embedding.expand(patches.shape[0], 1, -1)
        x = torch.cat([cls, patches], dim=1) + self.position_embedding
        x = self.pre_layrnorm(x)
        for layer in self.layers:
            x = layer(x)
        return self.visual_projection(self.post_layernorm(x[:, 0, :]))


class TextTower(nn.Module):
    """Causal text encoder: (input_ids, attention_mask) [B, S] -> text_embeds [B, P]."""

    def __init__(self, cfg, projection_dim, eps):
        super().__init__()
        width = cfg['hidden_size']
        self.token_embedding = nn.Embedding(VOCAB_SIZE, width)
        nn.init.normal_(self.token_embedding.weight, std=0.02)
        self.position_embedding = nn.Parameter(
            torch.randn(CONTEXT_LENGTH, width) * 0.01)
        self.layers = nn.ModuleList(
            Block(width, cfg['num_attention_heads'], cfg['intermediate_size'],
                  eps) for _ in range(cfg['num_hidden_layers']))
        self.final_layer_norm = nn.LayerNorm(width, eps=eps)
        self.text_projection = nn.Linear(width, projection_dim, bias=False)

    def forward(self, input_ids, attention_mask):
        length = input_ids.shape[1]
        x = self.token_embedding(input_ids) + self.position_embedding[:length]

        # A key is visible when it is not in the future and not padding,
        # which is how CLIPTextModel combines its two masks.
        positions = torch.arange(length, device=input_ids.device)
        causal = positions[None, :] <= positions[:, None]
        visible = causal[None, None, :, :] & (attention_mask[:, None, None, :] > 0)
        bias = (1.0 - visible.float()) * MASK_BIAS

        for layer in self.layers:
            x = layer(x, bias)
        x = self.final_layer_norm(x)

        # CLIP pools at the end token, the largest id, so argmax finds the
        # first one even when padding repeats it.
        end = input_ids.argmax(dim=-1)
        index = end[:, None, None].expand(-1, 1, x.shape[2])
        pooled = x.gather(1, index)[:, 0, :]
        return self.text_projection(pooled)


class TinyClip(nn.Module):
    """Both towers and the learned logit scale."""

    def __init__(self, config=DEFAULT_CONFIG):
        super().__init__()
        self.config = config
        eps = config['layer_norm_eps']
        self.vision = VisionTower(config['vision'], config['projection_dim'], eps)
        self.text = TextTower(config['text'], config['projection_dim'], eps)
        self.logit_scale = nn.Parameter(torch.tensor(LOGIT_SCALE_INIT))


def hf_config(config, logit_scale):
    """Return config.json of a Hugging Face CLIPModel for this model."""
    eps = config['layer_norm_eps']
    common = {'hidden_act': 'quick_gelu', 'layer_norm_eps': eps,
              'attention_dropout': 0.0, 'dropout': 0.0,
              'initializer_factor': 1.0, 'initializer_range': 0.02,
              'projection_dim': config['projection_dim']}
    text = dict(config['text'], model_type='clip_text_model',
                vocab_size=VOCAB_SIZE,
                max_position_embeddings=CONTEXT_LENGTH,
                bos_token_id=BOS_TOKEN_ID, eos_token_id=EOS_TOKEN_ID,
                pad_token_id=PAD_TOKEN_ID, **common)
    vision = dict(config['vision'], model_type='clip_vision_model',
                  num_channels=3, **common)
    return {
        'architectures': ['CLIPModel'],
        'model_type': 'clip',
        'projection_dim': config['projection_dim'],
        'logit_scale_init_value': round(LOGIT_SCALE_INIT, 4),
        'initializer_factor': 1.0,
        'torch_dtype': 'float32',
        'text_config': text,
        'vision_config': vision,
        # Not part of the Hugging Face layout: the trained temperature,
        # kept so that a reader need not open the weights.
        'trained_logit_scale': round(float(logit_scale), 4),
    }
