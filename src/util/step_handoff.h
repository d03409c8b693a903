// Work sharing that keeps each thread's reads in order and its fast path free of
// locked instructions. A thread's share of a job is steps [0, n), which its owner
// takes from the front a block at a time; a thread done with its own share asks an
// owner for some, and the owner, at its next block, hands over the back half of
// what it has left. So the owner reads one run from the front and the helper one
// run from the back: decoding's matrix-vector products read memory as long streams,
// which smaller pieces handed out in turn would break (kernels.cpp, gemv).
//
// Why not a claim counter both sides update: an atomic read-modify-write per block
// is a full fence on x86, and it stalls the owner's stream. Claims of 128 KiB each
// made one token's q8_0 matrices 2-7 % slower when the threads were even (three sets
// of 24 interleaved rounds, Zen 5); with this protocol they read about as fast as
// fixed ranges (medians of nine such sets: seven within 2 %, the others +5 and -5 %).
// The owner's blocks cost a load and a store; only a request, and the owner's end,
// take an exchange.
#pragma once
#include <algorithm>
#include <atomic>
#include <cstdint>

#include "util/thread_pool.h"

namespace minigpt {

class StepHandoff {
public:
    // Steps [0, n) are the owner's; call before the threads start.
    void reset(int64_t n) {
        next_ = 0;
        end_.store(n, std::memory_order_relaxed);
        pos_.store(0, std::memory_order_relaxed);
        state_.store(kNotStarted, std::memory_order_relaxed);
    }

    // The owner: its next block of up to k steps as [*a, *b), after answering a
    // request (the back half of what is left, if at least `min_give` steps and two
    // are left; nothing otherwise). False when its steps are done; from then on
    // requests are refused.
    bool next(int64_t k, int64_t min_give, int64_t* a, int64_t* b) {
        const int s0 = state_.load(std::memory_order_acquire);
        // Helpers may ask only once the owner runs: one waiting on a share nobody has
        // begun could wait forever (a pool running nested jobs on one thread).
        if (s0 == kNotStarted) state_.store(kOpen, std::memory_order_release);
        if (s0 == kAsked) answer(min_give);
        const int64_t end = end_.load(std::memory_order_relaxed);
        if (next_ < end) {
            *a = next_;
            *b = next_ = std::min(next_ + k, end);
            pos_.store(next_, std::memory_order_relaxed);
            return true;
        }
        for (;;) {  // close, answering (with nothing) a request that came meanwhile
            int s = kOpen;
            if (state_.compare_exchange_weak(s, kClosed, std::memory_order_acq_rel)) return false;
            if (s == kAsked) answer(min_give);
            else if (s != kOpen) ThreadPool::cpu_relax();  // an answer not yet read
        }
    }

    // A helper: asks for steps and waits for the owner's answer. True with [*a, *b)
    // non-empty if it gave some; false if it gave none, has not begun, is done, or is
    // answering another helper.
    bool ask(int64_t* a, int64_t* b) {
        int s = kOpen;
        if (!state_.compare_exchange_strong(s, kAsked, std::memory_order_acq_rel)) return false;
        while (state_.load(std::memory_order_acquire) != kAnswered) ThreadPool::cpu_relax();
        *a = given_from_, *b = given_to_;
        state_.store(kOpen, std::memory_order_release);
        return *a < *b;
    }

    // Steps not yet begun (a hint for choosing whom to ask; exact once every thread stopped).
    int64_t left() const {
        return std::max<int64_t>(0, end_.load(std::memory_order_relaxed) - pos_.load(std::memory_order_relaxed));
    }

private:
    enum : int { kNotStarted, kOpen, kAsked, kAnswered, kClosed };
    void answer(int64_t min_give) {
        const int64_t end = end_.load(std::memory_order_relaxed), left = end - next_, half = left / 2;
        given_from_ = given_to_ = end;
        if (left >= min_give && half > 0) {
            given_from_ = end - half;
            end_.store(given_from_, std::memory_order_relaxed);
        }
        state_.store(kAnswered, std::memory_order_release);
    }
    int64_t next_ = 0;                   // the owner's next step (the owner's alone)
    int64_t given_from_ = 0, given_to_ = 0;  // the answer, published by state_
    std::atomic<int64_t> end_{0}, pos_{0};   // written by the owner, read by helpers
    std::atomic<int> state_{kOpen};
};

}  // namespace minigpt
