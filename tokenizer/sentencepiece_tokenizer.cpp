#include "tokenizer/sentencepiece_tokenizer.h"

#include <sentencepiece_processor.h>

#include <algorithm>
#include <cstring>
#include <stdexcept>

namespace minigpt {

namespace {

const std::string kSpaceSymbol = "\xE2\x96\x81";  // U+2581, SentencePiece's visible space

// Minimal protobuf wire-format reader: enough to walk fields and skip the rest.
class ProtoReader {
public:
    ProtoReader(const char* data, size_t size, const char* what) : p_(data), n_(size), what_(what) {}
    bool done() const { return pos_ >= n_; }
    uint64_t varint() {
        uint64_t v = 0;
        for (int shift = 0; shift < 64; shift += 7) {
            if (pos_ >= n_) fail("a varint that ends before the message does");
            const unsigned char b = (unsigned char)p_[pos_++];
            v |= uint64_t(b & 0x7F) << shift;
            if (!(b & 0x80)) return v;
        }
        fail("a varint of at most 10 bytes");
    }
    // Reads one field header; returns the wire type.
    int field(uint32_t* number) {
        const uint64_t key = varint();
        *number = uint32_t(key >> 3);
        return int(key & 7);
    }
    std::pair<const char*, size_t> bytes() {
        const uint64_t len = varint();
        if (len > n_ - pos_) fail("a length-delimited field inside the message");
        const char* start = p_ + pos_;
        pos_ += size_t(len);
        return {start, size_t(len)};
    }
    void skip(int wire_type) {
        switch (wire_type) {
            case 0: varint(); return;
            case 1: advance(8); return;
            case 2: bytes(); return;
            case 5: advance(4); return;
            default: fail("a known wire type (0, 1, 2 or 5), found " + std::to_string(wire_type));
        }
    }
private:
    void advance(size_t k) {
        if (k > n_ - pos_) fail("a fixed-size field inside the message");
        pos_ += k;
    }
    [[noreturn]] void fail(const std::string& expected) const {
        throw std::runtime_error(std::string("SentencePiece model: ") + what_ + ": offset " +
                                 std::to_string(pos_) + ": expected " + expected);
    }
    const char* p_;
    size_t n_;
    size_t pos_ = 0;
    const char* what_;
};

// libsentencepiece builds a trie of the pieces (Darts) whose builder throws, through
// frames that cannot pass exceptions (std::terminate), on an empty piece or one
// holding a NUL byte. No real model has either: they are refused before the library
// sees the model. (Found by tests/fuzz/fuzz_sentencepiece.cpp.)
void check_pieces(const std::string& model_proto) {
    ProtoReader model(model_proto.data(), model_proto.size(), "ModelProto");
    size_t index = 0;
    while (!model.done()) {
        uint32_t number;
        const int type = model.field(&number);
        if (number != 1 || type != 2) {  // ModelProto.pieces = 1
            model.skip(type);
            continue;
        }
        const auto [data, size] = model.bytes();
        ProtoReader piece(data, size, "SentencePiece");
        bool has_text = false;
        while (!piece.done()) {
            uint32_t n;
            const int t = piece.field(&n);
            if (n != 1 || t != 2) {  // SentencePiece.piece = 1
                piece.skip(t);
                continue;
            }
            const auto [text, len] = piece.bytes();
            if (len == 0 || std::memchr(text, 0, len))
                throw std::runtime_error("SentencePiece model: piece " + std::to_string(index) +
                                         (len == 0 ? " is empty" : " contains a NUL byte"));
            has_text = true;
        }
        if (!has_text) throw std::runtime_error("SentencePiece model: piece " + std::to_string(index) + " has no text");
        ++index;
    }
}

}  // namespace

SentencePieceNormalizerFlags read_normalizer_flags(const std::string& model_proto) {
    SentencePieceNormalizerFlags flags;
    ProtoReader model(model_proto.data(), model_proto.size(), "ModelProto");
    while (!model.done()) {
        uint32_t number;
        const int type = model.field(&number);
        if (number != 3 || type != 2) {  // ModelProto.normalizer_spec = 3
            model.skip(type);
            continue;
        }
        const auto [data, size] = model.bytes();
        ProtoReader spec(data, size, "NormalizerSpec");
        while (!spec.done()) {
            uint32_t n;
            const int t = spec.field(&n);
            if (n == 3 && t == 0) flags.add_dummy_prefix = spec.varint() != 0;
            else if (n == 4 && t == 0) flags.remove_extra_whitespaces = spec.varint() != 0;
            else spec.skip(t);
        }
    }
    return flags;
}

SentencePieceTokenizer::SentencePieceTokenizer(const TokenizerSpec& spec)
    : sp_(std::make_unique<sentencepiece::SentencePieceProcessor>()),
      bos_id_(spec.bos_id), eos_id_(spec.eos_id), add_bos_(spec.add_bos) {
    if (spec.sentencepiece_proto.empty())
        throw std::runtime_error("SentencePiece tokenizer: the spec has no serialized model "
                                 "(GGUF key tokenizer.sentencepiece.model_proto)");
    flags_ = read_normalizer_flags(spec.sentencepiece_proto);
    check_pieces(spec.sentencepiece_proto);
    const auto status = sp_->LoadFromSerializedProto(spec.sentencepiece_proto);
    if (!status.ok()) throw std::runtime_error("SentencePiece tokenizer: cannot load the model: " + status.ToString());

    // GGUF files may pad the vocabulary past the model's pieces ("[PAD<id>]"
    // tokens, as llama.cpp's converter writes them for a larger embedding):
    // those ids decode to nothing.
    const int n = sp_->GetPieceSize();
    n_pieces_ = n;
    if (!spec.tokens.empty() && spec.tokens.size() < size_t(n))
        throw std::runtime_error("SentencePiece tokenizer: the GGUF vocabulary has " +
                                 std::to_string(spec.tokens.size()) + " tokens but the model has " +
                                 std::to_string(n) + " pieces");
    const size_t vocab = std::max(size_t(n), spec.tokens.size());
    for (int32_t id : {spec.bos_id, spec.eos_id})
        if (id >= int32_t(vocab)) throw std::runtime_error("SentencePiece tokenizer: BOS/EOS id " + std::to_string(id) +
                                                           " is outside the vocabulary of " + std::to_string(vocab));
    pieces_.resize(vocab);
    word_piece_.assign(vocab, false);
    for (int id = 0; id < n; ++id) {
        const std::string& piece = sp_->IdToPiece(id);
        if (!spec.tokens.empty() && spec.tokens[size_t(id)] != piece)
            throw std::runtime_error("SentencePiece tokenizer: token " + std::to_string(id) + " is \"" +
                                     spec.tokens[size_t(id)] + "\" in the GGUF vocabulary but \"" + piece +
                                     "\" in the model");
        std::string& out = pieces_[size_t(id)];
        if (sp_->IsControl(id)) continue;  // <s>, </s>: invisible
        if (sp_->IsUnknown(id)) { out = sp_->DecodeIds({id}); continue; }
        if (sp_->IsByte(id)) {  // "<0xAB>"
            out.assign(1, char(std::stoi(piece.substr(3, 2), nullptr, 16)));
            continue;
        }
        word_piece_[size_t(id)] = true;
        for (size_t i = 0; i < piece.size();) {
            if (piece.compare(i, kSpaceSymbol.size(), kSpaceSymbol) == 0) {
                out.push_back(' ');
                i += kSpaceSymbol.size();
            } else {
                out.push_back(piece[i++]);
            }
        }
    }
}

SentencePieceTokenizer::~SentencePieceTokenizer() = default;

std::vector<int32_t> SentencePieceTokenizer::encode(std::string_view text, bool /*allow_special*/) const {
    std::vector<int> ids;
    const auto status = sp_->Encode(absl::string_view(text.data(), text.size()), &ids);
    if (!status.ok()) throw std::runtime_error("SentencePiece tokenizer: encode failed: " + status.ToString());
    return std::vector<int32_t>(ids.begin(), ids.end());
}

std::string SentencePieceTokenizer::decode(const std::vector<int32_t>& ids) const {
    for (int32_t id : ids)
        if (id < 0 || size_t(id) >= pieces_.size())
            throw std::runtime_error("SentencePiece tokenizer: token id " + std::to_string(id) +
                                     " is outside [0, " + std::to_string(pieces_.size()) + ")");
    std::vector<int> model_ids;
    model_ids.reserve(ids.size());
    for (int32_t id : ids)
        if (id < n_pieces_) model_ids.push_back(id);  // padding ids stand for nothing
    std::string text;
    const auto status = sp_->Decode(model_ids, &text);
    if (!status.ok()) throw std::runtime_error("SentencePiece tokenizer: decode failed: " + status.ToString());
    return text;
}

std::string SentencePieceTokenizer::token_bytes(int32_t id) const {
    if (id < 0 || size_t(id) >= pieces_.size())
        throw std::runtime_error("SentencePiece tokenizer: token id " + std::to_string(id) + " is outside [0, " +
                                 std::to_string(pieces_.size()) + ")");
    return pieces_[size_t(id)];
}

std::string SentencePieceTokenizer::first_token_bytes(int32_t id) const {
    std::string bytes = token_bytes(id);
    const std::string_view prefix = leading_prefix_to_strip();
    if (word_piece_[size_t(id)] && !prefix.empty() && bytes.compare(0, prefix.size(), prefix) == 0)
        bytes.erase(0, prefix.size());
    return bytes;
}

std::string_view SentencePieceTokenizer::leading_prefix_to_strip() const {
    return flags_.add_dummy_prefix || flags_.remove_extra_whitespaces ? std::string_view(" ") : std::string_view();
}

}  // namespace minigpt
