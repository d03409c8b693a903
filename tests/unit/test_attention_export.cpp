// Attention export: what the file holds equals the patterns the forward pass
// produced (prompt in several batches, then one row per decoded token), for
// f32 exactly and f16 within its rounding; sizes follow the documented
// layout; bad files and misuse are refused with a clear message.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>
#include <random>
#include <tuple>
#include <unistd.h>

#include "analysis/attention_export.h"
#include "runtime/model.h"
#include "runtime/multi_hooks.h"
#include "tiny_model.h"
#include "runtime/transformer.h"

using namespace minigpt;
using namespace minigpt::test;

namespace {

// Every pattern row seen, keyed by (layer, head, position).
struct PatternRecorder : ForwardHooks {
    std::map<std::tuple<int64_t, int64_t, int64_t>, std::vector<float>> rows;
    uint32_t wanted() const override { return hook_bit(Hook::Pattern); }
    void on(const HookView& v) override {
        for (int64_t i = 0; i < v.rows; ++i) {
            const int64_t p = v.pos0 + i;
            rows[{v.layer, v.head, p}] = std::vector<float>(v.row(i), v.row(i) + p + 1);
        }
    }
};

bool exists(const std::string& path) { return ::access(path.c_str(), F_OK) == 0; }

int64_t file_size(const std::string& path) {
    std::ifstream f(path, std::ios::binary | std::ios::ate);
    return int64_t(f.tellg());
}

}  // namespace

TEST_CASE("attention export: file rows equal the forward pass's patterns (prompt in batches, then decoding)") {
    TempPath mp("attn_model.gguf");
    auto model = load_tiny_gpt2(mp.path, DType::F32, 12);
    const Config& c = model->config();
    std::vector<int32_t> ids;
    std::mt19937 rng(3);
    for (int i = 0; i < 16; ++i) ids.push_back(int32_t(rng() % 96));
    const int64_t n_prompt = 10, n_run = 15;  // the 16th id is "sampled" but never run

    for (AttentionDType type : {AttentionDType::F32, AttentionDType::F16}) {
        const bool f32 = type == AttentionDType::F32;
        CAPTURE(f32);
        TempPath out(f32 ? "attn_f32.bin" : "attn_f16.bin");
        PatternRecorder rec;
        {
            AttentionWriter writer(out.path, c, type);
            MultiHooks hooks;
            hooks.add(&writer);
            hooks.add(&rec);
            TransformerOptions o;
            o.n_batch = 4;  // the prompt arrives as blocks of 4, 4, 2 rows
            Transformer t(*model, o);
            t.set_hooks(&hooks);
            t.forward(ids.data(), n_prompt);
            for (int64_t p = n_prompt; p < n_run; ++p) t.forward(&ids[size_t(p)], 1);
            CHECK(writer.n_tokens() == n_run);
            CHECK_FALSE(exists(out.path));  // nothing visible before finish()
            writer.finish(ids);
        }
        const int64_t tri = n_run * (n_run + 1) / 2, blocks = 3 + (n_run - n_prompt);
        CHECK(file_size(out.path) == 48 + 16 * blocks + c.n_layer * c.n_head * tri * (f32 ? 4 : 2) + 4 * n_run);
        const AttentionFile a = AttentionFile::read(out.path);
        CHECK(a.n_layer() == c.n_layer);
        CHECK(a.n_head() == c.n_head);
        CHECK(a.n_tokens() == n_run);
        CHECK(a.ids() == std::vector<int32_t>(ids.begin(), ids.begin() + n_run));
        float worst = 0, worst_sum = 0;
        std::vector<float> row(static_cast<size_t>(n_run));
        for (const auto& [key, expected] : rec.rows) {
            const auto [l, h, p] = key;
            a.row(l, h, p, row.data());
            double sum = 0;
            for (int64_t j = 0; j <= p; ++j) {
                worst = std::max(worst, std::fabs(row[size_t(j)] - expected[size_t(j)]));
                sum += row[size_t(j)];
            }
            worst_sum = std::max(worst_sum, float(std::fabs(sum - 1)));
        }
        CHECK(rec.rows.size() == size_t(c.n_layer * c.n_head * n_run));
        MESSAGE((f32 ? "f32" : "f16") << ": max |file - pattern| = " << worst << ", max |row sum - 1| = " << worst_sum);
        if (f32) CHECK(worst == 0.f);
        else CHECK(worst <= 2.5e-4f);  // half a unit in the last place of f16 at values <= 1 (2^-12)
        CHECK(worst_sum <= (f32 ? 1.2e-6f : 2.8e-3f));  // measured 1.1e-7 (f32) and 2.8e-4 (f16)
    }
}

TEST_CASE("attention export: misuse and damaged files are refused; no file is left after a failure") {
    TempPath mp("attn_model2.gguf");
    auto model = load_tiny_gpt2(mp.path, DType::F32, 13);
    const std::vector<int32_t> ids = {1, 2, 3, 4, 5, 6};
    TempPath out("attn_bad.bin");
    {
        AttentionWriter writer(out.path, model->config());
        Transformer t(*model, TransformerOptions{});
        t.set_hooks(&writer);
        t.forward(ids.data(), 4);
        t.reset();  // the file can only hold one sequence growing from position 0
        CHECK_THROWS_WITH(t.forward(ids.data(), 2), doctest::Contains("positions must follow one another"));
        CHECK_THROWS_WITH(writer.finish({1}), doctest::Contains("1 token ids for 4 positions"));
    }
    CHECK_FALSE(exists(out.path));

    {
        AttentionWriter writer(out.path, model->config());
        Transformer t(*model, TransformerOptions{});
        t.set_hooks(&writer);
        t.forward(ids.data(), 6);
        writer.finish(ids);
    }
    std::string bytes;
    {
        std::ifstream f(out.path, std::ios::binary);
        bytes.assign(std::istreambuf_iterator<char>(f), {});
    }
    auto write_variant = [&](const std::string& content) {
        std::ofstream f(out.path, std::ios::binary | std::ios::trunc);
        f << content;
    };
    write_variant(bytes.substr(0, bytes.size() - 10));
    CHECK_THROWS_WITH(AttentionFile::read(out.path), doctest::Contains("offset"));
    std::string bad = bytes;
    bad[0] = 'X';
    write_variant(bad);
    CHECK_THROWS_WITH(AttentionFile::read(out.path), doctest::Contains("magic \"MGPTATTN\" expected"));
    bad = bytes;
    bad[8] = 2;
    write_variant(bad);
    CHECK_THROWS_WITH(AttentionFile::read(out.path), doctest::Contains("version 2, expected 1"));
    write_variant(bytes.substr(0, 30));
    CHECK_THROWS_WITH(AttentionFile::read(out.path), doctest::Contains("not a minigpt attention file"));
    CHECK_THROWS_WITH(parse_attention_dtype("bf16"), doctest::Contains("f16 or f32"));
}
