#include "kernels/blas.h"

#include <dlfcn.h>
#include <mutex>
#include <stdexcept>
#include <string>

namespace minigpt::blas {

namespace {

// Debian's libopenblas0 (the pthreads build, through the alternatives link).
constexpr const char* kLibrary = "libopenblas.so.0";

struct OpenBlas {
    decltype(&cblas_sgemm) sgemm = nullptr;
    decltype(&cblas_dgemm) dgemm = nullptr;
    void (*set_num_threads)(int) = nullptr;
    int (*get_num_threads)() = nullptr;
    char* (*get_corename)() = nullptr;
    decltype(&dgeqrf) dgeqrf_ = nullptr;
    decltype(&dgeev) dgeev_ = nullptr;
};

// The thread count last asked for (0: none, OpenBLAS's default) and whether the
// library is loaded, both under the mutex: a count asked for while another thread
// loads is then applied by one of the two.
std::mutex g_threads_mutex;
int g_wanted_threads = 0;
bool g_loaded = false;

template <class F>
F symbol(void* handle, const char* name, bool required = true) {
    void* p = ::dlsym(handle, name);
    if (!p && required)
        throw std::runtime_error(std::string(kLibrary) + ": has no symbol " + name + " (is it OpenBLAS?)");
    return reinterpret_cast<F>(p);
}

OpenBlas load() {
    void* handle = ::dlopen(kLibrary, RTLD_NOW | RTLD_LOCAL);
    if (!handle) {
        const char* why = ::dlerror();
        throw std::runtime_error(std::string("cannot load OpenBLAS (") + kLibrary + "): " + (why ? why : "unknown") +
                                 " (Debian: apt-get install libopenblas0)");
    }
    OpenBlas b;
    b.sgemm = symbol<decltype(b.sgemm)>(handle, "cblas_sgemm");
    b.dgemm = symbol<decltype(b.dgemm)>(handle, "cblas_dgemm");
    b.set_num_threads = symbol<decltype(b.set_num_threads)>(handle, "openblas_set_num_threads");
    b.get_num_threads = symbol<decltype(b.get_num_threads)>(handle, "openblas_get_num_threads");
    b.get_corename = symbol<decltype(b.get_corename)>(handle, "openblas_get_corename");
    b.dgeqrf_ = symbol<decltype(b.dgeqrf_)>(handle, "dgeqrf_");
    b.dgeev_ = symbol<decltype(b.dgeev_)>(handle, "dgeev_");
    // OpenBLAS starts its worker threads when it loads, and each spins (sched_yield)
    // for ~0.1 s before it sleeps: a whole core of a 2-core machine. Stop them; it
    // starts them again at its first threaded call. (Absent from other builds.)
    if (auto shutdown = symbol<int (*)()>(handle, "blas_thread_shutdown_", false)) shutdown();
    std::lock_guard<std::mutex> lock(g_threads_mutex);
    if (g_wanted_threads > 0 && b.get_num_threads() != g_wanted_threads) b.set_num_threads(g_wanted_threads);
    g_loaded = true;
    return b;
}

// Loaded once, by the first thread to get here (the others wait); the handle is
// never closed (the process ends with it).
const OpenBlas& library() {
    static const OpenBlas b = load();
    return b;
}

}  // namespace

void sgemm(CBLAS_ORDER order, CBLAS_TRANSPOSE trans_a, CBLAS_TRANSPOSE trans_b, int m, int n, int k, float alpha,
           const float* a, int lda, const float* b, int ldb, float beta, float* c, int ldc) {
    library().sgemm(order, trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

void dgemm(CBLAS_ORDER order, CBLAS_TRANSPOSE trans_a, CBLAS_TRANSPOSE trans_b, int m, int n, int k, double alpha,
           const double* a, int lda, const double* b, int ldb, double beta, double* c, int ldc) {
    library().dgemm(order, trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

void dgeqrf(const int* m, const int* n, double* a, const int* lda, double* tau, double* work, const int* lwork,
            int* info) {
    library().dgeqrf_(m, n, a, lda, tau, work, lwork, info);
}

void dgeev(const char* jobvl, const char* jobvr, const int* n, double* a, const int* lda, double* wr, double* wi,
           double* vl, const int* ldvl, double* vr, const int* ldvr, double* work, const int* lwork, int* info,
           size_t jobvl_len, size_t jobvr_len) {
    library().dgeev_(jobvl, jobvr, n, a, lda, wr, wi, vl, ldvl, vr, ldvr, work, lwork, info, jobvl_len, jobvr_len);
}

void set_threads(int n) {
    {
        std::lock_guard<std::mutex> lock(g_threads_mutex);
        g_wanted_threads = n;
        if (!g_loaded) return;
    }
    const OpenBlas& b = library();
    // Setting the count (re)starts OpenBLAS's threads even when it does not change.
    if (b.get_num_threads() != n) b.set_num_threads(n);
}

const char* core_name() { return library().get_corename(); }

}  // namespace minigpt::blas
