// The text helpers of `minigpt generate` (src/cli/generate_text.h): stop
// strings while streaming. (JSON escaping: test_json.cpp.)
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "cli/generate_text.h"

using minigpt::cli::StopFilter;

namespace {

// Feeds the pieces one by one; returns everything printed (push outputs, then finish() unless stopped).
std::string stream(StopFilter& f, const std::vector<std::string>& pieces, std::vector<std::string>* printed = nullptr) {
    std::string out;
    for (const std::string& p : pieces) {
        const std::string s = f.push(p);
        if (printed) printed->push_back(s);
        out += s;
        if (f.stopped()) return out;
    }
    return out + f.finish();
}

}  // namespace

TEST_CASE("stop filter: no stop strings passes text through at once") {
    StopFilter f({});
    std::vector<std::string> printed;
    CHECK(stream(f, {"ab", "c", "", "de"}, &printed) == "abcde");
    CHECK(printed == std::vector<std::string>{"ab", "c", "", "de"});
}

TEST_CASE("stop filter: a stop string split over pieces is cut and never printed") {
    StopFilter f({"END"});
    std::vector<std::string> printed;
    CHECK(stream(f, {"hello E", "N", "D and more"}, &printed) == "hello ");
    CHECK(f.stopped());
    // "E" and "EN" could start "END": held back, not printed early.
    CHECK(printed == std::vector<std::string>{"hello ", "", ""});
}

TEST_CASE("stop filter: a held-back prefix that does not complete is printed later") {
    StopFilter f({"END"});
    std::vector<std::string> printed;
    CHECK(stream(f, {"xE", "Nx", "yEN"}, &printed) == "xENxyEN");
    CHECK_FALSE(f.stopped());
    CHECK(printed == std::vector<std::string>{"x", "ENx", "y"});  // "EN" at the end came from finish()
}

TEST_CASE("stop filter: the earliest of several stop strings wins; overlapping prefixes") {
    StopFilter f({"bc", "abcd"});
    CHECK(stream(f, {"xab", "cd"}) == "x");  // "abcd" at offset 1 comes before "bc" at 2
    StopFilter g({"aab"});
    CHECK(stream(g, {"aa", "a", "ab"}) == "aa");  // "aaaab": the first "aab" starts at offset 2
}

TEST_CASE("stop filter: a stop string inside one piece") {
    StopFilter f({"\n\n"});
    CHECK(stream(f, {"line one\n\nline two"}) == "line one");
    StopFilter g({"x"});
    CHECK(stream(g, {"x"}) == "");
    CHECK(g.stopped());
}
