// GPT-2 BPE against golden ids from npm tiktoken 1.0.22 (get_encoding("gpt2")),
// written by scripts/gen_bpe_golden.mjs into tests/data/tokenizer/. The
// vocabulary is loaded from the vocab.json + merges.txt the same script wrote.
// Tolerance: none; ids must be equal. A mismatch prints the case, the token
// position, the text around it and both id sequences there.
#include <doctest/doctest.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "tokenizer/gpt2_files.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/unicode_categories.h"
#include "tokenizer_data.h"

using namespace minigpt;
using namespace minigpt::test;

namespace {

const Tokenizer& gpt2() {
    static const std::unique_ptr<Tokenizer> tok = make_tokenizer(gpt2_spec());
    return *tok;
}

std::vector<int32_t> parse_ids(const std::string& s) {
    std::vector<int32_t> ids;
    std::istringstream in(s);
    for (int32_t id; in >> id;) ids.push_back(id);
    return ids;
}

std::string printable(const std::string& s) {
    std::string out;
    for (unsigned char c : s) {
        if (c == '\n') out += "\\n";
        else if (c == '\r') out += "\\r";
        else if (c == '\t') out += "\\t";
        else if (c < 0x20 || c == 0x7F) { char buf[8]; std::snprintf(buf, sizeof buf, "\\x%02X", c); out += buf; }
        else out.push_back(char(c));
    }
    return out;
}

std::string ids_around(const std::vector<int32_t>& ids, size_t at) {
    std::string out;
    const size_t lo = at >= 4 ? at - 4 : 0, hi = std::min(ids.size(), at + 5);
    for (size_t i = lo; i < hi; ++i) out += (i == at ? "[" : "") + std::to_string(ids[i]) + (i == at ? "] " : " ");
    return out.empty() ? "(none)" : out;
}

// Empty when equal; otherwise a description of the first difference.
std::string first_mismatch(const Tokenizer& tok, const std::vector<int32_t>& want, const std::vector<int32_t>& got) {
    if (want == got) return "";
    size_t at = 0;
    while (at < want.size() && at < got.size() && want[at] == got[at]) ++at;
    const std::vector<int32_t> before(want.begin(), want.begin() + at);
    const std::string prefix = tok.decode(before);
    const std::vector<int32_t> want_rest(want.begin() + at, want.begin() + std::min(want.size(), at + 6));
    std::ostringstream m;
    m << "first difference at token " << at << " (of " << want.size() << " expected, " << got.size() << " got)\n"
      << "  text before: \"" << printable(prefix.substr(prefix.size() > 60 ? prefix.size() - 60 : 0)) << "\"\n"
      << "  text at:     \"" << printable(tok.decode(want_rest)) << "\"\n"
      << "  expected ids: " << ids_around(want, at) << "\n"
      << "  got ids:      " << ids_around(got, at);
    return m.str();
}

}  // namespace

TEST_CASE("gpt2 bpe: hand-written cases equal tiktoken's ids") {
    const Tokenizer& tok = gpt2();
    std::istringstream lines(read_all(kTokenizerData + "gpt2_cases.tsv"));
    int n_cases = 0, n_failed = 0;
    for (std::string line; std::getline(lines, line);) {
        if (line.empty() || line[0] == '#') continue;
        std::vector<std::string> f;
        std::istringstream fields(line);
        for (std::string x; std::getline(fields, x, '\t');) f.push_back(x);
        if (f.size() == 3) f.push_back("");  // a case with no ids (the empty text)
        REQUIRE_MESSAGE(f.size() == 4, "malformed line in gpt2_cases.tsv: " << line);
        const std::string text = from_hex(f[2]);
        const std::vector<int32_t> want = parse_ids(f[3]);
        const std::vector<int32_t> got = tok.encode(text, f[1] == "all");
        ++n_cases;
        const std::string diff = first_mismatch(tok, want, got);
        if (!diff.empty()) {
            ++n_failed;
            const std::string msg = "case " + f[0] + " (\"" + printable(text.substr(0, 80)) + "\"): " + diff;
            FAIL_CHECK(msg);
        }
        CHECK_MESSAGE(tok.decode(got) == text, "case " << f[0] << ": decode(encode(x)) != x");
    }
    CHECK(n_cases >= 150);
    MESSAGE(n_cases << " tiktoken cases, " << n_failed << " differ");
}

TEST_CASE("gpt2 bpe: 1 MiB of Brown corpus text equals tiktoken's ids") {
    const Tokenizer& tok = gpt2();
    const std::string text = read_all(kTokenizerData + "gpt2_brown.txt");
    const std::string raw = read_all(kTokenizerData + "gpt2_brown.u16");
    REQUIRE(text.size() >= (1u << 20));
    REQUIRE(raw.size() % 2 == 0);
    std::vector<int32_t> want(raw.size() / 2);
    for (size_t i = 0; i < want.size(); ++i)
        want[i] = int32_t(uint8_t(raw[2 * i]) | (uint8_t(raw[2 * i + 1]) << 8));

    const auto t0 = std::chrono::steady_clock::now();
    const std::vector<int32_t> got = tok.encode(text);
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const std::string diff = first_mismatch(tok, want, got);
    CHECK_MESSAGE(diff.empty(), "Brown text: " << diff);
    CHECK(tok.decode(got) == text);
    MESSAGE(want.size() << " tokens equal tiktoken's; one encode pass " << text.size() / seconds / 1e6
                        << " MB/s (single thread, this build)");
}

