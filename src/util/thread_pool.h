// One persistent pool of worker threads, created once per runtime and reused for
// every token: no thread is created on the per-token path. The calling thread
// takes part in the work, so a pool of n threads starts n-1 workers.
//
// Hand-off is hybrid: after a job, workers poll an atomic generation counter
// for a short while (kSpinSeconds) before sleeping on a condition variable, so
// the ~50 parallel sections of one decoded token cost well under a
// microsecond each instead of a futex wake-up.
//
// Work is claimed, not assigned: a job is a number of tasks and every thread
// takes the next unclaimed one until none is left. On a shared machine a
// worker that the OS has not scheduled simply takes nothing and the caller
// does its share, instead of everyone waiting a whole time slice for it.
// Jobs must not throw; a job that calls back into the same pool runs serially
// on the calling thread.
#pragma once
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace minigpt {

class ThreadPool {
public:
    explicit ThreadPool(int n_threads);
    ~ThreadPool();
    ThreadPool(const ThreadPool&) = delete;
    ThreadPool& operator=(const ThreadPool&) = delete;

    int size() const { return n_threads_; }

    // Calls fn(task, thread) for every task in [0, n_tasks), each exactly once,
    // on whichever thread claims it (thread: 0 for the caller, 1.. for workers;
    // unique among the calls running at the same time, for per-thread scratch).
    // Returns when all are done.
    void for_each(int64_t n_tasks, const std::function<void(int64_t, int)>& fn);

    // for_each over size() tasks: fn(task, size()); per-task scratch may be
    // indexed by task.
    void run(const std::function<void(int, int)>& fn);

    // Calls fn(begin, end) on disjoint chunks covering [0, n): chunk boundaries
    // multiples of `grain`, about kChunksPerThread chunks per thread.
    void parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn);

    // The chunk [begin, end) of [0, n) that `index` of `count` equal parts
    // aligned to `grain` covers.
    static void chunk(int64_t n, int64_t grain, int index, int count, int64_t* begin, int64_t* end);

    // One turn of a spin-wait: tells the core (its sibling thread, the power
    // management) that this thread is only polling.
    static void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
        __builtin_ia32_pause();
#endif
    }

    // How long an idle worker keeps polling before it sleeps.
    static constexpr double kSpinSeconds = 2e-3;
    static constexpr int kChunksPerThread = 8;

private:
    void worker(int index);
    void work(int thread);

    const int n_threads_;
    std::vector<std::thread> workers_;

    // The job: fn, then the claim word (total tasks << 32 | next task) and the
    // count of finished tasks. A claim below the total is valid for the job
    // published with that word, so a late worker can never run a stale job.
    const std::function<void(int64_t, int)>* job_ = nullptr;
    std::atomic<uint64_t> claim_{0};
    std::atomic<int64_t> done_{0};
    std::atomic<uint64_t> generation_{0};
    std::atomic<bool> stop_{false};

    // Sleeping workers wait here; the caller only takes the lock when one sleeps.
    std::mutex mu_;
    std::condition_variable wake_;
    std::atomic<int> sleepers_{0};
};

}  // namespace minigpt
