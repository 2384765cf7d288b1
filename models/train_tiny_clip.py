#!/usr/bin/python3
"""Train the tiny CLIP of tiny_clip.py on Fashion-MNIST with captions.

Each image is paired with one caption of its class, drawn at random from
prompts.TEMPLATES x prompts.SYNONYMS. Many images of a batch share a class, so
the symmetric InfoNCE loss uses soft targets: every pair of the same class is
a positive, and the target of a row is uniform over its positives.

The last fashion_mnist.VALIDATION_SIZE training images are never trained on;
they only report zero-shot accuracy after each epoch. The state dict and a
log go to models/cache/ (not committed).

Usage: train_tiny_clip.py [--epochs N] [--out models/cache]
"""

import argparse
import json
import math
import os
import sys
import time

# Passive waiting lets an OpenMP thread sleep instead of spinning, which
# keeps two threads from stalling each other when another process takes a
# core. libgomp reads this when torch loads it, so it is set before import.
os.environ.setdefault('OMP_WAIT_POLICY', 'PASSIVE')

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import fashion_mnist  # noqa: E402
import prompts  # noqa: E402
from make_tokenizer import load_clip_tokenizer  # noqa: E402
from tiny_clip import DEFAULT_CONFIG, LOGIT_SCALE_MAX, TinyClip  # noqa: E402

SEED = 0
THREADS = 2

# Largest shift, in pixels of the resized image, of the random translation.
MAX_SHIFT = 3


def tokenize_all(tokenizer, texts):
    """Return (ids, mask) int64 [N, L], cut to the longest text's length."""
    ids = np.array([tokenizer.encode(t) for t in texts], dtype=np.int64)
    lengths = (ids != tokenizer.end_id).sum(axis=1) + 1
    length = int(lengths.max())
    mask = (np.arange(length)[None, :] < lengths[:, None]).astype(np.int64)
    return ids[:, :length], mask


def load_resized(split, size, cache_dir):
    """Return (uint8 [N, size, size], labels) for a split, cached as .npz."""
    path = os.path.join(cache_dir, f'{split}_{size}.npz')
    if os.path.exists(path):
        data = np.load(path)
        return data['images'], data['labels']
    images, labels = fashion_mnist.load_split(split)
    resized = fashion_mnist.resize_bicubic(images, size)
    np.savez(path, images=resized, labels=labels)
    return resized, labels


def augment(batch, rng):
    """Flip half the images left-right and shift each by up to MAX_SHIFT pixels."""
    count, size, _ = batch.shape
    padded = np.pad(batch, ((0, 0), (MAX_SHIFT, MAX_SHIFT),
                            (MAX_SHIFT, MAX_SHIFT)))
    flips = rng.random(count) < 0.5
    offsets = rng.integers(0, 2 * MAX_SHIFT + 1, size=(count, 2))
    out = np.empty_like(batch)
    for i in range(count):
        top, left = offsets[i]
        crop = padded[i, top:top + size, left:left + size]
        out[i] = crop[:, ::-1] if flips[i] else crop
    return out


def class_embeddings(model, prompt_ids, prompt_mask):
    """Return unit class embeddings [C, P]: mean of unit prompt embeddings."""
    classes, templates, length = prompt_ids.shape
    embeds = model.text(prompt_ids.reshape(-1, length),
                        prompt_mask.reshape(-1, length))
    embeds = F.normalize(embeds, dim=-1).reshape(classes, templates, -1)
    return F.normalize(embeds.mean(dim=1), dim=-1)


@torch.no_grad()
def zero_shot_accuracy(model, images, labels, prompt_ids, prompt_mask):
    model.eval()
    text = class_embeddings(model, prompt_ids, prompt_mask)
    correct = 0
    for start in range(0, len(images), 1000):
        pixels = torch.from_numpy(fashion_mnist.normalize(
            images[start:start + 1000]))
        scores = F.normalize(model.vision(pixels), dim=-1) @ text.T
        predicted = scores.argmax(dim=1).numpy()
        correct += int((predicted == labels[start:start + 1000]).sum())
    model.train()
    return correct / len(images)


def soft_clip_loss(image_embeds, text_embeds, labels, logit_scale):
    """Symmetric InfoNCE where all pairs of one class are positives."""
    logits = logit_scale.exp() * (F.normalize(image_embeds, dim=-1)
                                  @ F.normalize(text_embeds, dim=-1).T)
    same = (labels[:, None] == labels[None, :]).float()
    targets = same / same.sum(dim=1, keepdim=True)
    image_loss = -(targets * logits.log_softmax(dim=1)).sum(dim=1).mean()
    text_loss = -(targets * logits.log_softmax(dim=0)).sum(dim=0).mean()
    return (image_loss + text_loss) / 2


def make_optimizer(model, lr, weight_decay):
    """AdamW that decays matrices and convolutions but not embeddings, norms or biases."""
    decay, no_decay = [], []
    for name, param in model.named_parameters():
        is_matrix = param.ndim >= 2 and 'embedding' not in name
        (decay if is_matrix else no_decay).append(param)
    return torch.optim.AdamW([{'params': decay, 'weight_decay': weight_decay},
                              {'params': no_decay, 'weight_decay': 0.0}],
                             lr=lr, betas=(0.9, 0.98), eps=1e-6)


