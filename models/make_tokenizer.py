#!/usr/bin/python3
"""Make the Hugging Face tokenizer files of OpenAI CLIP from its BPE merges.

Reads OpenAI's `bpe_simple_vocab_16e6.txt.gz` (a header line, then merges)
and writes `tokenizer.json`, `tokenizer_config.json` and
`special_tokens_map.json` in the layout Hugging Face publishes for
openai/clip-vit-base-patch32. Uses the standard library only.

The module also holds a reference encoder that follows the fast CLIP
tokenizer of Hugging Face (NFC, white space runs to one space, lowercase,
the CLIP split pattern, byte-level alphabet, BPE with `</w>`):

    sys.path.insert(0, 'models')
    from make_tokenizer import load_clip_tokenizer
    ids = load_clip_tokenizer().encode('a photo of a bolt.')  # 77 ids

Usage: make_tokenizer.py --out DIR [--vocab PATH]
"""

import argparse
import gzip
import heapq
import json
import os
import sys
import unicodedata

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_VOCAB = os.path.join(HERE, '..', 'tests', 'fixtures', 'clip',
                             'bpe_simple_vocab_16e6.txt.gz')

# OpenAI CLIP keeps the first 49152 - 256 - 2 merges of the file, so that
# 256 bytes, 256 bytes with `</w>`, the merges and 2 special tokens make 49408.
CLIP_MERGE_COUNT = 48894
CLIP_VOCAB_SIZE = 49408
START_TOKEN = '<|startoftext|>'
END_TOKEN = '<|endoftext|>'
END_OF_WORD_SUFFIX = '</w>'
# CLIP's text tower reads 77 positions (start token, 75 tokens, end token).
CONTEXT_LENGTH = 77

# Regular expressions of the fast CLIP tokenizer, as written in its JSON.
WHITESPACE_PATTERN = r'\s+'
SPLIT_PATTERN = (r"'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|"
                 r"[^\s\p{L}\p{N}]+")
CONTRACTIONS = ("'s", "'t", "'re", "'ve", "'m", "'ll", "'d")

# Code points with the Unicode White_Space property, which is what `\s`
# matches in the Oniguruma regular expressions of Hugging Face tokenizers.
# Python's str.isspace() differs (it adds U+001C..U+001F).
WHITE_SPACE = frozenset(
    [0x09, 0x0A, 0x0B, 0x0C, 0x0D, 0x20, 0x85, 0xA0, 0x1680] +
    list(range(0x2000, 0x200B)) + [0x2028, 0x2029, 0x202F, 0x205F, 0x3000])


def bytes_to_unicode():
    """Return the GPT-2 byte-level alphabet: 256 (byte, character) pairs.

    Printable Latin-1 bytes map to themselves and the others to U+0100 and
    up, in the order that gives CLIP's first 256 token ids.
    """
    printable = (list(range(ord('!'), ord('~') + 1)) +
                 list(range(ord('¡'), ord('¬') + 1)) +
                 list(range(ord('®'), ord('ÿ') + 1)))
    pairs = [(b, chr(b)) for b in printable]
    extra = 0
    for b in range(256):
        if b not in printable:
            pairs.append((b, chr(256 + extra)))
            extra += 1
    return pairs


def read_merges(vocab_path):
    """Read the merges CLIP uses as (left, right) pairs."""
    with gzip.open(vocab_path, 'rt', encoding='utf-8') as f:
        lines = f.read().split('\n')
    merges = []
    for number, line in enumerate(lines[1:1 + CLIP_MERGE_COUNT], start=2):
        parts = line.split()
        if len(parts) != 2:
            raise ValueError(f'{vocab_path}: line {number} has {len(parts)} '
                             f'parts, expected 2: {line!r}')
        merges.append((parts[0], parts[1]))
    if len(merges) != CLIP_MERGE_COUNT:
        raise ValueError(f'{vocab_path}: {len(merges)} merges, expected '
                         f'{CLIP_MERGE_COUNT}')
    return merges


def build_vocab(merges):
    """Return the token list of CLIP, index = id."""
    alphabet = [char for _, char in bytes_to_unicode()]
    tokens = alphabet + [c + END_OF_WORD_SUFFIX for c in alphabet]
    tokens += [left + right for left, right in merges]
    tokens += [START_TOKEN, END_TOKEN]
    if len(tokens) != CLIP_VOCAB_SIZE or len(set(tokens)) != len(tokens):
        raise ValueError(f'vocabulary has {len(tokens)} tokens '
                         f'({len(set(tokens))} distinct), expected '
                         f'{CLIP_VOCAB_SIZE} distinct')
    return tokens


