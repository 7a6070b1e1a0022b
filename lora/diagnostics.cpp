// Diagnostics of the per-task branches: see lora/diagnostics.h for the definitions.
#include "lora/diagnostics.h"

#include <Eigen/Dense>
#include <cmath>
#include <cstdio>
#include <string>

namespace {

using Matrix = Eigen::MatrixXd;

// Rows [first, first + count) of a row-major (rows, cols) block of float parameters at `offset`, as a double matrix.
Matrix block_rows(const std::vector<float>& parameters, size_t offset, int first, int count, int cols) {
    Matrix m(count, cols);
    for (int i = 0; i < count; i++)
        for (int c = 0; c < cols; c++) m(i, c) = double(parameters[offset + size_t(first + i) * cols + c]);
    return m;
}

std::string tau_name(double tau) {
    char name[32];
    std::snprintf(name, sizeof(name), "collision_%.0e", tau);  // collision_1e-03
    std::string text = name;
    // "1e-03" -> "1e-3"
    size_t e = text.find("e-0");
    if (e != std::string::npos) text.erase(e + 2, 1);
    return text;
}

}  // namespace

Diagnostics branch_diagnostics(const std::vector<float>& parameters, const std::vector<LoraSlot>& slots,
                               int branches, int rank, double scale) {
    if (branches < 2) return {};
    constexpr int TAUS = int(sizeof(COLLISION_TAUS) / sizeof(COLLISION_TAUS[0]));
    double collision[TAUS] = {}, orthogonality = 0, cosine = 0;
    size_t pairs = 0;
    for (const LoraSlot& slot : slots) {
        const int in = slot.shape.in, out = slot.shape.out;
        const size_t entries = size_t(in) * out;
        // per branch: A_i (r,in), DW_i = s Bt_i^T A_i (out,in), max |DW_i|, ||DW_i||_F
        std::vector<Matrix> A(branches), update(branches);
        std::vector<double> largest(branches), norm(branches);
        for (int i = 0; i < branches; i++) {
            A[i] = block_rows(parameters, slot.A, i * rank, rank, in);
            const Matrix Bt = block_rows(parameters, slot.Bt, i * rank, rank, out);
            update[i] = scale * (Bt.transpose() * A[i]);
            largest[i] = update[i].cwiseAbs().maxCoeff();
            norm[i] = update[i].norm();
        }
        for (int i = 0; i < branches; i++)
            for (int j = i + 1; j < branches; j++) {
                pairs++;
                // collision: both |DW_i| and |DW_j| above tau * the pair's largest entry
                const double top = std::max(largest[i], largest[j]);
                size_t both[TAUS] = {};
                const double* wi = update[i].data();
                const double* wj = update[j].data();
                for (size_t e = 0; e < entries; e++) {
                    const double smaller = std::min(std::abs(wi[e]), std::abs(wj[e]));
                    for (int k = 0; k < TAUS; k++) both[k] += smaller > COLLISION_TAUS[k] * top;
                }
                for (int k = 0; k < TAUS; k++) collision[k] += double(both[k]) / double(entries);
                // ||A_i A_j^T||_F^2
                orthogonality += (A[i] * A[j].transpose()).squaredNorm();
                // |<DW_i, DW_j>_F| / (||DW_i|| ||DW_j||)
                if (norm[i] > 0 && norm[j] > 0)
                    cosine += std::abs(update[i].cwiseProduct(update[j]).sum()) / (norm[i] * norm[j]);
            }
    }
    if (pairs == 0) return {};
    Diagnostics diagnostics;
    for (int k = 0; k < TAUS; k++) diagnostics.emplace_back(tau_name(COLLISION_TAUS[k]), collision[k] / double(pairs));
    diagnostics.emplace_back("orthogonality_A", orthogonality);
    diagnostics.emplace_back("update_cosine", cosine / double(pairs));
    return diagnostics;
}
