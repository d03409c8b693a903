// SentencePiece tokenizer against golden ids and decodes from python3-sentencepiece
// 0.1.97 (scripts/gen_sentencepiece_tokenizer_golden.py), for two tiny BPE models
// with byte fallback: one with the dummy-prefix space, one without.
// Tolerance: none; ids and decoded bytes must be equal.
#include <doctest/doctest.h>

#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include <sentencepiece_processor.h>

#include "tokenizer/sentencepiece_tokenizer.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer_data.h"

using namespace minigpt;
using namespace minigpt::test;

namespace {

std::vector<int32_t> parse_ids(const std::string& s) {
    std::vector<int32_t> ids;
    std::istringstream in(s);
    for (int32_t id; in >> id;) ids.push_back(id);
    return ids;
}

std::string join(const std::vector<int32_t>& ids) {
    std::string out;
    for (int32_t id : ids) out += (out.empty() ? "" : " ") + std::to_string(id);
    return out;
}

std::vector<std::vector<std::string>> read_tsv(const std::string& path, size_t n_fields) {
    std::vector<std::vector<std::string>> rows;
    std::istringstream lines(read_all(path));
    for (std::string line; std::getline(lines, line);) {
        if (line.empty() || line[0] == '#') continue;
        std::vector<std::string> f;
        std::istringstream fields(line);
        for (std::string x; std::getline(fields, x, '\t');) f.push_back(x);
        while (f.size() < n_fields) f.push_back("");  // empty trailing fields (the empty text)
        REQUIRE_MESSAGE(f.size() == n_fields, "malformed line in " << path << ": " << line);
        rows.push_back(f);
    }
    return rows;
}

TokenizerSpec spm_spec(const std::string& model) {
    TokenizerSpec spec;
    spec.model = "sentencepiece";
    spec.sentencepiece_proto = read_all(kTokenizerData + model + ".model");
    spec.bos_id = 1;
    spec.eos_id = 2;
    spec.add_bos = true;
    return spec;
}

const Tokenizer& spm(const std::string& model) {
    static std::map<std::string, std::unique_ptr<Tokenizer>> loaded;
    auto& tok = loaded[model];
    if (!tok) tok = make_tokenizer(spm_spec(model));
    return *tok;
}

std::string stream_decode(const Tokenizer& tok, const std::vector<int32_t>& ids) {
    StreamDecoder dec(tok);
    std::string out;
    for (int32_t id : ids) out += dec.push(id);
    return out + dec.flush();
}

}  // namespace

TEST_CASE("sentencepiece: encode and decode equal the library's Python results") {
    const auto rows = read_tsv(kTokenizerData + "spm_cases.tsv", 5);
    CHECK(rows.size() >= 60);
    size_t n_invalid = 0;
    for (const auto& r : rows) {
        const Tokenizer& tok = spm(r[0]);
        const std::string text = from_hex(r[2]), want_decoded = from_hex(r[4]);
        const std::vector<int32_t> want = parse_ids(r[3]);
        const std::vector<int32_t> got = tok.encode(text);
        CHECK_MESSAGE(got == want, r[0] << " " << r[1] << ": ids " << join(got) << ", expected " << join(want));
        CHECK_MESSAGE(tok.decode(got) == want_decoded, r[0] << " " << r[1] << ": decode differs");
        CHECK_MESSAGE(stream_decode(tok, got) == want_decoded, r[0] << " " << r[1] << ": StreamDecoder differs");
        if (r[1].rfind("invalid_", 0) == 0) {
            ++n_invalid;  // SentencePiece turns malformed bytes into U+FFFD
            CHECK(want_decoded != text);
        } else {
            CHECK_MESSAGE(tok.decode(got) == text, r[0] << " " << r[1] << ": decode(encode(x)) != x");
        }
        CHECK_MESSAGE((got.empty() || got[0] != tok.bos_id()), "encode() must not add BOS");
    }
    CHECK(n_invalid == 10);
}

TEST_CASE("sentencepiece: decoding BOS/EOS, <unk> and invalid byte pieces equals the library's") {
    for (const auto& r : read_tsv(kTokenizerData + "spm_decode.tsv", 4)) {
        const Tokenizer& tok = spm(r[0]);
        const std::vector<int32_t> ids = parse_ids(r[2]);
        const std::string want = from_hex(r[3]);
        CHECK_MESSAGE(tok.decode(ids) == want, r[0] << " " << r[1]);
        CHECK_MESSAGE(stream_decode(tok, ids) == want, r[0] << " " << r[1] << ": StreamDecoder differs");
    }
}

