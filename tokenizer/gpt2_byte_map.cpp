#include "tokenizer/gpt2_byte_map.h"

#include <array>

#include "util/utf8.h"

namespace minigpt {

namespace {

struct ByteMap {
    std::array<uint32_t, 256> to_cp{};
    std::array<int16_t, 0x144> from_cp{};  // code points used are < U+0144; -1 = unmapped
    ByteMap() {
        from_cp.fill(-1);
        auto kept = [](int b) { return (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF); };
        uint32_t next = 256;
        for (int b = 0; b < 256; ++b) {
            to_cp[b] = kept(b) ? uint32_t(b) : next++;
            from_cp[to_cp[b]] = int16_t(b);
        }
    }
};

const ByteMap& byte_map() {
    static const ByteMap map;
    return map;
}

}  // namespace

uint32_t gpt2_byte_to_code_point(uint8_t b) { return byte_map().to_cp[b]; }

std::string gpt2_bytes_to_token_text(std::string_view bytes) {
    std::string text;
    text.reserve(bytes.size() * 2);
    for (unsigned char b : bytes) append_utf8(byte_map().to_cp[b], &text);
    return text;
}

bool gpt2_token_text_to_bytes(std::string_view text, std::string* bytes) {
    const ByteMap& map = byte_map();
    bytes->clear();
    const auto* s = reinterpret_cast<const unsigned char*>(text.data());
    for (size_t i = 0; i < text.size();) {
        uint32_t cp;
        i += decode_utf8(s + i, text.size() - i, &cp);
        if (cp >= map.from_cp.size() || map.from_cp[cp] < 0) return false;
        bytes->push_back(char(map.from_cp[cp]));
    }
    return true;
}

}  // namespace minigpt
