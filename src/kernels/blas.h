// OpenBLAS, loaded on first use (dlopen) rather than linked.
//
// Linked, OpenBLAS costs every process ~6.6 ms before main() on our VMs (its
// constructor probes the CPU, allocates its buffers and starts a thread per core),
// and its threads then spin. Most commands never call it: on AVX-512 the forward
// pass runs on our own kernels. So the library loads the first time one of these
// functions runs, and the thread count asked for before then is applied at load.
//
// The arguments are those of the functions of the same name in OpenBLAS.
#pragma once
#include <cblas.h>
#include <cstddef>

namespace minigpt::blas {

void sgemm(CBLAS_ORDER order, CBLAS_TRANSPOSE trans_a, CBLAS_TRANSPOSE trans_b, int m, int n, int k, float alpha,
           const float* a, int lda, const float* b, int ldb, float beta, float* c, int ldc);
void dgemm(CBLAS_ORDER order, CBLAS_TRANSPOSE trans_a, CBLAS_TRANSPOSE trans_b, int m, int n, int k, double alpha,
           const double* a, int lda, const double* b, int ldb, double beta, double* c, int ldc);

// LAPACK as OpenBLAS bundles it (reference LAPACK built with gfortran): Fortran
// arguments, by pointer, and each character argument followed by its hidden length.
void dgeqrf(const int* m, const int* n, double* a, const int* lda, double* tau, double* work, const int* lwork,
            int* info);
void dgeev(const char* jobvl, const char* jobvr, const int* n, double* a, const int* lda, double* wr, double* wi,
           double* vl, const int* ldvl, double* vr, const int* ldvr, double* work, const int* lwork, int* info,
           size_t jobvl_len, size_t jobvr_len);

// OpenBLAS's own threads for the calls that follow. Before the library is loaded,
// only remembered (loading it for this alone would cost what laziness saves).
void set_threads(int n);

// The kernel family OpenBLAS picked for this CPU (loads the library).
const char* core_name();

}  // namespace minigpt::blas