TEST_CASE("sentencepiece: token bytes, dummy prefix and vocabulary") {
    const Tokenizer& with_prefix = spm("spm_bpe");
    const Tokenizer& no_prefix = spm("spm_bpe_noprefix");
    CHECK(with_prefix.leading_prefix_to_strip() == " ");
    CHECK(no_prefix.leading_prefix_to_strip().empty());
    CHECK(read_normalizer_flags(spm_spec("spm_bpe").sentencepiece_proto).add_dummy_prefix);
    CHECK_FALSE(read_normalizer_flags(spm_spec("spm_bpe_noprefix").sentencepiece_proto).add_dummy_prefix);
    CHECK_FALSE(read_normalizer_flags(spm_spec("spm_bpe").sentencepiece_proto).remove_extra_whitespaces);

    CHECK(with_prefix.vocab_size() == 500);
    CHECK(with_prefix.name() == "sentencepiece");
    CHECK(with_prefix.add_bos());
    CHECK(with_prefix.token_bytes(1).empty());  // <s>: control, invisible
    CHECK(with_prefix.token_bytes(2).empty());  // </s>
    // Byte pieces <0x00>..<0xFF> follow the three specials in a byte_fallback model.
    for (int b = 0; b < 256; ++b) CHECK(with_prefix.token_bytes(3 + b) == std::string(1, char(b)));
    // A word piece: U+2581 becomes a space.
    const std::vector<int32_t> ids = with_prefix.encode("the");
    REQUIRE(!ids.empty());
    CHECK(with_prefix.token_bytes(ids[0])[0] == ' ');
    CHECK_THROWS_WITH_AS(with_prefix.token_bytes(500), doctest::Contains("outside [0, 500)"), std::runtime_error);
    CHECK_THROWS_WITH_AS(with_prefix.decode({7, -1}), doctest::Contains("token id -1"), std::runtime_error);
}

TEST_CASE("sentencepiece: a GGUF vocabulary padded past the model's pieces") {
    // llama.cpp's converter pads tokenizer.ggml.tokens with "[PAD<id>]" up to the
    // embedding size; those ids are accepted and stand for no text.
    TokenizerSpec spec = spm_spec("spm_bpe");
    sentencepiece::SentencePieceProcessor sp;
    REQUIRE(sp.LoadFromSerializedProto(spec.sentencepiece_proto).ok());
    for (int id = 0; id < sp.GetPieceSize(); ++id) spec.tokens.push_back(sp.IdToPiece(id));
    spec.tokens.push_back("[PAD500]");
    spec.tokens.push_back("[PAD501]");
    const auto tok = make_tokenizer(spec);
    CHECK(tok->vocab_size() == 502);
    CHECK(tok->token_bytes(501).empty());
    std::vector<int32_t> ids = tok->encode("hello world");
    CHECK(ids == spm("spm_bpe").encode("hello world"));
    ids.insert(ids.begin() + 1, 500);
    CHECK(tok->decode(ids) == "hello world");
}

TEST_CASE("sentencepiece: bad specs fail with a clear message") {
    TokenizerSpec spec = spm_spec("spm_bpe");
    spec.tokens.assign(499, "x");
    CHECK_THROWS_WITH_AS(make_tokenizer(spec), doctest::Contains("499 tokens but the model has 500"), std::runtime_error);
    spec.tokens.assign(500, "x");
    CHECK_THROWS_WITH_AS(make_tokenizer(spec), doctest::Contains("token 0 is \"x\" in the GGUF vocabulary"),
                         std::runtime_error);
    spec = spm_spec("spm_bpe");
    spec.sentencepiece_proto = "\x0a\xff\xff";  // field 1, length 0x3fff..: runs past the end
    CHECK_THROWS_WITH_AS(make_tokenizer(spec), doctest::Contains("SentencePiece model"), std::runtime_error);
    spec.sentencepiece_proto.clear();
    CHECK_THROWS_WITH_AS(make_tokenizer(spec), doctest::Contains("no serialized model"), std::runtime_error);
    spec.model = "wordpiece";
    CHECK_THROWS_WITH_AS(make_tokenizer(spec), doctest::Contains("\"wordpiece\" is not supported"), std::runtime_error);
}
