// The viewer's building blocks: base64 against RFC 4648's test vectors and the
// sqrt-u8 attention quantisation against its stated bound. (Its JSON, HTML-script
// safe: test_json.cpp.)
#include <doctest/doctest.h>

#include <cmath>
#include <stdexcept>
#include <string>

#include "viewer/data.h"
#include "viewer/html.h"

using namespace minigpt;

namespace {

std::string b64(const std::string& s) {
    std::string out;
    append_base64(out, reinterpret_cast<const uint8_t*>(s.data()), s.size());
    return out;
}

}  // namespace

TEST_CASE("viewer base64: RFC 4648 test vectors") {
    CHECK(b64("") == "");
    CHECK(b64("f") == "Zg==");
    CHECK(b64("fo") == "Zm8=");
    CHECK(b64("foo") == "Zm9v");
    CHECK(b64("foob") == "Zm9vYg==");
    CHECK(b64("fooba") == "Zm9vYmE=");
    CHECK(b64("foobar") == "Zm9vYmFy");
    CHECK(b64(std::string("\xff\xfe\x00", 3)) == "//4A");
}

TEST_CASE("viewer quantisation: q = round(255 sqrt(w)) within sqrt(w)/255 + 1/260100") {
    CHECK(quantize_attention_weight(0.0f) == 0);
    CHECK(quantize_attention_weight(1.0f) == 255);
    CHECK(quantize_attention_weight(1.0f / 1024) == 8);  // a uniform row over 1 024 tokens stays visible
    CHECK(quantize_attention_weight(-0.5f) == 0);
    CHECK(quantize_attention_weight(1.5f) == 255);
    CHECK(quantize_attention_weight(std::nanf("")) == 0);
    double worst = 0;
    for (int i = 0; i <= 100000; ++i) {
        const float w = float(i) / 100000.0f;
        const double err = std::fabs(dequantize_attention_weight(quantize_attention_weight(w)) - double(w));
        const double bound = std::sqrt(double(w)) / 255 + 1.0 / 260100;
        worst = std::max(worst, err / bound);
        REQUIRE(err <= bound + 1e-12);
    }
    MESSAGE("worst error / bound over 100 001 weights: " << worst);
}
