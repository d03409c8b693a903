#include "runtime/profile.h"

#include <cstdio>

namespace minigpt {

const char* part_name(Part p) {
    static const char* names[] = {"embedding", "layernorm", "qkv", "attention", "attn_output",
                                  "mlp", "lm_head", "sampling"};
    return p < Part::Count ? names[size_t(p)] : "?";
}

double Profile::total() const {
    double t = 0;
    for (double s : seconds) t += s;
    return t;
}

std::string Profile::report() const {
    std::string out = "part          total ms   share   calls   us/call\n";
    const double all = total();
    char line[128];
    for (size_t i = 0; i < size_t(Part::Count); ++i) {
        if (!calls[i]) continue;
        std::snprintf(line, sizeof line, "%-12s %9.1f  %5.1f %%  %6llu  %8.1f\n", part_name(Part(i)), seconds[i] * 1e3,
                      all > 0 ? 100.0 * seconds[i] / all : 0.0, (unsigned long long)calls[i], 1e6 * seconds[i] / double(calls[i]));
        out += line;
    }
    std::snprintf(line, sizeof line, "%-12s %9.1f\n", "total", all * 1e3);
    return out + line;
}

}  // namespace minigpt