def learning_rate(step, total, warmup, peak):
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return peak * 0.5 * (1 + math.cos(math.pi * progress))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--epochs', type=int, default=10,
                        help='passes over the 55,000 training images')
    parser.add_argument('--batch-size', type=int, default=256)
    parser.add_argument('--lr', type=float, default=1.5e-3,
                        help='peak AdamW learning rate')
    parser.add_argument('--weight-decay', type=float, default=0.05)
    parser.add_argument('--warmup-steps', type=int, default=300)
    parser.add_argument('--out', default=os.path.join(HERE, 'cache'),
                        help='folder for tiny_clip.pt and train_log.json')
    args = parser.parse_args()

    torch.manual_seed(SEED)
    torch.set_num_threads(THREADS)
    torch.use_deterministic_algorithms(True)
    rng = np.random.default_rng(SEED)
    os.makedirs(args.out, exist_ok=True)
    started = time.time()

    # Data: the last VALIDATION_SIZE training images are held out.
    size = DEFAULT_CONFIG['vision']['image_size']
    images, labels = load_resized('train', size, args.out)
    train_images = images[:-fashion_mnist.VALIDATION_SIZE]
    train_labels = labels[:-fashion_mnist.VALIDATION_SIZE].astype(np.int64)
    val_images = images[-fashion_mnist.VALIDATION_SIZE:]
    val_labels = labels[-fashion_mnist.VALIDATION_SIZE:]

    # Captions, tokenized once: caption_ids[c] holds every caption of class c.
    tokenizer = load_clip_tokenizer()
    caption_ids, caption_mask = [], []
    for label in range(len(prompts.SYNONYMS)):
        ids, mask = tokenize_all(tokenizer, prompts.class_captions(label))
        caption_ids.append(torch.from_numpy(ids))
        caption_mask.append(torch.from_numpy(mask))
    prompt_ids, prompt_mask = tokenize_all(tokenizer, [
        p for name in fashion_mnist.FOLDER_NAMES
        for p in prompts.zero_shot_prompts(name)])
    shape = (len(fashion_mnist.FOLDER_NAMES), len(prompts.TEMPLATES), -1)
    prompt_ids = torch.from_numpy(prompt_ids).reshape(shape)
    prompt_mask = torch.from_numpy(prompt_mask).reshape(shape)

    model = TinyClip(DEFAULT_CONFIG)
    optimizer = make_optimizer(model, args.lr, args.weight_decay)
    steps_per_epoch = len(train_images) // args.batch_size
    total_steps = steps_per_epoch * args.epochs
    log = {'args': vars(args), 'seed': SEED, 'threads': THREADS, 'epochs': []}
    step = 0

    for epoch in range(args.epochs):
        order = rng.permutation(len(train_images))
        epoch_loss = 0.0
        for batch in range(steps_per_epoch):
            index = order[batch * args.batch_size:(batch + 1) * args.batch_size]
            pixels = torch.from_numpy(fashion_mnist.normalize(
                augment(train_images[index], rng)))
            batch_labels = train_labels[index]

            # One random caption per image, padded to the batch's longest.
            picks = [int(rng.integers(len(caption_ids[c]))) for c in batch_labels]
            length = max(caption_ids[c].shape[1] for c in set(batch_labels))
            ids = torch.full((len(index), length), tokenizer.end_id,
                             dtype=torch.int64)
            mask = torch.zeros((len(index), length), dtype=torch.int64)
            for row, (c, pick) in enumerate(zip(batch_labels, picks)):
                width = caption_ids[c].shape[1]
                ids[row, :width] = caption_ids[c][pick]
                mask[row, :width] = caption_mask[c][pick]

            for group in optimizer.param_groups:
                group['lr'] = learning_rate(step, total_steps,
                                            args.warmup_steps, args.lr)
            loss = soft_clip_loss(model.vision(pixels), model.text(ids, mask),
                                  torch.from_numpy(batch_labels),
                                  model.logit_scale)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            with torch.no_grad():
                model.logit_scale.clamp_(0, LOGIT_SCALE_MAX)
            epoch_loss += float(loss)
            step += 1
            if step % 50 == 0:
                print(f'step {step}/{total_steps} loss {float(loss):.4f} '
                      f'{time.time() - started:.0f} s', flush=True)

        accuracy = zero_shot_accuracy(model, val_images, val_labels,
                                      prompt_ids, prompt_mask)
        record = {'epoch': epoch + 1, 'loss': epoch_loss / steps_per_epoch,
                  'val_zero_shot_top1': accuracy,
                  'logit_scale': float(model.logit_scale.exp()),
                  'elapsed_s': round(time.time() - started, 1)}
        log['epochs'].append(record)
        print(json.dumps(record), flush=True)

    torch.save({'config': DEFAULT_CONFIG, 'state_dict': model.state_dict()},
               os.path.join(args.out, 'tiny_clip.pt'))
    log['wall_s'] = round(time.time() - started, 1)
    with open(os.path.join(args.out, 'train_log.json'), 'w') as f:
        json.dump(log, f, indent=2)
    print(f'trained {args.epochs} epochs in {log["wall_s"]} s', flush=True)


if __name__ == '__main__':
    sys.exit(main())
