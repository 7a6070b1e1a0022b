// Finite-difference gradient checking in double precision.
#pragma once
#include <functional>
#include <vector>

#include "test/test_support.h"

// Central differences of loss() with respect to every element of x (x is restored afterwards).
inline std::vector<double> numerical_gradient(std::vector<double>& x, const std::function<double()>& loss,
                                              double step = 1e-6) {
    std::vector<double> gradient(x.size());
    for (size_t i = 0; i < x.size(); i++) {
        double saved = x[i];
        x[i] = saved + step;
        double plus = loss();
        x[i] = saved - step;
        double minus = loss();
        x[i] = saved;
        gradient[i] = (plus - minus) / (2 * step);
    }
    return gradient;
}

// sum_i r_i * y_i: a random projection turns an output tensor into a scalar loss whose gradient with
// respect to y is r, so a kernel's backward called with dout = r must match the numerical gradient.
inline double project(const std::vector<double>& y, const std::vector<double>& r) {
    double total = 0;
    for (size_t i = 0; i < y.size(); i++) total += y[i] * r[i];
    return total;
}

constexpr double GRADIENT_TOLERANCE = 1e-6;  // relative error of analytic vs numerical, double precision
