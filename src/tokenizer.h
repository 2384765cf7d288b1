// The CLIP text tokenizer: byte-level BPE with the `</w>` end-of-word
// suffix, read from a Hugging Face tokenizer.json and matching the fast
// CLIPTokenizer of Hugging Face on the ids it produces.
//
// Encoding runs these steps:
//   1. Decode UTF-8. Each invalid byte sequence becomes U+FFFD, as in
//      Rust's String::from_utf8_lossy.
//   2. Split out added tokens with "normalized": false, then normalize the
//      rest: NFC, each run of white space to one space, lowercase.
//   3. Split out added tokens with "normalized": true (CLIP's two special
//      tokens), so `<|endoftext|>` written in the text becomes id 49407.
//   4. Split the rest with CLIP's pattern ('s 't 're 've 'm 'll 'd, runs of
//      letters, single digits, runs of other non-space characters).
//   5. Map each word's UTF-8 bytes to the byte-level alphabet, add `</w>`
//      to the last symbol, and apply the merges by rank.
//
// Padding: EncodeForModel pads with the end token (`<|endoftext|>`, 49407
// for CLIP), as Hugging Face's CLIPTokenizer does because its pad_token is
// `<|endoftext|>`. CLIP's text tower pools the output at the first end
// token: the original code takes the argmax of the ids, which is the first
// 49407 since it is the highest id and torch.argmax returns the first
// maximum. Padding with 49407 keeps that position, and the causal attention
// mask keeps the pad positions from changing the pooled output.
#ifndef DUALMEM_TOKENIZER_H_
#define DUALMEM_TOKENIZER_H_

#include <cstdint>
#include <memory>
#include <string_view>
#include <vector>

#include "status.h"

namespace dualmem {

class Tokenizer {
 public:
  // Reads a Hugging Face tokenizer.json: a BPE model with vocab, merges
  // ("a b" strings or [a, b] pairs), end_of_word_suffix and unk_token, the
  // added tokens, and a RobertaProcessing or BertProcessing post-processor
  // for the start and end tokens. The normalizer and pre-tokenizer must be
  // CLIP's (see above); "truncation", "padding" and "decoder" are ignored.
  // Errors name the field: kParseError for text that is not JSON,
  // kInvalidArgument for a missing or malformed field, kUnsupported for a
  // valid setting this class does not implement. `*out` is set only on
  // success.
  static Status FromJson(std::string_view tokenizer_json,
                         std::unique_ptr<Tokenizer>* out);

  // Encodes UTF-8 text (invalid bytes become U+FFFD) into start + content
  // tokens + end, without truncation. Replaces `*ids`.
  Status Encode(std::string_view utf8, std::vector<int32_t>* ids) const;

  // Encodes for a text tower of `context_length` positions: start, the first
  // context_length - 2 content tokens, end, then pad_id() up to
  // context_length. `attention_mask` gets 1 for start, content and end and
  // 0 for padding. Fails with kInvalidArgument when context_length < 2 and
  // kLimitExceeded when it is above 65536; outputs are unchanged on failure.
  Status EncodeForModel(std::string_view utf8, int context_length,
                        std::vector<int32_t>* ids,
                        std::vector<int32_t>* attention_mask) const;

  ~Tokenizer();

  int32_t start_id() const;
  int32_t end_id() const;
  // The end token; see the file comment for the reason.
  int32_t pad_id() const { return end_id(); }
  // Number of entries in model.vocab.
  size_t vocab_size() const;

 private:
  // Vocabulary, merge ranks, added tokens and the per-word cache; defined
  // in tokenizer.cc.
  struct Model;
  explicit Tokenizer(std::unique_ptr<Model> model);

  std::unique_ptr<Model> model_;
};

}  // namespace dualmem

#endif  // DUALMEM_TOKENIZER_H_