TEST_CASE("gpt2 bpe: every code point is split and encoded as tiktoken does") {
    // For each code point C: is C + "'s" split before the apostrophe (C is
    // \p{L}, \p{N} or \s, U+0020 aside), and a 64-bit hash of the ids of
    // C + "'s" and "  " + C per block of 4096 code points; the generator
    // (scripts/gen_bpe_golden.mjs, writeCodePointProbe) hashes the same way.
    const Tokenizer& tok = gpt2();
    std::istringstream lines(read_all(kTokenizerData + "gpt2_codepoint_probe.txt"));
    std::vector<std::pair<uint32_t, uint32_t>> split_ranges;
    std::vector<std::pair<uint32_t, std::string>> hashes;
    for (std::string line; std::getline(lines, line);) {
        std::istringstream in(line);
        std::string kind, a, b;
        in >> kind >> a >> b;
        if (kind == "split") split_ranges.emplace_back(std::stoul(a, nullptr, 16), std::stoul(b, nullptr, 16));
        if (kind == "hash") hashes.emplace_back(std::stoul(a, nullptr, 16), b);
    }
    REQUIRE(hashes.size() == 0x110000 / 4096);
    const int32_t apostrophe_s = tok.encode("'s").at(0);

    size_t range = 0, split_mismatches = 0, hash_mismatches = 0;
    uint32_t h1 = 0, h2 = 0;
    auto mix = [&](uint32_t v) {
        for (int k = 0; k < 4; ++k) {
            const uint32_t byte = (v >> (8 * k)) & 0xFF;
            h1 = (h1 ^ byte) * 0x01000193u;
            h2 = (h2 ^ byte) * 0x01000193u;
            h2 ^= h2 >> 15;
        }
    };
    for (uint32_t cp = 0; cp <= 0x10FFFF; ++cp) {
        if (cp % 4096 == 0) h1 = 0x811c9dc5u, h2 = 0x01000193u;
        if (cp < 0xD800 || cp > 0xDFFF) {
            std::string c;
            // UTF-8 of cp (the tokenizer's own encoder is not used to build its input).
            if (cp < 0x80) c = std::string(1, char(cp));
            else if (cp < 0x800) c = {char(0xC0 | (cp >> 6)), char(0x80 | (cp & 0x3F))};
            else if (cp < 0x10000) c = {char(0xE0 | (cp >> 12)), char(0x80 | ((cp >> 6) & 0x3F)), char(0x80 | (cp & 0x3F))};
            else c = {char(0xF0 | (cp >> 18)), char(0x80 | ((cp >> 12) & 0x3F)), char(0x80 | ((cp >> 6) & 0x3F)), char(0x80 | (cp & 0x3F))};
            const std::vector<int32_t> a = tok.encode(c + "'s"), b = tok.encode("  " + c);
            while (range < split_ranges.size() && split_ranges[range].second < cp) ++range;
            const bool want_split = range < split_ranges.size() && split_ranges[range].first <= cp;
            const bool got_split = a.back() == apostrophe_s;
            if (want_split != got_split && ++split_mismatches <= 10) {
                char buf[16];
                std::snprintf(buf, sizeof buf, "U+%04X", cp);
                std::ostringstream m;
                m << buf << ": tiktoken " << (want_split ? "splits" : "does not split")
                  << " C + \"'s\" before the apostrophe, we " << (got_split ? "do" : "do not")
                  << " (our class " << int(CharClassTable::instance()(cp)) << ")";
                FAIL_CHECK(m.str());
            }
            for (int32_t id : a) mix(uint32_t(id));
            mix(0xFFFFFFFFu);
            for (int32_t id : b) mix(uint32_t(id));
            mix(0xFFFFFFFFu);
        }
        if (cp % 4096 == 4095) {
            char got[17];
            std::snprintf(got, sizeof got, "%08x%08x", h1, h2);
            const auto& want = hashes[cp / 4096];
            if (want.second != got && ++hash_mismatches <= 10) {
                char buf[40];
                std::snprintf(buf, sizeof buf, "U+%04X..U+%04X", want.first, cp);
                const std::string msg = std::string("ids differ from tiktoken's somewhere in ") + buf + " (hash " +
                                        got + ", expected " + want.second + ")";
                FAIL_CHECK(msg);
            }
        }
    }
    CHECK(split_mismatches == 0);
    CHECK(hash_mismatches == 0);
    MESSAGE("1112064 code points probed: " << split_mismatches << " split differences, " << hash_mismatches
                                           << " of 272 id hashes differ");
}

TEST_CASE("unicode: the two-stage class table equals the generated ranges at every code point") {
    const CharClassTable& table = CharClassTable::instance();
    size_t differ = 0;
    for (uint32_t cp = 0; cp <= 0x10FFFF; ++cp) differ += table(cp) != char_class_by_search(cp);
    CHECK(differ == 0);
    CHECK(std::string(kUnicodeTablesVersion) == "16.0.0");
    CHECK(table(0x110000) == CharClass::Other);
}
