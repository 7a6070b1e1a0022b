// Orthonormal bases of the inputs old tasks gave a layer, and their extension at a task's end by Gradient
// Projection Memory (GPM; lora/METHODS.md section 7, as GainLoRA's and InfLoRA's official code do it).
// Host code in double precision (Eigen): the covariances are small (channels x channels at most) and computed
// once per task (lora/gpm.cpp). A basis is a (dim, k) matrix M with orthonormal columns, k = 0 for none yet.
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

namespace gpm {

// Eigenpairs of a symmetric matrix, by eigenvalue from largest to smallest.
struct SortedEigen {
    Eigen::VectorXd values;   // (dim)
    Eigen::MatrixXd vectors;  // (dim, dim), column i belongs to values(i)
};

SortedEigen sorted_eigen(const Eigen::MatrixXd& symmetric);

// The left singular vectors of R = C - M M^T C (columns, largest singular value first) and S'^2: the eigenpairs
// of R R^T (eigenvalues clamped at 0). M (dim, k), k may be 0 (then R = C).
SortedEigen residual_directions(const Eigen::MatrixXd& C, const Eigen::MatrixXd& M);

// The columns of `vectors` (dim, n), made orthogonal to M (dim, k) and to each other (Gram-Schmidt, twice), with
// any that have (almost) nothing left dropped.
Eigen::MatrixXd orthonormal_against(const Eigen::MatrixXd& vectors, const Eigen::MatrixXd& M);

// The `count` leading left singular vectors of C - M M^T C (dim, count): directions of the task's inputs that the
// old basis does not hold, each orthogonal to M (GainLoRA's key, InfLoRA's down projection).
Eigen::MatrixXd projected_top_eigenvectors(const Eigen::MatrixXd& C, const Eigen::MatrixXd& M, int count);

// epsilon_t = epsilon0 + (1 - epsilon0) (t - 1) / T, t = 1..T
double threshold(double epsilon0, int task_one_based, int num_tasks);

// The basis M (dim, k) extended by GPM with the task's covariance C (dim, dim) at threshold epsilon (see the top
// of the file); at most dim columns. A zero covariance adds nothing.
Eigen::MatrixXd extend(const Eigen::MatrixXd& C, const Eigen::MatrixXd& M, double epsilon);

}  // namespace gpm
