// CHECK_NEAR(got, want, tol): |got - want| <= tol * (1 + |want|), doctest::Approx's rule
// (with its scale of 1), printing the measured error beside the bound: every tolerance in a
// test is stated next to the difference measured (see the comment at each use).
#pragma once
#include <doctest/doctest.h>

#include <cmath>

#define CHECK_NEAR(got, want, tol)                                                                  \
    do {                                                                                            \
        const double near_got_ = double(got), near_want_ = double(want), near_tol_ = double(tol);   \
        const double near_err_ = std::fabs(near_got_ - near_want_) / (1.0 + std::fabs(near_want_)); \
        MESSAGE(#got << " vs " << #want << ": error " << near_err_ << " (tolerance " << near_tol_ << ")"); \
        CHECK(near_err_ <= near_tol_);                                                              \
    } while (0)
