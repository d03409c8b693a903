// Wall time per part of the forward pass, for `generate --profile`. The
// Transformer times its parts only when a Profile is attached; otherwise each
// scope costs one pointer test.
#pragma once
#include <chrono>
#include <cstdint>
#include <string>

namespace minigpt {

enum class Part : uint8_t { Embedding, LayerNorm, QKV, Attention, OutProj, MLP, LMHead, Sampling, Count };

const char* part_name(Part p);

struct Profile {
    double seconds[size_t(Part::Count)] = {};
    uint64_t calls[size_t(Part::Count)] = {};
    void add(Part p, double s) {
        seconds[size_t(p)] += s;
        calls[size_t(p)] += 1;
    }
    double total() const;
    // A table: part, total ms, share, per-call µs.
    std::string report() const;
};

// Times the enclosing scope into `profile` when it is not null.
class ProfileScope {
public:
    ProfileScope(Profile* p, Part part) : p_(p), part_(part) {
        if (p_) t0_ = std::chrono::steady_clock::now();
    }
    ~ProfileScope() {
        if (p_) p_->add(part_, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0_).count());
    }
    ProfileScope(const ProfileScope&) = delete;
    ProfileScope& operator=(const ProfileScope&) = delete;

private:
    Profile* p_;
    Part part_;
    std::chrono::steady_clock::time_point t0_;
};

}  // namespace minigpt
