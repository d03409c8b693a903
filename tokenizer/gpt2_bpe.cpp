#include "tokenizer/gpt2_bpe.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <queue>
#include <stdexcept>

#include "tokenizer/gpt2_byte_map.h"
#include "tokenizer/gpt2_pretokenize.h"

namespace minigpt {

namespace {

// Pieces up to this many bytes merge in a flat array (tiktoken's O(n^2) loop,
// fastest for short words); longer ones use a heap so that a megabyte of one
// letter still encodes in O(n log n).
constexpr size_t kShortPiece = 64;

// A per-call cache of piece -> ids, used for texts of kCacheFromBytes or more.
// Running text repeats its words, and the vocabulary and merge tables (a few
// MB) do not stay in cache, while this small table does. Direct-mapped: a new
// piece replaces the one in its slot. Per call, so encode() stays thread-safe.
constexpr size_t kCacheFromBytes = 4096;

class PieceCache {
public:
    // About one slot per 64 bytes of text (a piece is ~5 bytes, and text repeats
    // its words), between 1024 and 16384 slots (36 KB .. 590 KB).
    explicit PieceCache(size_t text_bytes) {
        size_t n = 1024;
        while (n < 16384 && n * 64 < text_bytes) n <<= 1;
        slots_.resize(n);
        mask_ = n - 1;
    }
    bool lookup(std::string_view piece, uint64_t h, std::vector<int32_t>* out) const {
        const Slot& s = slots_[h & mask_];
        if (s.len != piece.size() || std::memcmp(s.key, piece.data(), piece.size()) != 0) return false;
        out->insert(out->end(), s.ids, s.ids + s.n_ids);
        return true;
    }
    void store(std::string_view piece, uint64_t h, const int32_t* ids, size_t n_ids) {
        if (piece.size() > kMaxKey || n_ids > kMaxIds) return;
        Slot& s = slots_[h & mask_];
        s.len = uint8_t(piece.size());
        s.n_ids = uint8_t(n_ids);
        std::memcpy(s.key, piece.data(), piece.size());
        std::memcpy(s.ids, ids, n_ids * sizeof(int32_t));
    }
private:
    static constexpr size_t kMaxKey = 16, kMaxIds = 4;
    struct Slot {
        char key[kMaxKey];
        uint8_t len = 0;  // 0: empty (pieces are never empty)
        uint8_t n_ids = 0;
        int32_t ids[kMaxIds];
    };
    std::vector<Slot> slots_;
    size_t mask_;
};

bool looks_special(const std::string& text) {
    return text.size() >= 4 && text.compare(0, 2, "<|") == 0 && text.compare(text.size() - 2, 2, "|>") == 0;
}

std::string quoted(const std::string& s) { return "\"" + s + "\""; }

[[noreturn]] void throw_bad_id(int32_t id, size_t vocab_size) {
    throw std::runtime_error("GPT-2 tokenizer: token id " + std::to_string(id) + " is outside [0, " +
                             std::to_string(vocab_size) + ")");
}

}  // namespace

Gpt2BpeTokenizer::Gpt2BpeTokenizer(const TokenizerSpec& spec)
    : bos_id_(spec.bos_id), eos_id_(spec.eos_id), add_bos_(spec.add_bos) {
    const size_t n = spec.tokens.size();
    if (n == 0) throw std::runtime_error("GPT-2 tokenizer: the vocabulary is empty");
    if (!spec.token_types.empty() && spec.token_types.size() != n)
        throw std::runtime_error("GPT-2 tokenizer: " + std::to_string(spec.token_types.size()) +
                                 " token types for " + std::to_string(n) + " tokens");
    for (int32_t id : {spec.bos_id, spec.eos_id})
        if (id >= int32_t(n)) throw std::runtime_error("GPT-2 tokenizer: BOS/EOS id " + std::to_string(id) +
                                                       " is outside the vocabulary of " + std::to_string(n));

    bytes_.resize(n);
    std::vector<bool> ordinary(n, false);
    for (size_t id = 0; id < n; ++id) {
        const std::string& text = spec.tokens[id];
        const int32_t type = spec.token_types.empty() ? (looks_special(text) ? kTokenControl : kTokenNormal)
                                                      : spec.token_types[id];
        if (type == kTokenControl || type == kTokenUserDefined) {
            bytes_[id] = text;  // written literally, not in the byte-to-unicode form
            if (!text.empty()) specials_.emplace_back(text, int32_t(id));
            continue;
        }
        if (!gpt2_token_text_to_bytes(text, &bytes_[id])) {
            if (type == kTokenUnused || type == kTokenUnknown) {
                bytes_[id] = text;
                continue;
            }
            throw std::runtime_error("GPT-2 tokenizer: token " + std::to_string(id) + " " + quoted(text) +
                                     " has a character outside GPT-2's byte-to-unicode alphabet "
                                     "(is this vocabulary byte-level BPE?)");
        }
        ordinary[id] = type != kTokenUnused && !bytes_[id].empty();
    }
    // Longest special first, so that one special text that is a prefix of another loses.
    std::stable_sort(specials_.begin(), specials_.end(),
                     [](const auto& a, const auto& b) { return a.first.size() > b.first.size(); });

    piece_to_id_.reserve(n);
    for (size_t id = 0; id < n; ++id)
        if (ordinary[id]) piece_to_id_.insert(int32_t(id));
    for (int b = 0; b < 256; ++b) {
        const char byte = char(b);
        byte_token_[b] = piece_to_id_.find(std::string_view(&byte, 1));
        if (byte_token_[b] < 0) {
            char hex[8];
            snprintf(hex, sizeof hex, "0x%02X", b);
            throw std::runtime_error(std::string("GPT-2 tokenizer: no token for the single byte ") + hex +
                                     " (text " + quoted(gpt2_bytes_to_token_text(std::string(1, char(b)))) +
                                     "), so not every input could be encoded");
        }
    }

    // Merge "a b" at rank r joins tokens a and b into the token a+b.
    // Token text -> id (the first id with that text): the same flat table as piece_to_id_,
    // over the texts. Its slots hold each text's first 8 bytes, so most probes compare
    // without touching the token strings (~3 lookups a merge were most of the load).
    BytesToId text_to_id(&spec.tokens);
    text_to_id.reserve(n);
    for (size_t id = 0; id < n; ++id) text_to_id.insert(int32_t(id));
    auto id_of = [&](std::string_view text, size_t rank, const char* what) {
        const int32_t id = text_to_id.find(text);
        if (id < 0)
            throw std::runtime_error("GPT-2 tokenizer: merge " + std::to_string(rank) + " " +
                                     quoted(spec.merges[rank]) + ": its " + what + " " +
                                     quoted(std::string(text)) + " is not in the vocabulary");
        return id;
    };
    std::string joined;  // left + right of one merge, reused
    merges_.reserve(spec.merges.size());
    for (size_t rank = 0; rank < spec.merges.size(); ++rank) {
        const std::string& m = spec.merges[rank];
        const size_t space = m.find(' ');
        if (space == std::string::npos || space == 0 || space + 1 >= m.size() ||
            m.find(' ', space + 1) != std::string::npos)
            throw std::runtime_error("GPT-2 tokenizer: merge " + std::to_string(rank) + " " + quoted(m) +
                                     " is not two token texts separated by one space");
        const std::string_view left(m.data(), space), right(m.data() + space + 1, m.size() - space - 1);
        const int32_t a = id_of(left, rank, "left part");
        const int32_t b = id_of(right, rank, "right part");
        joined.assign(left).append(right);
        const int32_t merged = id_of(joined, rank, "result");
        merges_.insert(a, b, PairToMerge::Merge{uint32_t(rank), merged});
    }
}

void Gpt2BpeTokenizer::merge_short(std::string_view piece, std::vector<int32_t>* out) const {
    int32_t ids[kShortPiece];
    PairToMerge::Merge pair[kShortPiece];  // pair[i]: merge of ids[i] and ids[i+1]
    size_t m = piece.size();
    for (size_t i = 0; i < m; ++i) ids[i] = byte_token_[uint8_t(piece[i])];
    for (size_t i = 0; i + 1 < m; ++i) pair[i] = merges_.find(ids[i], ids[i + 1]);
    while (m > 1) {
        size_t best = 0;
        uint32_t best_rank = PairToMerge::kNoMerge;
        for (size_t i = 0; i + 1 < m; ++i)
            if (pair[i].rank < best_rank) best_rank = pair[i].rank, best = i;
        if (best_rank == PairToMerge::kNoMerge) break;
        ids[best] = pair[best].merged;
        for (size_t i = best + 1; i + 1 < m; ++i) ids[i] = ids[i + 1], pair[i] = pair[i + 1];
        --m;
        if (best + 1 < m) pair[best] = merges_.find(ids[best], ids[best + 1]);
        if (best > 0) pair[best - 1] = merges_.find(ids[best - 1], ids[best]);
    }
    out->insert(out->end(), ids, ids + m);
}

void Gpt2BpeTokenizer::merge_long(std::string_view piece, std::vector<int32_t>* out) const {
    // Doubly linked list of parts; a min-heap of candidate pairs ordered by
    // (rank, position), so ties go to the leftmost pair as in the flat loop.
    // Entries are checked when popped and skipped if either side has changed.
    const size_t n = piece.size();
    std::vector<int32_t> id(n);
    std::vector<size_t> prev(n), next(n);
    std::vector<bool> alive(n, true);
    for (size_t i = 0; i < n; ++i) {
        id[i] = byte_token_[uint8_t(piece[i])];
        prev[i] = i - 1;  // wraps for i == 0; never read then
        next[i] = i + 1;  // n = none
    }
    struct Candidate {
        uint32_t rank;
        size_t pos;
        int32_t left, right, merged;
        bool operator>(const Candidate& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
    };
    std::priority_queue<Candidate, std::vector<Candidate>, std::greater<Candidate>> heap;
    auto push = [&](size_t pos) {
        if (next[pos] >= n) return;
        const PairToMerge::Merge m = merges_.find(id[pos], id[next[pos]]);
        if (m.rank != PairToMerge::kNoMerge) heap.push({m.rank, pos, id[pos], id[next[pos]], m.merged});
    };
    for (size_t i = 0; i + 1 < n; ++i) push(i);
    while (!heap.empty()) {
        const Candidate c = heap.top();
        heap.pop();
        if (!alive[c.pos] || id[c.pos] != c.left || next[c.pos] >= n || id[next[c.pos]] != c.right) continue;
        const size_t gone = next[c.pos];
        id[c.pos] = c.merged;
        alive[gone] = false;
        next[c.pos] = next[gone];
        if (next[gone] < n) prev[next[gone]] = c.pos;
        push(c.pos);
        if (c.pos > 0) push(prev[c.pos]);
    }
    for (size_t i = 0; i < n; i = next[i]) out->push_back(id[i]);
}

void Gpt2BpeTokenizer::encode_piece(std::string_view piece, uint64_t h, std::vector<int32_t>* out) const {
    const int32_t whole = piece_to_id_.find(piece, h);
    if (whole >= 0) {
        out->push_back(whole);
    } else if (piece.size() <= kShortPiece) {
        merge_short(piece, out);
    } else {
        merge_long(piece, out);
    }
}

void Gpt2BpeTokenizer::encode_ordinary(std::string_view text, std::vector<int32_t>* out) const {
    Gpt2PreTokenizer pre(text);
    size_t begin, end;
    if (text.size() < kCacheFromBytes) {
        while (pre.next(&begin, &end)) encode_piece(text.substr(begin, end - begin), out);
        return;
    }
    PieceCache cache(text.size());
    while (pre.next(&begin, &end)) {
        const std::string_view piece = text.substr(begin, end - begin);
        const uint64_t h = hash_bytes(piece.data(), piece.size());
        if (cache.lookup(piece, h, out)) continue;
        const size_t before = out->size();
        encode_piece(piece, h, out);
        cache.store(piece, h, out->data() + before, out->size() - before);
    }
}

std::vector<int32_t> Gpt2BpeTokenizer::encode(std::string_view text, bool allow_special) const {
    std::vector<int32_t> ids;
    ids.reserve(text.size() / 3 + 1);
    if (!allow_special || specials_.empty()) {
        encode_ordinary(text, &ids);
        return ids;
    }
    // Next occurrence of each special text at or after pos (npos: none left).
    std::vector<size_t> next_at(specials_.size());
    for (size_t j = 0; j < specials_.size(); ++j) next_at[j] = text.find(specials_[j].first);
    size_t pos = 0;
    while (pos < text.size()) {
        size_t found = std::string_view::npos, which = 0;
        for (size_t j = 0; j < specials_.size(); ++j) {
            if (next_at[j] < pos) next_at[j] = text.find(specials_[j].first, pos);
            if (next_at[j] < found) found = next_at[j], which = j;  // ties: the longer text (sorted first)
        }
        if (found == std::string_view::npos) {
            encode_ordinary(text.substr(pos), &ids);
            break;
        }
        encode_ordinary(text.substr(pos, found - pos), &ids);
        ids.push_back(specials_[which].second);
        pos = found + specials_[which].first.size();
    }
    return ids;
}

std::string Gpt2BpeTokenizer::token_bytes(int32_t id) const {
    if (id < 0 || size_t(id) >= bytes_.size()) throw_bad_id(id, bytes_.size());
    return bytes_[size_t(id)];
}

std::string Gpt2BpeTokenizer::decode(const std::vector<int32_t>& ids) const {
    std::string text;
    for (int32_t id : ids) {
        if (id < 0 || size_t(id) >= bytes_.size()) throw_bad_id(id, bytes_.size());
        text += bytes_[size_t(id)];
    }
    return text;
}

}  // namespace minigpt
