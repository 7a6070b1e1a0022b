// Greedy decoding's choice: the index of the largest logit of each row.
// logits (N,Vp) row-major: only the first V columns are real tokens; the padded columns V..Vp-1 are ignored.
#pragma once
#include <string>

#include "data/file_io.h"

namespace cpu {

// 1 <= V <= Vp, else fails.
inline void check_argmax_shape(int N, int V, int Vp) {
    if (N < 0 || V < 1 || V > Vp)
        fail("argmax: bad shape N=" + std::to_string(N) + " V=" + std::to_string(V) + " Vp=" + std::to_string(Vp));
}

// out (N): argmax over v < V of logits[i, v]; ties go to the lowest index.
template <typename T>
void argmax_rows(int* out, const T* logits, int N, int V, int Vp) {
    check_argmax_shape(N, V, Vp);
    for (int i = 0; i < N; i++) {
        const T* z = logits + size_t(i) * Vp;
        int best = 0;
        for (int v = 1; v < V; v++)
            if (z[v] > z[best]) best = v;  // strictly larger: an equal value later keeps the earlier index
        out[i] = best;
    }
}

}  // namespace cpu