def added_token(content, token_id=None):
    token = {}
    if token_id is not None:
        token['id'] = token_id
    token.update({'content': content, 'single_word': False, 'lstrip': False,
                  'rstrip': False, 'normalized': True})
    if token_id is not None:
        token['special'] = True
    return token


def tokenizer_json(tokens, merges):
    start_id = tokens.index(START_TOKEN)
    end_id = tokens.index(END_TOKEN)
    return {
        'version': '1.0',
        'truncation': None,
        'padding': None,
        'added_tokens': [added_token(START_TOKEN, start_id),
                         added_token(END_TOKEN, end_id)],
        'normalizer': {
            'type': 'Sequence',
            'normalizers': [
                {'type': 'NFC'},
                {'type': 'Replace', 'pattern': {'Regex': WHITESPACE_PATTERN},
                 'content': ' '},
                {'type': 'Lowercase'},
            ],
        },
        'pre_tokenizer': {
            'type': 'Sequence',
            'pretokenizers': [
                {'type': 'Split', 'pattern': {'Regex': SPLIT_PATTERN},
                 'behavior': 'Removed', 'invert': True},
                {'type': 'ByteLevel', 'add_prefix_space': False,
                 'trim_offsets': True, 'use_regex': False},
            ],
        },
        'post_processor': {
            'type': 'RobertaProcessing',
            'sep': [END_TOKEN, end_id],
            'cls': [START_TOKEN, start_id],
            'trim_offsets': False,
            'add_prefix_space': False,
        },
        'decoder': {'type': 'ByteLevel', 'add_prefix_space': True,
                    'trim_offsets': True, 'use_regex': True},
        'model': {
            'type': 'BPE',
            'dropout': None,
            'unk_token': END_TOKEN,
            'continuing_subword_prefix': '',
            'end_of_word_suffix': END_OF_WORD_SUFFIX,
            'fuse_unk': False,
            'vocab': {token: i for i, token in enumerate(tokens)},
            'merges': [f'{left} {right}' for left, right in merges],
        },
    }


def tokenizer_config_json():
    def typed(content):
        return dict(added_token(content), __type='AddedToken')
    return {
        'add_prefix_space': False,
        'bos_token': typed(START_TOKEN),
        'do_lower_case': True,
        'eos_token': typed(END_TOKEN),
        'errors': 'replace',
        'model_max_length': CONTEXT_LENGTH,
        'pad_token': END_TOKEN,
        'tokenizer_class': 'CLIPTokenizer',
        'unk_token': typed(END_TOKEN),
    }


def special_tokens_map_json():
    return {
        'bos_token': added_token(START_TOKEN),
        'eos_token': added_token(END_TOKEN),
        'pad_token': END_TOKEN,
        'unk_token': added_token(END_TOKEN),
    }


# --- reference encoder -----------------------------------------------------

def is_letter(char):
    return unicodedata.category(char).startswith('L')


def is_number(char):
    return unicodedata.category(char).startswith('N')


def is_white_space(char):
    return ord(char) in WHITE_SPACE


def normalize(text):
    """Apply NFC, turn white space runs into one space, then lowercase.

    Lowercasing goes one code point at a time, as Hugging Face does, so a
    final capital sigma becomes σ and not ς.
    """
    text = unicodedata.normalize('NFC', text)
    pieces = []
    in_space = False
    for char in text:
        if is_white_space(char):
            if not in_space:
                pieces.append(' ')
            in_space = True
        else:
            pieces.append(char.lower())
            in_space = False
    return ''.join(pieces)


def split_words(text):
    """Return the matches of the CLIP split pattern, left to right."""
    words = []
    i = 0
    n = len(text)
    while i < n:
        char = text[i]
        if is_white_space(char):
            i += 1
            continue
        end = i + 1
        contraction = next((c for c in CONTRACTIONS
                            if text.startswith(c, i)), None)
        if contraction:
            end = i + len(contraction)
        elif is_letter(char):
            while end < n and is_letter(text[end]):
                end += 1
        elif not is_number(char):
            while end < n and not (is_white_space(text[end]) or
                                   is_letter(text[end]) or
                                   is_number(text[end])):
                end += 1
        words.append(text[i:end])
        i = end
    return words


