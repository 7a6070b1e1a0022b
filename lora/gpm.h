// Orthonormal bases of the inputs old tasks gave a layer, and their extension at a task's end by Gradient
// Projection Memory (GPM; lora/METHODS.md section 7, as GainLoRA's and InfLoRA's official code do it).
// Host code in double precision (Eigen): the covariances are small (channels x channels at most) and computed
// once per task. A basis is a (dim, k) matrix M with orthonormal columns, k = 0 for none yet.
//
// For a covariance C = E[h h^T] (dim, dim) of a task's inputs h and the basis M of the earlier tasks' inputs:
//   residual R = C - M M^T C: what of C lies outside span(M). Its left singular vectors (the eigenvectors of
//   R R^T, the squared singular values S'^2 as eigenvalues) are orthogonal to M.
//   GPM: with S the singular values of C (|eigenvalues|, C is symmetric), total = sum S^2,
//     acc = (total - sum S'^2) / total (the energy M already holds; 0 for k = 0, where R = C); append the
//     leading left singular vectors of R while acc < epsilon, adding S'_i^2 / total for each
//   and the threshold grows over the T tasks: epsilon_t = epsilon0 + (1 - epsilon0) (t - 1) / T (t 1-based).
//   For k = 0 (task 1) METHODS.md (and the official GPM code) keep instead the leading eigenvectors whose
//   cumulative energy is < epsilon, which excludes the one that crosses epsilon: one fewer, and none at all when
//   the leading direction alone holds epsilon of the energy, as a nearly constant gate input does (the synthetic
//   benchmark's p1, p2: 0.9999 in one direction), so that the next gate is not kept shut on task 1. The rule
//   above, the k > 0 rule with an empty basis, keeps the crossing direction too (the smallest basis holding
//   epsilon of the energy).
#pragma once
#include <Eigen/Dense>
#include <algorithm>
#include <cmath>

namespace gpm {

// Eigenpairs of a symmetric matrix, by eigenvalue from largest to smallest.
struct SortedEigen {
    Eigen::VectorXd values;   // (dim)
    Eigen::MatrixXd vectors;  // (dim, dim), column i belongs to values(i)
};

inline SortedEigen sorted_eigen(const Eigen::MatrixXd& symmetric) {
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

// The left singular vectors of R = C - M M^T C (columns, largest singular value first) and S'^2: the eigenpairs
// of R R^T (eigenvalues clamped at 0). M (dim, k), k may be 0 (then R = C).
inline SortedEigen residual_directions(const Eigen::MatrixXd& C, const Eigen::MatrixXd& M) {
    Eigen::MatrixXd R = C;
    if (M.cols() > 0) R -= M * (M.transpose() * C);
    SortedEigen e = sorted_eigen(R * R.transpose());
    e.values = e.values.cwiseMax(0.0);
    return e;
}

// The columns of `vectors` (dim, n), made orthogonal to M (dim, k) and to each other (Gram-Schmidt, twice), with
// any that have (almost) nothing left dropped.
inline Eigen::MatrixXd orthonormal_against(const Eigen::MatrixXd& vectors, const Eigen::MatrixXd& M) {
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

// The `count` leading left singular vectors of C - M M^T C (dim, count): directions of the task's inputs that the
// old basis does not hold, each orthogonal to M (GainLoRA's key, InfLoRA's down projection).
inline Eigen::MatrixXd projected_top_eigenvectors(const Eigen::MatrixXd& C, const Eigen::MatrixXd& M, int count) {
    const SortedEigen e = residual_directions(C, M);
    count = std::min<int>(count, int(C.rows()));
    return orthonormal_against(e.vectors.leftCols(count), M);
}

// epsilon_t = epsilon0 + (1 - epsilon0) (t - 1) / T, t = 1..T
inline double threshold(double epsilon0, int task_one_based, int num_tasks) {
    return epsilon0 + (1.0 - epsilon0) * double(task_one_based - 1) / double(std::max(1, num_tasks));
}

// The basis M (dim, k) extended by GPM with the task's covariance C (dim, dim) at threshold epsilon (see the top
// of the file); at most dim columns. A zero covariance adds nothing.
inline Eigen::MatrixXd extend(const Eigen::MatrixXd& C, const Eigen::MatrixXd& M, double epsilon) {
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
