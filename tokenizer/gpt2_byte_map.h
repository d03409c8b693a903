// GPT-2's reversible byte <-> printable character map (openai/gpt-2 encoder.py,
// bytes_to_unicode): vocab.json, merges.txt and GGUF's tokenizer.ggml.tokens
// write every byte as one character, so that no token text contains a space or
// a control character. Printable Latin-1 bytes map to themselves; the other 68
// bytes map to U+0100 and up, in byte order (space 0x20 -> U+0120 'Ġ').
#pragma once
#include <cstdint>
#include <string>
#include <string_view>

namespace minigpt {

// The code point that stands for byte b.
uint32_t gpt2_byte_to_code_point(uint8_t b);

// Raw bytes -> token text (UTF-8 of the mapped characters).
std::string gpt2_bytes_to_token_text(std::string_view bytes);

// Token text -> raw bytes. False (and *bytes unspecified) when the text is not
// valid UTF-8 or holds a character outside the 256 mapped ones.
bool gpt2_token_text_to_bytes(std::string_view text, std::string* bytes);

}  // namespace minigpt