class ClipTokenizer:
    """CLIP BPE encoder that reproduces the fast Hugging Face tokenizer."""

    def __init__(self, tokens, merges):
        self.token_to_id = {token: i for i, token in enumerate(tokens)}
        self.ranks = {merge: rank for rank, merge in enumerate(merges)}
        self.byte_to_char = dict(bytes_to_unicode())
        self.start_id = self.token_to_id[START_TOKEN]
        self.end_id = self.token_to_id[END_TOKEN]
        self.cache = {}

    def bpe(self, word):
        """Return the token ids of one pre-tokenized word."""
        if word in self.cache:
            return self.cache[word]
        symbols = [self.byte_to_char[b] for b in word.encode('utf-8')]
        symbols[-1] += END_OF_WORD_SUFFIX
        # Merge the lowest-ranked adjacent pair until none is in the table.
        # A heap keeps this O(n log n) for long words.
        alive = [True] * len(symbols)
        next_index = list(range(1, len(symbols))) + [-1]
        prev_index = list(range(-1, len(symbols) - 1))
        heap = []

        def push(i):
            j = next_index[i]
            if j >= 0:
                rank = self.ranks.get((symbols[i], symbols[j]))
                if rank is not None:
                    heapq.heappush(heap, (rank, i, symbols[i], symbols[j]))

        for i in range(len(symbols) - 1):
            push(i)
        while heap:
            rank, i, left, right = heapq.heappop(heap)
            j = next_index[i] if alive[i] else -1
            if j < 0 or symbols[i] != left or symbols[j] != right:
                continue  # stale entry
            symbols[i] = left + right
            alive[j] = False
            next_index[i] = next_index[j]
            if next_index[j] >= 0:
                prev_index[next_index[j]] = i
            push(i)
            if prev_index[i] >= 0:
                push(prev_index[i])
        ids = [self.token_to_id[s] for s, a in zip(symbols, alive) if a]
        self.cache[word] = ids
        return ids

    def encode_ids(self, text):
        """Return start + content ids + end, without truncation."""
        ids = [self.start_id]
        specials = {START_TOKEN: self.start_id, END_TOKEN: self.end_id}
        # The special tokens are `normalized` added tokens, so Hugging Face
        # normalizes the whole text first and then searches them in it.
        for piece in split_on_specials(normalize(text), specials):
            if isinstance(piece, int):
                ids.append(piece)
                continue
            for word in split_words(piece):
                ids.extend(self.bpe(word))
        ids.append(self.end_id)
        return ids

    def encode(self, text, context_length=CONTEXT_LENGTH):
        """Return `context_length` ids: start, content, end, then padding.

        Long texts keep the first context_length - 2 content tokens.
        Padding is the end token (49407), as the Hugging Face CLIP tokenizer
        pads with `<|endoftext|>`.
        """
        ids = self.encode_ids(text)
        content = ids[1:-1][:context_length - 2]
        ids = [self.start_id] + content + [self.end_id]
        return ids + [self.end_id] * (context_length - len(ids))


def split_on_specials(text, specials):
    """Split text into strings and special token ids, left to right."""
    pieces = []
    start = 0
    i = 0
    while i < len(text):
        match = next((t for t in specials if text.startswith(t, i)), None)
        if match is None:
            i += 1
            continue
        if i > start:
            pieces.append(text[start:i])
        pieces.append(specials[match])
        i += len(match)
        start = i
    if start < len(text):
        pieces.append(text[start:])
    return pieces


def load_clip_tokenizer(vocab_path=DEFAULT_VOCAB):
    """Return a ClipTokenizer for the CLIP merges file at `vocab_path`."""
    merges = read_merges(vocab_path)
    return ClipTokenizer(build_vocab(merges), merges)


def encode(text, context_length=CONTEXT_LENGTH):
    """Encode with the default CLIP vocabulary (loaded once)."""
    global _default_tokenizer
    if _default_tokenizer is None:
        _default_tokenizer = load_clip_tokenizer()
    return _default_tokenizer.encode(text, context_length)


_default_tokenizer = None


def write_json(path, value):
    with open(path, 'w', encoding='utf-8') as f:
        json.dump(value, f, ensure_ascii=False, indent=2)
        f.write('\n')


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--out', required=True,
                        help='folder for the three JSON files (created)')
    parser.add_argument('--vocab', default=DEFAULT_VOCAB,
                        help='OpenAI CLIP bpe_simple_vocab_16e6.txt.gz')
    args = parser.parse_args()

    merges = read_merges(args.vocab)
    tokens = build_vocab(merges)
    os.makedirs(args.out, exist_ok=True)
    write_json(os.path.join(args.out, 'tokenizer.json'),
               tokenizer_json(tokens, merges))
    write_json(os.path.join(args.out, 'tokenizer_config.json'),
               tokenizer_config_json())
    write_json(os.path.join(args.out, 'special_tokens_map.json'),
               special_tokens_map_json())
    print(f'wrote {len(tokens)} tokens and {len(merges)} merges to {args.out}')


if __name__ == '__main__':
    sys.exit(main())
