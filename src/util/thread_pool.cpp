#include "util/thread_pool.h"

#include <algorithm>
#include <chrono>
#include <sched.h>

namespace minigpt {

namespace {

double now_s() {
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// Set while a thread runs a job of some pool: nested jobs run serially.
thread_local bool t_in_job = false;

}  // namespace

ThreadPool::ThreadPool(int n_threads) : n_threads_(std::max(1, n_threads)) {
    for (int i = 1; i < n_threads_; ++i) workers_.emplace_back([this, i] { worker(i); });
}

ThreadPool::~ThreadPool() {
    stop_.store(true);
    generation_.fetch_add(1);
    {
        std::lock_guard<std::mutex> lock(mu_);
        wake_.notify_all();
    }
    for (std::thread& t : workers_) t.join();
}

void ThreadPool::chunk(int64_t n, int64_t grain, int index, int count, int64_t* begin, int64_t* end) {
    grain = std::max<int64_t>(1, grain);
    const int64_t units = (n + grain - 1) / grain;
    const int64_t per = units / count, extra = units % count;
    const int64_t u0 = index * per + std::min<int64_t>(index, extra);
    const int64_t u1 = u0 + per + (index < extra ? 1 : 0);
    *begin = std::min(n, u0 * grain);
    *end = std::min(n, u1 * grain);
}

void ThreadPool::work(int thread) {
    t_in_job = true;
    for (;;) {
        const uint64_t c = claim_.fetch_add(1, std::memory_order_acq_rel);
        const int64_t task = int64_t(c & 0xffffffffu), total = int64_t(c >> 32);
        if (task >= total) break;
        (*job_)(task, thread);  // read after the claim: it is that claim's job
        done_.fetch_add(1, std::memory_order_release);
    }
    t_in_job = false;
}

void ThreadPool::worker(int index) {
    uint64_t seen = 0;
    for (;;) {
        // Poll for the next job, then sleep. The sleeper count and the
        // generation are both sequentially consistent: either the caller sees
        // this worker counted as a sleeper (and notifies under the lock), or
        // the worker sees the new generation before it waits.
        uint64_t g = generation_.load(std::memory_order_acquire);
        if (g == seen) {
            const double t0 = now_s();
            for (int spins = 0; (g = generation_.load(std::memory_order_acquire)) == seen; ++spins) {
                cpu_relax();
                if ((spins & 255) == 255 && now_s() - t0 > kSpinSeconds) break;
            }
        }
        if (g == seen) {
            std::unique_lock<std::mutex> lock(mu_);
            sleepers_.fetch_add(1);
            wake_.wait(lock, [&] { return (g = generation_.load()) != seen; });
            sleepers_.fetch_sub(1);
        }
        seen = g;
        if (stop_.load()) return;
        work(index);
    }
}

void ThreadPool::for_each(int64_t n_tasks, const std::function<void(int64_t, int)>& fn) {
    if (n_tasks <= 0) return;
    if (n_threads_ == 1 || t_in_job || n_tasks == 1) {
        for (int64_t t = 0; t < n_tasks; ++t) fn(t, 0);
        return;
    }
    job_ = &fn;
    done_.store(0, std::memory_order_relaxed);
    claim_.store(uint64_t(n_tasks) << 32, std::memory_order_release);
    generation_.fetch_add(1);  // seq_cst: pairs with the workers' sleeper protocol
    if (sleepers_.load() > 0) {
        std::lock_guard<std::mutex> lock(mu_);
        wake_.notify_all();
    }
    work(0);
    // Tasks claimed by a worker may still be running. Yielding early would hand
    // this core to another process for a whole time slice, so only a worker
    // that makes no progress for kSpinSeconds (descheduled) makes us yield.
    const double t0 = now_s();
    for (int spins = 0; done_.load(std::memory_order_acquire) != n_tasks; ++spins) {
        cpu_relax();
        if ((spins & 1023) == 1023 && now_s() - t0 > kSpinSeconds) sched_yield();
    }
}

void ThreadPool::run(const std::function<void(int, int)>& fn) {
    for_each(n_threads_, [&](int64_t task, int) { fn(int(task), n_threads_); });
}

void ThreadPool::parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn) {
    if (n <= 0) return;
    grain = std::max<int64_t>(1, grain);
    const int64_t units = (n + grain - 1) / grain;
    const int64_t tasks = std::min<int64_t>(units, int64_t(n_threads_) * kChunksPerThread);
    if (n_threads_ == 1 || tasks <= 1) {
        fn(0, n);
        return;
    }
    for_each(tasks, [&](int64_t task, int) {
        int64_t begin, end;
        chunk(n, grain, int(task), int(tasks), &begin, &end);
        if (begin < end) fn(begin, end);
    });
}

}  // namespace minigpt
