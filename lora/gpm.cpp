// Gradient Projection Memory's bases (lora/gpm.h): shapes and math there.
#include "lora/gpm.h"

#include <algorithm>
#include <cmath>

namespace gpm {

SortedEigen sorted_eigen(const Eigen::MatrixXd& symmetric) {
    const Eigen::MatrixXd S = 0.5 * (symmetric + symmetric.transpose());
    Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> solver(S);  // ascending
    const Eigen::Index n = S.rows();
    SortedEigen sorted{Eigen::VectorXd(n), Eigen::MatrixXd(n, n)};
    for (Eigen::Index i = 0; i < n; i++) {
        sorted.values(i) = solver.eigenvalues()(n - 1 - i);
        sorted.vectors.col(i) = solver.eigenvectors().col(n - 1 - i);
    }
    return sorted;
}

SortedEigen residual_directions(const Eigen::MatrixXd& C, const Eigen::MatrixXd& M) {
    Eigen::MatrixXd R = C;
    if (M.cols() > 0) R -= M * (M.transpose() * C);
    SortedEigen e = sorted_eigen(R * R.transpose());
    e.values = e.values.cwiseMax(0.0);
    return e;
}

Eigen::MatrixXd orthonormal_against(const Eigen::MatrixXd& vectors, const Eigen::MatrixXd& M) {
    Eigen::MatrixXd kept(vectors.rows(), 0);
    for (Eigen::Index j = 0; j < vectors.cols(); j++) {
        Eigen::VectorXd v = vectors.col(j);
        for (int pass = 0; pass < 2; pass++) {
            if (M.cols() > 0) v -= M * (M.transpose() * v);
            if (kept.cols() > 0) v -= kept * (kept.transpose() * v);
        }
        const double norm = v.norm();
        if (norm < 1e-6) continue;
        kept.conservativeResize(Eigen::NoChange, kept.cols() + 1);
        kept.col(kept.cols() - 1) = v / norm;
    }
    return kept;
}

Eigen::MatrixXd projected_top_eigenvectors(const Eigen::MatrixXd& C, const Eigen::MatrixXd& M, int count) {
    const SortedEigen e = residual_directions(C, M);
    count = std::min<int>(count, int(C.rows()));
    return orthonormal_against(e.vectors.leftCols(count), M);
}

double threshold(double epsilon0, int task_one_based, int num_tasks) {
    return epsilon0 + (1.0 - epsilon0) * double(task_one_based - 1) / double(std::max(1, num_tasks));
}

Eigen::MatrixXd extend(const Eigen::MatrixXd& C, const Eigen::MatrixXd& M, double epsilon) {
    const Eigen::Index dim = C.rows();
    const SortedEigen own = sorted_eigen(C);
    const double total = own.values.array().square().sum();  // sum S^2: singular values of C = |eigenvalues|
    if (!(total > 0)) return M;
    // acc = (total - sum S'^2) / total: 0 for an empty basis (R = C), then append while acc < epsilon
    const SortedEigen residual = residual_directions(C, M);  // eigenvalues S'^2
    double accumulated = M.cols() == 0 ? 0.0 : (total - residual.values.sum()) / total;
    int r = 0;
    for (Eigen::Index i = 0; i < dim && accumulated < epsilon; i++) {
        accumulated += residual.values(i) / total;
        r++;
    }
    r = std::min<int>(r, int(dim - M.cols()));
    if (r <= 0) return M;
    const Eigen::MatrixXd added = orthonormal_against(residual.vectors.leftCols(r), M);
    Eigen::MatrixXd extended(dim, M.cols() + added.cols());
    extended << M, added;
    return extended;
}

}  // namespace gpm
