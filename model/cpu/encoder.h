// Token + position embedding: out[b,t,:] = wte[inp[b,t],:] + wpe[t,:].
#pragma once

namespace cpu {

// out (B,T,C); inp (B,T) token ids; wte (Vp,C); wpe (maxT,C)
template <typename T>
void encoder_forward(T* out, const int* inp, const T* wte, const T* wpe, int B, int T_, int C) {
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T_; t++) {
            T* out_bt = out + (b * T_ + t) * C;
            const T* wte_row = wte + inp[b * T_ + t] * C;
            const T* wpe_row = wpe + t * C;
            for (int c = 0; c < C; c++) out_bt[c] = wte_row[c] + wpe_row[c];
        }
}

// Accumulates: dwte[inp[b,t],:] += dout[b,t,:]; dwpe[t,:] += dout[b,t,:]. dwte may be null (frozen).
template <typename T>
void encoder_backward(T* dwte, T* dwpe, const T* dout, const int* inp, int B, int T_, int C) {
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T_; t++) {
            const T* dout_bt = dout + (b * T_ + t) * C;
            if (dwte) {
                T* dwte_row = dwte + inp[b * T_ + t] * C;
                for (int c = 0; c < C; c++) dwte_row[c] += dout_bt[c];
            }
            if (dwpe) {
                T* dwpe_row = dwpe + t * C;
                for (int c = 0; c < C; c++) dwpe_row[c] += dout_bt[c];
            }
        }
}

}  // namespace cpu
